//! The `LeastPrivilegeRole` operator.

pub mod crd;
pub mod plan;
pub mod telemetry;

pub use crd::{LeastPrivilegeRole, LeastPrivilegeRoleSpec, LeastPrivilegeRoleStatus};
