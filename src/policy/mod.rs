//! The IAM policy language: documents, the evaluator and the linter.

pub mod wildcard;
