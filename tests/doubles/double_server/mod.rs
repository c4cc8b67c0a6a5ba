//! The HTTP server under the tests' AWS doubles: an axum app on a free loopback port
//! (127.0.0.1 only), on its own thread and runtime so sync and async tests alike can use it,
//! stopped when dropped.

use axum::Router;

pub struct Serving {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Serving {
    /// Serves the router `app` builds (inside the server's runtime, for apps that make
    /// clients of their own).
    pub fn start(app: impl FnOnce() -> Router + Send + 'static) -> Serving {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app())
                    .with_graceful_shutdown(async move {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Serving {
            endpoint: format!("http://127.0.0.1:{port}"),
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
