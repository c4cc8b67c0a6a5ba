//! The `LeastPrivilegeRole` operator.

pub mod crd;

pub use crd::{LeastPrivilegeRole, LeastPrivilegeRoleSpec, LeastPrivilegeRoleStatus};
