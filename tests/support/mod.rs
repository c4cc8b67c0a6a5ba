//! What the tests stand on: moto, the kube-apiserver, the operator harness, waits, and
//! fixtures built at run time.

pub mod athena_results;
pub mod common;
pub mod control_plane;
pub mod k8s_tools;
pub mod moto;
pub mod operator_env;
pub mod signals;
pub mod watch;
