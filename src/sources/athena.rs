//! Usage from an Athena table over the trail: one query per account and day for a set of
//! principals, its grouped rows turned back into CloudTrail records for the same mapper and
//! the same sinks as the files.
//!
//! The query is `examples/athena/usage.sql` (with the table it assumes beside it); its meaning
//! is tested by running the same text on DuckDB over the fixture records
//! (`scripts/athena-duckdb`, `tests/athena_source.rs`).

use super::facts::{Facts, FileFacts};
use super::ingest::over;
use crate::aws::athena::{self, AthenaError, ResultRows, Workgroup};
use crate::cloudtrail::{PrincipalFilter, Record, ScanOptions, Sink, scan_calls};
use crate::time::Day;
use crate::usage::Usage;
use aws_sdk_athena::Client;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The query, with `{{table}}`, `{{account}}`, `{{day}}` and `{{principals}}` to fill.
pub const QUERY: &str = include_str!("../../examples/athena/usage.sql");
/// The query's columns, in order.
pub const COLUMNS: [&str; 15] = [
    "eventsource",
    "eventname",
    "eventtype",
    "awsregion",
    "recipientaccountid",
    "errorcode",
    "identitytype",
    "identityarn",
    "identityaccountid",
    "issuerarn",
    "requestparameters",
    "resources",
    "calls",
    "firsttime",
    "lasttime",
];
/// Principals named in one query at most (the rest go in further queries for the same day).
pub const MAX_PRINCIPALS_PER_QUERY: usize = 1_000;

/// A query's placeholders are SQL text: each is checked before it is substituted.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QueryError {
    #[error("Athena table {0:?}: expected TABLE or DATABASE.TABLE (letters, digits, _)")]
    Table(String),
    #[error("account {0:?}: expected 12 digits")]
    Account(String),
    #[error("principal {0:?}: expected an IAM role or user ARN")]
    Principal(String),
    #[error("no principals to query")]
    NoPrincipals,
}

/// The query for `principals`' calls in `account`'s logs delivered on `day`.
pub fn query(
    table: &str,
    account: &str,
    day: Day,
    principals: &[&str],
) -> Result<String, QueryError> {
    let plain = |s: &str| {
        !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    let parts: Vec<&str> = table.split('.').collect();
    if parts.len() > 2 || !parts.iter().all(|p| plain(p)) {
        return Err(QueryError::Table(table.to_string()));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QueryError::Account(account.to_string()));
    }
    if principals.is_empty() {
        return Err(QueryError::NoPrincipals);
    }
    for principal in principals {
        if !is_principal_arn(principal) {
            return Err(QueryError::Principal(principal.to_string()));
        }
    }
    let quoted: Vec<String> = principals.iter().map(|p| format!("'{p}'")).collect();
    Ok(QUERY
        .replace("{{table}}", table)
        .replace("{{account}}", account)
        .replace("{{day}}", day.path().trim_end_matches('/'))
        .replace("{{principals}}", &quoted.join(", ")))
}

/// `arn:PARTITION:iam::ACCOUNT:role/…` or `…:user/…`, in IAM's ARN characters only (no quote
/// can reach the SQL).
fn is_principal_arn(arn: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"+=,.@_/:-".contains(&b);
    let mut fields = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return false;
    };
    arn.len() <= 2048
        && arn.bytes().all(allowed)
        && partition.starts_with("aws")
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && (resource.starts_with("role/") || resource.starts_with("user/"))
        && resource.len() > 5
}

/// Adds a query's rows into `sink`, each row's `calls` identical calls as a file holding them
/// would. Rows that do not read as records are counted as `malformed-record` (one per call
/// when the count reads, else one) and skipped; columns other than [`COLUMNS`] are an error.
pub fn add_rows<S: Sink>(
    result: &ResultRows,
    options: &ScanOptions,
    sink: &mut S,
) -> Result<(), String> {
    if result.columns != COLUMNS {
        return Err(format!(
            "the query returned columns {:?}, expected {COLUMNS:?}",
            result.columns
        ));
    }
    for row in &result.rows {
        let calls = row[12].as_deref().and_then(|c| c.parse::<u64>().ok());
        let record = calls.and_then(|_| record_of(row)).map(|r| r.to_string());
        let parsed = record.as_deref().map(serde_json::from_str::<Record>);
        match (calls, parsed) {
            (Some(calls), Some(Ok(record))) if calls > 0 => {
                scan_calls(&record, calls, options, sink);
            }
            (calls, _) => {
                let calls = calls.unwrap_or(1).max(1);
                let stats = sink.stats();
                stats.records_scanned = stats.records_scanned.saturating_add(calls);
                sink.stats().skip_many("malformed-record", calls);
            }
        }
    }
    Ok(())
}

/// A row as the CloudTrail record its calls share (`eventTime`: the group's last), or `None`
/// when its JSON columns do not parse.
fn record_of(row: &[Option<String>]) -> Option<Value> {
    let text = |i: usize| row.get(i).cloned().flatten();
    let mut record = Map::new();
    let put = |map: &mut Map<String, Value>, key: &str, value: Option<String>| {
        if let Some(value) = value {
            map.insert(key.to_string(), Value::String(value));
        }
    };
    for (i, key) in [
        (0, "eventSource"),
        (1, "eventName"),
        (2, "eventType"),
        (3, "awsRegion"),
        (4, "recipientAccountId"),
        (5, "errorCode"),
        (14, "eventTime"),
    ] {
        put(&mut record, key, text(i));
    }
    let mut identity = Map::new();
    put(&mut identity, "type", text(6));
    put(&mut identity, "arn", text(7));
    put(&mut identity, "accountId", text(8));
    if let Some(issuer) = text(9) {
        identity.insert(
            "sessionContext".to_string(),
            json!({"sessionIssuer": {"arn": issuer}}),
        );
    }
    if !identity.is_empty() {
        record.insert("userIdentity".to_string(), Value::Object(identity));
    }
    if let Some(parameters) = text(10) {
        let value: Value = serde_json::from_str(&parameters).ok()?;
        record.insert("requestParameters".to_string(), value);
    }
    if let Some(resources) = text(11) {
        record.insert("resources".to_string(), resources_of(&resources)?);
    }
    Some(Value::Object(record))
}

/// `resources` as the table's JSON text gives it — objects with the DDL's lower-case field
/// names (DuckDB, Trino), or positional `[arn, accountid, type]` arrays (Presto) — in
/// CloudTrail's own shape.
fn resources_of(text: &str) -> Option<Value> {
    let Value::Array(items) = serde_json::from_str::<Value>(text).ok()? else {
        return None;
    };
    let field = |item: &Value, name: &str, position: usize| match item {
        Value::Object(map) => (map.iter())
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone()),
        Value::Array(values) => values.get(position).cloned(),
        _ => None,
    };
    let resources = items
        .iter()
        .map(|item| {
            matches!(item, Value::Object(_) | Value::Array(_)).then(|| {
                json!({
                    "ARN": field(item, "arn", 0).unwrap_or(Value::Null),
                    "accountId": field(item, "accountid", 1).unwrap_or(Value::Null),
                    "type": field(item, "type", 2).unwrap_or(Value::Null),
                })
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Value::Array(resources))
}

/// Usage of `principals` over `days` of `accounts`, one query per account, day and (at most
/// [`MAX_PRINCIPALS_PER_QUERY`]) principals, in that order, each waited for before the next.
#[allow(clippy::too_many_arguments)]
pub async fn scan<S: Sink>(
    client: &Client,
    workgroup: &Workgroup,
    table: &str,
    accounts: &[String],
    days: &[Day],
    principals: &[&str],
    options: &ScanOptions,
) -> Result<S, AthenaScanError> {
    let mut sink = S::default();
    for account in accounts {
        let mine: Vec<&str> = (principals.iter().copied())
            .filter(|p| p.split(':').nth(4) == Some(account))
            .collect();
        for day in days {
            let queries = &mut 0;
            ask_day(
                client, workgroup, table, account, *day, &mine, options, &mut sink, queries,
            )
            .await?;
        }
    }
    Ok(sink)
}

/// Asks about `principals` in `account` on `day`, in as many queries as it takes (each
/// counted in `queries`, failed ones too), and adds the rows into `sink`.
#[allow(clippy::too_many_arguments)]
async fn ask_day<S: Sink>(
    client: &Client,
    workgroup: &Workgroup,
    table: &str,
    account: &str,
    day: Day,
    principals: &[&str],
    options: &ScanOptions,
    sink: &mut S,
    queries: &mut u64,
) -> Result<(), AthenaScanError> {
    for batch in principals.chunks(MAX_PRINCIPALS_PER_QUERY) {
        let sql = query(table, account, day, batch)?;
        *queries += 1;
        let rows = athena::run(client, workgroup, &sql).await?;
        add_rows(&rows, options, sink).map_err(AthenaScanError::Columns)?;
    }
    Ok(())
}

/// How long the answer for a day that is not over (its partition still filling) stands for
/// further questions about it: resources analyzed together share one query.
pub const RECENT_FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(600);
/// Queries one table's ingester has running at once (Athena's default quota is 20 to 25
/// running DML queries per account, shared with everyone else's).
pub const MAX_QUERIES_IN_FLIGHT: usize = 8;
/// A running query is asked about at most this often, however many resources wait for it.
const POLL_EVERY_NANOS: i128 = 1_000_000_000;

/// One Athena table's answers, for the operator: days that are over are asked once per
/// principal (every principal known to read the table at once) and kept as facts; a day still
/// filling is asked again once its answer is [`RECENT_FRESH_FOR`] old.
///
/// Nothing waits for a query: [`AthenaIngester::usage`] starts what is missing, looks once at
/// what runs, and says [`Asked::Running`] until every day of the window is answered; the
/// resource is looked at again a few seconds later.
#[derive(Debug)]
pub struct AthenaIngester {
    workgroup: Workgroup,
    table: String,
    complete: Facts,
    /// Per account and day that is over, the principals its facts answer.
    asked: BTreeMap<(String, Day), BTreeSet<String>>,
    /// Per account and day not yet over, the last answer: when, for whom, what.
    recent: BTreeMap<(String, Day), Recent>,
    /// Per account and day, the questions under way.
    flights: BTreeMap<(String, Day), Flight>,
    queries: u64,
}

#[derive(Debug)]
struct Recent {
    at: std::time::Instant,
    principals: BTreeSet<String>,
    facts: FileFacts,
}

/// The queries asking about some principals on one account and day.
#[derive(Debug, Default)]
struct Flight {
    principals: BTreeSet<String>,
    /// Batches of principals not started yet (waiting for room in flight).
    waiting: Vec<Vec<String>>,
    running: Vec<RunningQuery>,
    facts: FileFacts,
}

#[derive(Debug)]
struct RunningQuery {
    id: String,
    started: crate::time::Instant,
    polled: crate::time::Instant,
}

/// What [`AthenaIngester::usage`] could say this time.
#[derive(Debug)]
pub enum Asked {
    Answered(Usage),
    /// Queries for some days of the window are still running (or waiting to start).
    Running(Progress),
}

/// Where the questions about one principal's window stand.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// Running query execution ids, sorted.
    pub queries: Vec<String>,
    /// When the oldest of them started.
    pub since: crate::time::Instant,
    pub days_answered: usize,
    pub days: usize,
}

impl AthenaIngester {
    pub fn new(workgroup: Workgroup, table: String) -> AthenaIngester {
        AthenaIngester {
            workgroup,
            table,
            complete: Facts::default(),
            asked: BTreeMap::new(),
            recent: BTreeMap::new(),
            flights: BTreeMap::new(),
            queries: 0,
        }
    }

    /// Queries started so far.
    pub fn queries(&self) -> u64 {
        self.queries
    }

    /// `principal`'s usage over `days` (whole UTC days of the partitions) in `account`, or
    /// where the questions stand: what is not known yet is asked — for `principal` and every
    /// one of `others` (in the same account, that a query may name) not known either, so that
    /// one query answers them all. A failed query fails this call and is started again by the
    /// next. A `principal` no query may name fails this call only.
    pub async fn usage(
        &mut self,
        client: &Client,
        account: &str,
        days: &[Day],
        principal: &str,
        others: &BTreeSet<String>,
        now: crate::time::Instant,
    ) -> Result<Asked, AthenaScanError> {
        let today = Day::of(now);
        if !is_principal_arn(principal) {
            return Err(QueryError::Principal(principal.to_string()).into());
        }
        let filter = PrincipalFilter::parse(principal)
            .map_err(|_| QueryError::Principal(principal.to_string()))?;
        self.recent.retain(|(_, day), _| !over(*day, today));
        // Another resource's principal that no query may name is left out here: it fails its
        // own resource when that one asks, never the batch of everyone else.
        let mut everyone: BTreeSet<String> = (others.iter())
            .filter(|p| p.split(':').nth(4) == Some(account) && is_principal_arn(p))
            .cloned()
            .collect();
        everyone.insert(principal.to_string());
        for asked in &everyone {
            self.complete.prefer(asked);
        }
        let mut waiting: Vec<(String, Day)> = Vec::new();
        for day in days {
            let key = (account.to_string(), *day);
            if !self.needs(&key, principal, today) {
                continue;
            }
            if self.flights.contains_key(&key) {
                if !self.advance(client, &key, now).await? {
                    waiting.push(key);
                    continue;
                }
                if !self.needs(&key, principal, today) {
                    continue;
                }
            }
            // Not asked yet (or asked for others only): ask for everyone not answered.
            let ask: Vec<String> = if over(*day, today) {
                let answered = self.asked.get(&key);
                (everyone.iter())
                    .filter(|p| !answered.is_some_and(|a| a.contains(*p)))
                    .cloned()
                    .collect()
            } else {
                everyone.iter().cloned().collect()
            };
            // Refused before anything starts: every batch's query must be one to run.
            for batch in ask.chunks(MAX_PRINCIPALS_PER_QUERY) {
                let batch: Vec<&str> = batch.iter().map(String::as_str).collect();
                query(&self.table, account, *day, &batch)?;
            }
            let flight = Flight {
                principals: ask.iter().cloned().collect(),
                waiting: ask
                    .chunks(MAX_PRINCIPALS_PER_QUERY)
                    .map(<[String]>::to_vec)
                    .collect(),
                ..Flight::default()
            };
            self.flights.insert(key.clone(), flight);
            if self.advance(client, &key, now).await? {
                continue;
            }
            waiting.push(key);
        }
        if !waiting.is_empty() {
            let running: Vec<&RunningQuery> = (waiting.iter())
                .filter_map(|key| self.flights.get(key))
                .flat_map(|flight| &flight.running)
                .collect();
            let mut queries: Vec<String> = running.iter().map(|q| q.id.clone()).collect();
            queries.sort();
            return Ok(Asked::Running(Progress {
                queries,
                since: running.iter().map(|q| q.started).min().unwrap_or(now),
                days_answered: days.len() - waiting.len(),
                days: days.len(),
            }));
        }
        let mut usage = Usage::default();
        for day in days.iter().filter(|day| !over(**day, today)) {
            if let Some(recent) = self.recent.get(&(account.to_string(), *day)) {
                usage.merge(recent.facts.usage_of(&filter));
            }
        }
        if let (Some(first), Some(last)) = (days.first(), days.last()) {
            usage.merge(self.complete.usage(&filter, *first..=*last));
        }
        Ok(Asked::Answered(usage))
    }

    /// Whether `principal`'s usage on `key`'s day is still to be asked.
    fn needs(&self, key: &(String, Day), principal: &str, today: Day) -> bool {
        if over(key.1, today) {
            !self.asked.get(key).is_some_and(|a| a.contains(principal))
        } else {
            !self.recent.get(key).is_some_and(|r| {
                r.at.elapsed() < RECENT_FRESH_FOR && r.principals.contains(principal)
            })
        }
    }

    /// Looks once at `key`'s flight: reads what finished, starts what has room. True when it
    /// is done (its facts are then kept). On a failure the flight is dropped.
    async fn advance(
        &mut self,
        client: &Client,
        key: &(String, Day),
        now: crate::time::Instant,
    ) -> Result<bool, AthenaScanError> {
        let in_flight: usize = self.flights.values().map(|f| f.running.len()).sum();
        let Some(mut flight) = self.flights.remove(key) else {
            return Ok(true);
        };
        match self.step(client, key, &mut flight, in_flight, now).await {
            Ok(false) => {
                self.flights.insert(key.clone(), flight);
                Ok(false)
            }
            Ok(true) => {
                let (account, day) = key;
                if over(*day, Day::of(now)) {
                    self.complete.add(*day, flight.facts);
                    (self.asked.entry(key.clone()).or_default()).extend(flight.principals);
                } else {
                    let recent = Recent {
                        at: std::time::Instant::now(),
                        principals: flight.principals,
                        facts: flight.facts,
                    };
                    self.recent.insert((account.clone(), *day), recent);
                }
                Ok(true)
            }
            Err(error) => {
                for running in &flight.running {
                    athena::stop(client, &running.id).await;
                }
                Err(error)
            }
        }
    }

    async fn step(
        &mut self,
        client: &Client,
        (account, day): &(String, Day),
        flight: &mut Flight,
        mut in_flight: usize,
        now: crate::time::Instant,
    ) -> Result<bool, AthenaScanError> {
        let options = ScanOptions::default();
        let mut still = Vec::new();
        for mut running in std::mem::take(&mut flight.running) {
            let due = now - running.polled >= POLL_EVERY_NANOS || running.polled == running.started;
            if !due {
                still.push(running);
                continue;
            }
            running.polled = now;
            match athena::state(client, &running.id).await {
                Err(error) => {
                    flight.running = still;
                    return Err(error.into());
                }
                Ok(athena::QueryState::Succeeded) => {
                    in_flight -= 1;
                    let rows = athena::results(client, &running.id).await?;
                    add_rows(&rows, &options, &mut flight.facts)
                        .map_err(AthenaScanError::Columns)?;
                }
                Ok(athena::QueryState::Running) => {
                    if now - running.started > athena::QUERY_TIMEOUT.as_nanos() as i128 {
                        let id = running.id.clone();
                        flight.running = still;
                        athena::stop(client, &id).await;
                        return Err(AthenaError::Timeout { id }.into());
                    }
                    still.push(running);
                }
            }
        }
        flight.running = still;
        while in_flight < MAX_QUERIES_IN_FLIGHT && !flight.waiting.is_empty() {
            let batch = flight.waiting.remove(0);
            let principals: Vec<&str> = batch.iter().map(String::as_str).collect();
            let sql = query(&self.table, account, *day, &principals)?;
            self.queries += 1;
            let id = athena::start(client, &self.workgroup, &sql).await?;
            flight.running.push(RunningQuery {
                id,
                started: now,
                polled: now,
            });
            in_flight += 1;
        }
        Ok(flight.running.is_empty() && flight.waiting.is_empty())
    }

    /// Facts counted against `budget`, shared with the operator's other ingesters.
    pub fn with_budget(mut self, budget: std::sync::Arc<super::facts::FactBudget>) -> Self {
        self.complete = Facts::with_budget(budget);
        self
    }

    /// Takes the counts of what the memory bounds skipped since last taken, by reason.
    pub fn take_dropped(&mut self) -> BTreeMap<&'static str, u64> {
        self.complete.take_dropped()
    }

    /// Drops what is known of days after `day`: no query asks about them.
    pub fn forget_after(&mut self, day: Day) {
        self.complete.forget_after(day);
        self.asked.retain(|(_, d), _| *d <= day);
        self.recent.retain(|(_, d), _| *d <= day);
        self.flights.retain(|(_, d), _| *d <= day);
    }

    /// Drops what is known of days before `day`: no window reaches them any more.
    pub fn forget_before(&mut self, day: Day) {
        self.complete.forget_before(day);
        self.asked.retain(|(_, d), _| *d >= day);
        self.flights.retain(|(_, d), _| *d >= day);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AthenaScanError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Athena(#[from] AthenaError),
    #[error("{0}")]
    Columns(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::Usage;

    const APP: &str = "arn:aws:iam::111122223333:role/app";

    fn day() -> Day {
        Day {
            year: 2026,
            month: 11,
            day: 28,
        }
    }

    #[test]
    fn the_query_names_its_partitions_and_principals() {
        let sql = query("trails.cloudtrail_logs", "111122223333", day(), &[APP]).unwrap();
        assert!(sql.contains("FROM trails.cloudtrail_logs AS t"), "{sql}");
        assert!(sql.contains("WHERE account = '111122223333'"), "{sql}");
        assert!(sql.contains("\"timestamp\" = '2026/11/28'"), "{sql}");
        assert!(sql.contains(&format!("IN ('{APP}')")), "{sql}");
        assert!(!sql.contains("{{"), "every placeholder filled: {sql}");
    }

    /// Placeholders are SQL text: nothing that could close a string or a name gets in.
    #[test]
    fn injection_through_any_placeholder_is_refused() {
        for table in ["t; DROP TABLE x", "a.b.c", "\"t\"", "", "t--"] {
            assert_eq!(
                query(table, "111122223333", day(), &[APP]),
                Err(QueryError::Table(table.to_string()))
            );
        }
        for account in ["11112222333", "111122223333' OR '1'='1", "abcdefghijkl"] {
            assert_eq!(
                query("t", account, day(), &[APP]),
                Err(QueryError::Account(account.to_string()))
            );
        }
        for principal in [
            "arn:aws:iam::111122223333:role/app') OR ('1'='1",
            "arn:aws:iam::111122223333:role/a'b",
            "app",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::111122223333:role/",
            "arn:aws:iam::111122223333:role/a b",
        ] {
            assert_eq!(
                query("t", "111122223333", day(), &[APP, principal]),
                Err(QueryError::Principal(principal.to_string()))
            );
        }
        assert_eq!(
            query("t", "111122223333", day(), &[]),
            Err(QueryError::NoPrincipals)
        );
    }

    fn row(values: &[(&str, &str)]) -> Vec<Option<String>> {
        COLUMNS
            .iter()
            .map(|c| {
                (values.iter())
                    .find(|(k, _)| k == c)
                    .map(|(_, v)| v.to_string())
            })
            .collect()
    }

    fn rows(rows: Vec<Vec<Option<String>>>) -> ResultRows {
        ResultRows {
            columns: COLUMNS.iter().map(|c| c.to_string()).collect(),
            rows,
        }
    }

    fn get_object(resources: &str, calls: &str) -> Vec<Option<String>> {
        row(&[
            ("eventsource", "s3.amazonaws.com"),
            ("eventname", "GetObject"),
            ("awsregion", "us-east-1"),
            ("recipientaccountid", "111122223333"),
            ("identitytype", "AssumedRole"),
            (
                "identityarn",
                "arn:aws:sts::111122223333:assumed-role/app/s",
            ),
            ("issuerarn", APP),
            ("requestparameters", r#"{"bucketName":"b","key":"k"}"#),
            ("resources", resources),
            ("calls", calls),
            ("firsttime", "2026-11-28T01:00:00Z"),
            ("lasttime", "2026-11-28T02:00:00Z"),
        ])
    }

    /// A grouped row counts as its calls, and both JSON shapes of `resources` read the same.
    #[test]
    fn a_row_is_its_calls_whatever_shape_resources_has() {
        let objects = r#"[{"arn":"arn:aws:s3:::b/k","accountid":null,"type":"AWS::S3::Object"},{"arn":"arn:aws:s3:::b","accountid":"111122223333","type":"AWS::S3::Bucket"}]"#;
        let positional = r#"[["arn:aws:s3:::b/k",null,"AWS::S3::Object"],["arn:aws:s3:::b","111122223333","AWS::S3::Bucket"]]"#;
        let usage = |resources: &str| {
            let mut usage = Usage::default();
            add_rows(
                &rows(vec![get_object(resources, "3")]),
                &ScanOptions::default(),
                &mut usage,
            )
            .unwrap();
            usage
        };
        let from_objects = usage(objects);
        assert_eq!(from_objects, usage(positional));
        let get = &from_objects.actions["s3:GetObject"];
        assert_eq!(get.seen.count, 3);
        assert_eq!(get.seen.last_seen, "2026-11-28T02:00:00Z");
        assert_eq!(get.resources["arn:aws:s3:::b/k"].count, 3);
        assert_eq!(from_objects.stats.records_matched, 3);
        assert_eq!(from_objects.stats.records_scanned, 3);
    }

    /// Rows whose JSON does not parse, or whose count does not read, are counted and skipped;
    /// the next row still counts.
    #[test]
    fn malformed_rows_are_counted_and_skipped() {
        let mut bad_parameters = get_object("[]", "2");
        bad_parameters[10] = Some("{not json".to_string());
        let mut bad_count = get_object("[]", "x");
        bad_count[12] = Some("-1".to_string());
        let mut usage = Usage::default();
        add_rows(
            &rows(vec![
                bad_parameters,
                get_object(r#"{"not":"a list"}"#, "4"),
                bad_count,
                get_object("[]", "1"),
            ]),
            &ScanOptions::default(),
            &mut usage,
        )
        .unwrap();
        assert_eq!(usage.stats.skipped["malformed-record"], 2 + 4 + 1);
        assert_eq!(usage.actions["s3:GetObject"].seen.count, 1);
        let mut other = rows(vec![]);
        other.columns.pop();
        let error = add_rows(&other, &ScanOptions::default(), &mut usage).unwrap_err();
        assert!(error.contains("expected"), "{error}");
    }

    /// Found by fuzzing: a malformed row's huge count after other rows overflowed the scan's
    /// record count. Counts are the table's (untrusted): they saturate.
    #[test]
    fn huge_counts_saturate() {
        let max = u64::MAX.to_string();
        let mut malformed = get_object("[]", &max);
        malformed[10] = Some("{not json".to_string());
        let mut usage = Usage::default();
        let huge = rows(vec![get_object("[]", &max), malformed.clone(), malformed]);
        add_rows(&huge, &ScanOptions::default(), &mut usage).unwrap();
        assert_eq!(usage.stats.records_scanned, u64::MAX);
        assert_eq!(usage.stats.skipped["malformed-record"], u64::MAX);
    }

    /// Found by fuzzing (CI): one call after a row of `u64::MAX` calls overflowed the matched
    /// count, which a single call added to without saturating.
    #[test]
    fn one_call_after_a_huge_row_saturates() {
        let max = u64::MAX.to_string();
        let mut usage = Usage::default();
        let huge = rows(vec![get_object("[]", &max), get_object("[]", "1")]);
        add_rows(&huge, &ScanOptions::default(), &mut usage).unwrap();
        assert_eq!(usage.stats.records_matched, u64::MAX);
        assert_eq!(usage.actions["s3:GetObject"].seen.count, u64::MAX);
    }
}
