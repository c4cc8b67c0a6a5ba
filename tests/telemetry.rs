//! The metrics/probe server over real HTTP/1.1 on 127.0.0.1.

use iam_tailor::controller::telemetry::{Metrics, serve};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Status code, headers and body of a `GET` with `Connection: close`.
async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_string(&mut response))
        .await
        .expect("response before the timeout")
        .unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a header block");
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    (status, head.to_ascii_lowercase(), body.to_owned())
}

#[tokio::test]
async fn serves_metrics_and_probes_until_shutdown() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        metrics.clone(),
        ready.clone(),
        async move {
            let _ = stopped.await;
        },
    ));

    let (status, _, body) = get(addr, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));

    let (status, _, _) = get(addr, "/readyz").await;
    assert_eq!(status, 503);
    ready.store(true, Ordering::Release);
    let (status, _, body) = get(addr, "/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));

    metrics.reconciled();
    metrics.set_unused_actions("team-a", "checkout", "checkout-api", 12);
    let (status, head, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(
        body.lines().any(|l| l == "iam_tailor_reconciles_total 1"),
        "{body}"
    );
    assert!(
        body.contains(
            r#"iam_tailor_unused_actions{namespace="team-a",name="checkout",role="checkout-api"} 12"#
        ),
        "{body}"
    );

    let (status, _, _) = get(addr, "/nope").await;
    assert_eq!(status, 404);

    stop.send(()).unwrap();
    tokio::time::timeout(TIMEOUT, server)
        .await
        .expect("serve returns after shutdown")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed after shutdown"
    );
}

/// A reconcile that outlives its deadline makes `/healthz` fail, naming it; once it ends the
/// probe passes again. (`wedged_after` is zero here: any reconcile under way counts.)
#[tokio::test]
async fn healthz_fails_while_a_reconcile_is_wedged() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Arc::new(Metrics::with_wedged_after(Duration::ZERO));
    let ready = Arc::new(AtomicBool::new(true));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, metrics.clone(), ready, async move {
        let _ = stopped.await;
    }));
    assert_eq!(get(addr, "/healthz").await.0, 200);
    let stuck = metrics.in_flight("payments/checkout".to_string());
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (status, _, body) = get(addr, "/healthz").await;
    assert_eq!(status, 503);
    assert!(
        body.starts_with("wedged: the reconcile of payments/checkout"),
        "{body}"
    );
    drop(stuck);
    assert_eq!(get(addr, "/healthz").await.0, 200);
    stop.send(()).unwrap();
    tokio::time::timeout(TIMEOUT, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
