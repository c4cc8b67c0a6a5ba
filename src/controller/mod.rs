//! The `LeastPrivilegeRole` operator.

pub mod crd;
pub mod leader;
pub mod plan;

pub use crd::{LeastPrivilegeRole, LeastPrivilegeRoleSpec, LeastPrivilegeRoleStatus};
