//! Every integration test, in one binary: the helpers (moto, the kube-apiserver, the test
//! doubles) are compiled and linked once, not into each of 32 binaries of ~100 MB that filled
//! CI's disk. nextest still runs each test in its own process. Run one file's tests with
//! `scripts/test -E 'test(/^operator_faults::/)'`.

mod access_analyzer_double;
mod athena_paging_double;
mod athena_results;
mod common;
mod control_plane;
mod double_server;
mod iam_last_accessed_double;
mod k8s_tools;
mod moto;
mod operator_env;
mod signals;
mod watch;

mod access_analyzer;
mod athena_source;
mod aws_iam;
mod chart;
mod chart_rbac;
mod cli;
mod crd;
mod crd_apiserver;
mod evaluation_cases;
mod examples_aws;
mod examples_generated;
mod examples_k8s;
mod generate_cli;
mod generate_passrole;
mod harness;
mod iam_last_accessed;
mod layers;
mod leader_election;
mod lint_fixtures;
mod managed_policies;
mod mapping_shared_corpus;
mod moto_validation_cases;
mod operator;
mod operator_access_analyzer;
mod operator_attacks;
mod operator_faults;
mod operator_gates;
mod operator_guardrails;
mod operator_ha;
mod operator_last_accessed;
mod operator_passrole;
mod operator_poison;
mod readme;
mod s3_source;
mod scan_cloudtrail;
mod scan_shared_corpus;
mod telemetry;
