//! Named test doubles, only where no real server exists here: Access Analyzer, IAM's
//! last-accessed data, Athena's polling and paging, on one small HTTP server.

pub mod access_analyzer_double;
pub mod athena_paging_double;
pub mod double_server;
pub mod iam_last_accessed_double;
