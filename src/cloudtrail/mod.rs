//! CloudTrail: read records, choose the principal's, map them to IAM actions and resources.

pub mod mapping;
pub mod record;
pub mod usage;

pub use record::{Record, RecordResource, SessionIssuer, UserIdentity};
pub use usage::{ActionUsage, ScanStats, Seen, Usage};
