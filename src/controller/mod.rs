//! The `LeastPrivilegeRole` operator.

pub mod crd;
pub mod leader;
pub mod plan;
pub mod queue;
pub mod reconcile;
pub mod run;
pub mod seal;
pub mod signals;
pub mod spec;
pub mod telemetry;
pub mod tenancy;

pub use crd::{
    ClusterTrail, ClusterTrailSpec, LeastPrivilegeRole, LeastPrivilegeRoleSpec,
    LeastPrivilegeRoleStatus,
};
