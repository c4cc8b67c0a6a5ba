//! The `LeastPrivilegeRole` operator.

pub mod crd;
pub mod plan;

pub use crd::{LeastPrivilegeRole, LeastPrivilegeRoleSpec, LeastPrivilegeRoleStatus};
