//! Running one Athena query and reading its rows back (what the query asks is
//! `sources::athena`'s).

use super::sdk_message;
use aws_sdk_athena::Client;
use aws_sdk_athena::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_athena::types::{QueryExecutionContext, QueryExecutionState, ResultConfiguration, Row};
use std::time::Duration;

/// How often a running query is polled.
pub const POLL: Duration = Duration::from_secs(1);
/// How long a query may run before it is stopped (a day of an organization's trail is usually
/// seconds; Athena's own DML limit is 30 minutes by default).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Rows read back from one query at most: identical calls are already grouped, so more means
/// the table is not what the query expects.
pub const MAX_ROWS: usize = 1_000_000;
/// Bytes of values read back from one query at most (the rows' text, summed over its pages):
/// rows are untrusted (anyone who can write the table's files shapes them), and at most
/// `sources::athena::MAX_QUERIES_IN_FLIGHT` results are read per table.
pub const MAX_RESULT_BYTES: usize = 32 << 20;
/// The metric label of a query whose result passed [`MAX_RESULT_BYTES`].
pub const RESULT_TOO_LARGE: &str = "athena-result-too-large";

/// Where and how a query runs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Workgroup {
    pub workgroup: String,
    /// The catalog database, when the query's table is not qualified with one.
    pub database: Option<String>,
    /// `s3://…/` for the results, unless the workgroup enforces its own.
    pub output_location: Option<String>,
}

/// A query's result: the column names and the rows (a NULL is `None`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResultRows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum AthenaError {
    #[error("Athena {operation}: {message}")]
    Call {
        operation: &'static str,
        message: String,
    },
    #[error("Athena query {id} {state}: {reason}")]
    Failed {
        id: String,
        state: String,
        reason: String,
    },
    #[error("Athena query {id} still running after {}s: stopped", QUERY_TIMEOUT.as_secs())]
    Timeout { id: String },
    #[error("Athena query {id} returned more than {MAX_ROWS} rows")]
    TooManyRows { id: String },
    #[error("Athena query {id} returned more than {MAX_RESULT_BYTES} bytes of rows")]
    TooLarge { id: String },
}

pub fn client(config: &aws_config::SdkConfig) -> Client {
    Client::new(config)
}

/// Where a query stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryState {
    /// Queued or running: ask again later.
    Running,
    Succeeded,
}

/// Runs `sql` in `workgroup`, waits for it ([`POLL`], at most [`QUERY_TIMEOUT`], then stops
/// it) and reads every page of its result.
pub async fn run(
    client: &Client,
    workgroup: &Workgroup,
    sql: &str,
) -> Result<ResultRows, AthenaError> {
    let id = start(client, workgroup, sql).await?;
    let deadline = tokio::time::Instant::now() + QUERY_TIMEOUT;
    while state(client, &id).await? == QueryState::Running {
        if tokio::time::Instant::now() >= deadline {
            stop(client, &id).await;
            return Err(AthenaError::Timeout { id });
        }
        tokio::time::sleep(POLL).await;
    }
    results(client, &id).await
}

/// Starts `sql` in `workgroup`; its query execution id.
pub async fn start(
    client: &Client,
    workgroup: &Workgroup,
    sql: &str,
) -> Result<String, AthenaError> {
    let mut start = client
        .start_query_execution()
        .query_string(sql)
        .work_group(&workgroup.workgroup);
    if let Some(database) = &workgroup.database {
        start = start
            .query_execution_context(QueryExecutionContext::builder().database(database).build());
    }
    if let Some(output) = &workgroup.output_location {
        start = start.result_configuration(
            ResultConfiguration::builder()
                .output_location(output)
                .build(),
        );
    }
    let started = start
        .send()
        .await
        .map_err(|e| call("StartQueryExecution", &e))?;
    Ok(started.query_execution_id().unwrap_or_default().to_string())
}

/// Where query `id` stands; a failed or cancelled query is an error with Athena's reason.
pub async fn state(client: &Client, id: &str) -> Result<QueryState, AthenaError> {
    let execution = client
        .get_query_execution()
        .query_execution_id(id)
        .send()
        .await
        .map_err(|e| call("GetQueryExecution", &e))?;
    let status = execution.query_execution().and_then(|e| e.status());
    match status.and_then(|s| s.state()) {
        Some(QueryExecutionState::Succeeded) => Ok(QueryState::Succeeded),
        Some(state @ (QueryExecutionState::Failed | QueryExecutionState::Cancelled)) => {
            Err(AthenaError::Failed {
                id: id.to_string(),
                state: state.as_str().to_string(),
                reason: (status.and_then(|s| s.state_change_reason()))
                    .unwrap_or("no reason given")
                    .to_string(),
            })
        }
        _ => Ok(QueryState::Running),
    }
}

/// Stops query `id`, best effort: its cost stops with it; the caller's error stands either way.
pub async fn stop(client: &Client, id: &str) {
    let _ = client
        .stop_query_execution()
        .query_execution_id(id)
        .send()
        .await;
}

/// Every page of the result of succeeded query `id` (at most [`MAX_ROWS`] rows and
/// [`MAX_RESULT_BYTES`]).
pub async fn results(client: &Client, id: &str) -> Result<ResultRows, AthenaError> {
    let id = id.to_string();
    let mut result = ResultRows::default();
    let mut bytes = Bytes::default();
    let mut token: Option<String> = None;
    let mut first_page = true;
    loop {
        let page = client
            .get_query_results()
            .query_execution_id(&id)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| call("GetQueryResults", &e))?;
        let Some(set) = page.result_set() else { break };
        if first_page {
            result.columns = (set.result_set_metadata().map(|m| m.column_info()))
                .unwrap_or_default()
                .iter()
                .map(|c| c.name().to_string())
                .collect();
        }
        let mut rows = set.rows().iter().map(values);
        // A SELECT's first row is its header: the column names again.
        if first_page {
            let mut peek = rows.clone();
            let header_names: Option<Vec<String>> = peek
                .next()
                .map(|r| r.into_iter().map(Option::unwrap_or_default).collect());
            if header_names.as_ref() == Some(&result.columns) {
                rows.next();
            }
        }
        for row in rows {
            if result.rows.len() >= MAX_ROWS {
                return Err(AthenaError::TooManyRows { id });
            }
            if !bytes.add(&row) {
                return Err(AthenaError::TooLarge { id });
            }
            result.rows.push(row);
        }
        first_page = false;
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => break,
        }
    }
    Ok(result)
}

/// The bytes of result rows read so far, against [`MAX_RESULT_BYTES`].
#[derive(Debug, Default)]
pub struct Bytes(usize);

impl Bytes {
    /// Counts `row`; false once the total passes [`MAX_RESULT_BYTES`].
    pub fn add(&mut self, row: &[Option<String>]) -> bool {
        let size: usize = row.iter().map(|v| v.as_ref().map_or(0, String::len)).sum();
        self.0 = self.0.saturating_add(size);
        self.0 <= MAX_RESULT_BYTES
    }
}

fn call<E, R>(operation: &'static str, error: &SdkError<E, R>) -> AthenaError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    AthenaError::Call {
        operation,
        message: sdk_message(error),
    }
}

fn values(row: &Row) -> Vec<Option<String>> {
    (row.data().iter())
        .map(|d| d.var_char_value().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows within the row limit can still be huge: past the byte cap the query fails.
    #[test]
    fn result_rows_past_the_byte_cap_fail_the_query() {
        let mut bytes = Bytes::default();
        let row = vec![Some("x".repeat(1 << 20)), None];
        for _ in 0..(MAX_RESULT_BYTES >> 20) {
            assert!(bytes.add(&row));
        }
        assert!(!bytes.add(&[Some("y".to_string())]));
    }
}
