//! CloudTrail: read records, choose the principal's, map them to IAM actions and resources.

mod read;
pub mod record;
pub mod select;
pub mod usage;

pub use record::{Record, RecordResource, SessionIssuer, UserIdentity};
pub use select::{PrincipalFilter, parse_since};
pub use usage::{ActionUsage, ScanStats, Seen, Usage};
