//! The `LeastPrivilegeRole` operator.

pub mod crd;
pub mod plan;
pub mod reconcile;
pub mod run;

pub use crd::{LeastPrivilegeRole, LeastPrivilegeRoleSpec, LeastPrivilegeRoleStatus};
