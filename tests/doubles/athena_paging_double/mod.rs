//! `AthenaPagingDouble`: a **test double** of four Athena operations, not an emulator.
//!
//! moto's Athena answers every query at once and returns all its rows in one page, so the
//! paths real Athena takes — a query still `RUNNING` when first polled, a query that `FAILED`
//! with a reason, results in pages of at most 1,000 rows joined by `NextToken`, the header row
//! on the first page only — are exercised against this small server instead. It speaks
//! Athena's JSON 1.1 protocol (`POST /`, `X-Amz-Target: AmazonAthena.<Operation>`), so the real
//! `aws_sdk_athena::Client`, pointed at [`AthenaPagingDouble::endpoint`], runs end to end.
//!
//! | request | answer |
//! |---|---|
//! | `StartQueryExecution` | a new `QueryExecutionId` |
//! | `GetQueryExecution` | `RUNNING` for the first [`AthenaPagingDouble::running_polls`] polls, then `SUCCEEDED`, or `FAILED` with the reason given to [`AthenaPagingDouble::fail_with`] |
//! | `GetQueryResults` | the canned rows, the header row first, [`PAGE`] rows per page (fewer if `MaxResults` says so) with `NextToken` |
//! | `StopQueryExecution` | `{}` |
//!
//! Every operation is recorded ([`AthenaPagingDouble::operations`]). The double runs no SQL:
//! its rows are canned by the test.

use crate::double_server;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use double_server::Serving;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// Athena's most rows per GetQueryResults page.
pub const PAGE: usize = 1_000;

#[derive(Default)]
struct Canned {
    columns: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
    running_polls: usize,
    polls: usize,
    failure: Option<String>,
    operations: Vec<String>,
}

pub struct AthenaPagingDouble {
    state: Arc<Mutex<Canned>>,
    server: Serving,
}

impl AthenaPagingDouble {
    pub fn start(columns: &[&str], rows: Vec<Vec<Option<String>>>) -> AthenaPagingDouble {
        let state = Arc::new(Mutex::new(Canned {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
            ..Canned::default()
        }));
        let shared = state.clone();
        let server = Serving::start(move || Router::new().fallback(answer).with_state(shared));
        AthenaPagingDouble { state, server }
    }

    pub fn endpoint(&self) -> &str {
        &self.server.endpoint
    }

    /// Polls answered `RUNNING` before the query is done.
    pub fn running_polls(&self, polls: usize) {
        self.state.lock().unwrap().running_polls = polls;
    }

    /// The query ends `FAILED` with `reason`.
    pub fn fail_with(&self, reason: &str) {
        self.state.lock().unwrap().failure = Some(reason.to_string());
    }

    /// The operations asked, in order.
    pub fn operations(&self) -> Vec<String> {
        self.state.lock().unwrap().operations.clone()
    }
}

async fn answer(
    State(state): State<Arc<Mutex<Canned>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = (headers.get("x-amz-target").and_then(|v| v.to_str().ok()))
        .and_then(|t| t.strip_prefix("AmazonAthena."))
        .unwrap_or_default()
        .to_string();
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut state = state.lock().unwrap();
    state.operations.push(target.clone());
    let reply = match target.as_str() {
        "StartQueryExecution" => json!({"QueryExecutionId": "q-1"}),
        "GetQueryExecution" => {
            state.polls += 1;
            let status = if state.polls <= state.running_polls {
                json!({"State": "RUNNING"})
            } else if let Some(reason) = &state.failure {
                json!({"State": "FAILED", "StateChangeReason": reason})
            } else {
                json!({"State": "SUCCEEDED"})
            };
            json!({"QueryExecution": {"QueryExecutionId": "q-1", "Status": status}})
        }
        "GetQueryResults" => {
            let start: usize = (request["NextToken"].as_str())
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let size = (request["MaxResults"].as_u64()).map_or(PAGE, |m| (m as usize).min(PAGE));
            let header: Vec<Option<String>> = state.columns.iter().cloned().map(Some).collect();
            let all: Vec<&Vec<Option<String>>> =
                std::iter::once(&header).chain(state.rows.iter()).collect();
            let end = (start + size).min(all.len());
            let rows: Vec<Value> = all[start..end]
                .iter()
                .map(|row| {
                    let data: Vec<Value> = (row.iter())
                        .map(|v| v.as_ref().map_or(json!({}), |v| json!({"VarCharValue": v})))
                        .collect();
                    json!({"Data": data})
                })
                .collect();
            let columns: Vec<Value> = (state.columns.iter())
                .map(|c| json!({"Name": c, "Type": "varchar"}))
                .collect();
            let mut reply = json!({"ResultSet": {
                "Rows": rows,
                "ResultSetMetadata": {"ColumnInfo": columns},
            }});
            if end < all.len() {
                reply["NextToken"] = json!(end.to_string());
            }
            reply
        }
        "StopQueryExecution" => json!({}),
        _ => {
            return (StatusCode::BAD_REQUEST, format!("not doubled: {target}")).into_response();
        }
    };
    (
        [(header::CONTENT_TYPE, "application/x-amz-json-1.1")],
        reply.to_string(),
    )
        .into_response()
}
