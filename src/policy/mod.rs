//! The IAM policy language: documents, the evaluator and the linter.

pub mod document;
pub mod lint;
pub mod values;
pub mod wildcard;

pub use document::{
    ActionBlock, BaseOperator, Condition, ConditionOperator, Effect, ParseError, Policy,
    PrincipalBlock, PrincipalType, Principals, ResourceBlock, SetQualifier, Statement, Version,
};
