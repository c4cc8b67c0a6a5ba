//! The IAM policy language: documents, the evaluator, analysis and the linter.

pub mod analysis;
pub mod aws_rules;
pub mod canonical;
pub mod context;
pub mod decision;
pub mod document;
pub mod eval;
pub mod lint;
pub mod trust;
pub mod values;
pub mod variables;

pub use context::Context;
pub use document::{
    ActionBlock, BaseOperator, Condition, ConditionOperator, Effect, ParseError, Policy,
    PrincipalBlock, PrincipalType, Principals, ResourceBlock, SetQualifier, Statement, Version,
};
pub use eval::{
    Decision, Evaluation, MAX_SCP_LEVELS, MatchedStatement, PolicyKind, PolicySet,
    PolicySetBuilder, Request,
};
