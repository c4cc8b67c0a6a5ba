//! A real moto server (`pip install 'moto[server]'`) on a loopback port it chose itself, for
//! tests that talk to S3, IAM, STS, SQS and EventBridge. Watched while it runs
//! ([`crate::watch`]); stopped (only the process this started) when dropped.

use crate::watch::{self, Pid, Show};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Moto {
    child: Child,
    pub endpoint: String,
    watch: watch::Watch,
    /// Its log (standard error: the port it bound, then one line per request).
    _dir: tempfile::TempDir,
}

impl Moto {
    /// Starts moto on port 0, so the OS gives it a free port as it binds (nothing can take the
    /// port between a choice and the bind), and reads the port from the line werkzeug prints
    /// when it listens: ` * Running on http://127.0.0.1:PORT`.
    pub fn start() -> Moto {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("moto.log");
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", "0"])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start moto_server ({e}); scripts/test installs it: pip install 'moto[server]'")
            });
        let watch = watch::watch("moto_server", Pid::Child(child.id()), &log, Show::OnExit);
        let mut moto = Moto {
            child,
            endpoint: String::new(),
            watch,
            _dir: dir,
        };
        // Sync: tests start moto from inside and outside a runtime.
        moto.endpoint = watch::poll_blocking(
            "moto_server to listen",
            Duration::from_secs(60),
            Duration::from_millis(50),
            || {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                text.lines()
                    .find_map(|line| line.split_once("Running on ").map(|(_, url)| url.trim()))
                    .map(str::to_string)
                    .ok_or_else(|| "no `Running on` line yet".to_string())
            },
        );
        moto
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
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
        self.watch.suspend();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
