//! Where usage comes from in S3 and Athena, for the CLI and the operator: `trail` scans a
//! trail's files for a principal (or every principal) and window; `ingest` reads each file of a
//! trail once into `facts` (usage by day and principal) and answers every role from them,
//! optionally kept in `store` (Parquet in S3); `athena` asks Athena instead. Each turns records
//! (`cloudtrail`) into the `usage` currency through `aws`'s S3 and Athena calls.

pub mod athena;
pub mod facts;
pub mod ingest;
pub mod store;
pub mod trail;
