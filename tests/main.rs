//! Every integration test, in one binary: the helpers (moto, the kube-apiserver, the test
//! doubles) are compiled and linked once, not into each of 32 binaries of ~100 MB that filled
//! CI's disk. nextest still runs each test in its own process. Run one file's tests with
//! `scripts/test -E 'test(/^operator::faults::/)'`.

mod doubles;
mod support;
// The helpers by their short names, for every test: `crate::moto`, `crate::watch`, ….
use doubles::{
    access_analyzer_double, athena_paging_double, double_server, iam_last_accessed_double,
};
use support::{
    athena_results, common, control_plane, k8s_tools, moto, operator_env, signals, watch,
};

mod cli;
mod operator;

mod access_analyzer;
mod athena_source;
mod aws_iam;
mod chart;
mod chart_rbac;
mod crd;
mod crd_apiserver;
mod evaluation_cases;
mod examples_aws;
mod examples_generated;
mod examples_k8s;
mod harness;
mod iam_last_accessed;
mod layers;
mod managed_policies;
mod mapping_shared_corpus;
mod moto_validation_cases;
mod s3_source;
mod scan_cloudtrail;
mod scan_shared_corpus;
mod telemetry;
