//! A real kube-apiserver (v1.20.2) with etcd, started by `scripts/control-plane` into a temporary
//! state directory and stopped (only the processes it started) when dropped. `scripts/test`
//! builds the binary once beforehand; the first build takes several minutes. Both servers are
//! watched while they run ([`crate::watch`]).

use crate::watch::{self, Pid, Show};
use std::path::PathBuf;
use std::process::Command;

pub struct ControlPlane {
    state: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    watches: [watch::Watch; 2],
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/control-plane")
}

impl ControlPlane {
    pub fn start() -> ControlPlane {
        let state = tempfile::tempdir().unwrap();
        let output = Command::new(script())
            .arg("start")
            .arg(state.path())
            .output()
            .expect("runs scripts/control-plane");
        assert!(
            output.status.success(),
            "scripts/control-plane start failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let kubeconfig = state.path().join("kubeconfig");
        // The script's pid files, and its own check that a PID is ours: the state directory
        // is in the server's command line.
        let dir = state.path();
        let marker = format!("{}/", std::fs::canonicalize(dir).unwrap().display());
        let server = |name: &str, file: &str, log: &str| {
            let pid = Pid::File {
                file: dir.join(file),
                marker: marker.clone(),
            };
            watch::watch(name, pid, dir.join(log), Show::OnExit)
        };
        let watches = [
            server("etcd", "etcd.pid", "etcd.log"),
            server("kube-apiserver", "apiserver.pid", "apiserver.log"),
        ];
        ControlPlane {
            state,
            kubeconfig,
            watches,
        }
    }

    /// Stops etcd and kube-apiserver, keeping their data: [`Self::resume`] restarts them.
    pub fn pause(&self) {
        self.watches.iter().for_each(watch::Watch::suspend);
        let output = Command::new(script())
            .arg("stop")
            .arg(self.state.path())
            .output()
            .expect("runs scripts/control-plane");
        assert!(output.status.success(), "scripts/control-plane stop failed");
    }

    /// Starts etcd and kube-apiserver again on the same ports, token, certificate and data.
    pub fn resume(&self) {
        let output = Command::new(script())
            .arg("start")
            .arg(self.state.path())
            .output()
            .expect("runs scripts/control-plane");
        assert!(
            output.status.success(),
            "scripts/control-plane start (restart) failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.watches.iter().for_each(watch::Watch::resume);
    }

    /// The process id of `server` (`etcd` or `kube-apiserver`), from the script's pid file.
    pub fn pid(&self, server: &str) -> u32 {
        let file = self.state.path().join(match server {
            "etcd" => "etcd.pid",
            "kube-apiserver" => "apiserver.pid",
            other => panic!("no server {other}"),
        });
        std::fs::read_to_string(&file)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// A kube client authenticated as the admin (system:masters).
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let options = kube::config::KubeConfigOptions::default();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .unwrap();
        kube::Client::try_from(config).unwrap()
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.watches.iter().for_each(watch::Watch::suspend);
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.state.path())
            .output();
    }
}
