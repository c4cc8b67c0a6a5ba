//! A real moto server (`pip install 'moto[server]'`) on a free loopback port, for tests that
//! talk to S3, IAM, STS, SQS and EventBridge. Stopped (only the process this started) when
//! dropped.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start moto_server ({e}); scripts/test installs it: pip install 'moto[server]'")
            });
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited with {status} before listening");
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// Freezes the server (SIGSTOP): connections are still accepted by the kernel, nothing is
    /// answered, and what arrives meanwhile is handled after [`Self::thaw`] — a server that
    /// hangs and comes back with its state.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Lets a frozen server run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("runs kill");
        assert!(status.success(), "kill -{name} moto_server");
    }

    /// An S3 client for this server with throwaway credentials.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// An IAM client for this server with throwaway credentials.
    pub fn iam(&self) -> aws_sdk_iam::Client {
        let config = aws_sdk_iam::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_iam::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_iam::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .build();
        aws_sdk_iam::Client::from_conf(config)
    }

    /// An SQS client for this server with throwaway credentials.
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }

    /// An EventBridge client for this server with throwaway credentials.
    pub fn events(&self) -> aws_sdk_eventbridge::Client {
        let config = aws_sdk_eventbridge::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_eventbridge::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_eventbridge::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .build();
        aws_sdk_eventbridge::Client::from_conf(config)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
