//! The `iam-tailor controller` binary against a real kube-apiserver and moto, through the one
//! harness (`support::operator_env`): the main story, then by subject.

mod access_analyzer;
mod attacks;
mod faults;
mod gates;
mod guardrails;
mod ha;
mod last_accessed;
mod leader_election;
mod passrole;
mod poison;
mod story;
