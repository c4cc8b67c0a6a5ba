//! CloudTrail: read records, choose the principal's, map them to IAM actions and resources.

pub mod event;
pub mod mapping;
mod read;
pub mod record;
pub mod scan;
pub mod select;

pub use read::{
    MAX_DECOMPRESSED_BYTES, MAX_FILE_BYTES, MAX_RECORD_BYTES, MAX_RECORDS_PER_FILE, RecordError,
};
pub use record::{Record, RecordResource, SessionIssuer, UserIdentity};
pub use scan::{
    FUTURE_EVENT_TIME, ScanError, ScanOptions, Sink, scan_calls, scan_file_bytes, scan_paths,
    scan_paths_into,
};
pub use select::PrincipalFilter;
