//! A real kube-apiserver (v1.20.2) with etcd, started by `scripts/control-plane` into a temporary
//! state directory and stopped (only the processes it started) when dropped. `scripts/test`
//! builds the binary once beforehand; the first build takes several minutes.

use std::path::PathBuf;
use std::process::Command;

pub struct ControlPlane {
    state: tempfile::TempDir,
    pub kubeconfig: PathBuf,
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
        ControlPlane { state, kubeconfig }
    }

    /// Stops etcd and kube-apiserver, keeping their data: [`Self::resume`] restarts them.
    pub fn pause(&self) {
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
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.state.path())
            .output();
    }
}
