//! iam-tailor: shrink AWS IAM roles to what they actually use.
#![forbid(unsafe_code)]

pub mod aws;
pub mod catalog;
pub mod cli;
pub mod cloudtrail;
pub mod controller;
pub mod generate;
pub mod panic;
pub mod policy;
pub mod role;
pub mod sources;
pub mod time;
pub mod usage;
pub mod wildcard;
