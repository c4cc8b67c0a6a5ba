//! The only place that calls AWS. Everything else works on plain data, so it can be tested
//! without a network and reasoned about without credentials.

pub mod access_analyzer;
pub mod athena;
pub mod iam;
pub mod s3;
pub mod sqs;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use std::sync::Arc;
use std::time::Duration;

/// The service's own code and message when it answered (`Code: message`), else the SDK's
/// error chain (timeouts, connection failures). Never the request id: a repeated failure must
/// read the same, or every retry would write a new status. `SdkError` and the metadata trait
/// are the same smithy types in every aws-sdk crate.
pub(crate) fn sdk_message<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match (error.code(), error.message()) {
        (Some(code), Some(text)) => format!("{code}: {text}"),
        (Some(code), None) => code.to_string(),
        _ => DisplayErrorContext(error).to_string(),
    }
}

/// How long one attempt of an AWS call may take by default (connect, send, the response
/// head); the SDK's retries get three attempts' time in all.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An AWS SDK client configuration from the environment (credentials chain, region,
/// `AWS_ENDPOINT_URL`), with `region` overriding the environment's region when given, and
/// timeouts ([`with_timeouts`], [`DEFAULT_ATTEMPT_TIMEOUT`]): an endpoint that never answers
/// must not hold a caller forever.
pub async fn sdk_config(region: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    let mut config = loader.load().await;
    if config.region().is_none() {
        // CloudTrail buckets answer from any region for listing and reads; pick a default so
        // a missing AWS_REGION is not an error.
        config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .load()
            .await;
    }
    with_timeouts(&config, DEFAULT_ATTEMPT_TIMEOUT)
}

/// `config` with each attempt of a call limited to `attempt` (connecting to
/// [`CONNECT_TIMEOUT`] at most), and a whole call with its retries to three attempts.
pub fn with_timeouts(config: &aws_config::SdkConfig, attempt: Duration) -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(attempt))
        .operation_attempt_timeout(attempt)
        .operation_timeout(attempt * 3)
        .build();
    config.to_builder().timeout_config(timeouts).build()
}

/// Who an assumed-role session acts for: its name and session tags show in the target
/// account's CloudTrail.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Session {
    /// RoleSessionName: 2 to 64 of `[\w+=,.@-]`.
    pub name: String,
    /// Session tags (key, value).
    pub tags: Vec<(String, String)>,
}

impl Session {
    /// The session of the resource `namespace`/`name`: named `<namespace>.<name>` (cut to
    /// STS's 64 characters) and tagged `iam-tailor.dev/namespace` and `iam-tailor.dev/name`.
    pub fn of_resource(namespace: &str, name: &str) -> Session {
        let full = format!("{namespace}.{name}");
        let mut session: String = full
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(*c))
            .take(64)
            .collect();
        while session.len() < 2 {
            session.push('-');
        }
        Session {
            name: session,
            tags: vec![
                (
                    "iam-tailor.dev/namespace".to_string(),
                    namespace.to_string(),
                ),
                ("iam-tailor.dev/name".to_string(), name.to_string()),
            ],
        }
    }
}

/// `base` with credentials from assuming `role_arn` as `session`, sending `external_id` when
/// the role's trust requires one (refreshed by the provider as they expire), for roles in
/// other accounts. STS honours `AWS_ENDPOINT_URL` like every
/// client. Session tags need `sts:TagSession` in the role's trust policy.
pub async fn assume_role(
    base: &aws_config::SdkConfig,
    role_arn: &str,
    session: &Session,
    external_id: Option<&str>,
) -> aws_config::SdkConfig {
    let mut builder = aws_config::sts::AssumeRoleProvider::builder(role_arn)
        .session_name(&session.name)
        .tags(session.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if let Some(id) = external_id {
        builder = builder.external_id(id);
    }
    let provider = builder.configure(base).build().await;
    base.to_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        )
        .build()
}

#[cfg(test)]
mod session_tests {
    use super::Session;

    #[test]
    fn a_session_names_the_resource_within_sts_limits() {
        let session = Session::of_resource("payments", "checkout");
        assert_eq!(session.name, "payments.checkout");
        assert_eq!(
            session.tags[1],
            ("iam-tailor.dev/name".to_string(), "checkout".to_string())
        );
        let long = Session::of_resource("payments", &"x".repeat(253));
        assert_eq!(long.name.len(), 64);
        assert_eq!(long.tags[1].1.len(), 253, "the tag keeps the whole name");
    }
}

/// Spaces AWS calls to an average of `per_second`, allowing a burst of that many after a
/// quiet second. IAM's request quota is per account, and the SDK's retries only react to
/// throttling after it happened; this keeps a busy operator from causing it.
#[derive(Debug)]
pub struct RateLimiter {
    interval: std::time::Duration,
    /// When the next call may start, before burst credit.
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl RateLimiter {
    /// `None` for 0: no limit.
    pub fn per_second(per_second: u32) -> Option<RateLimiter> {
        (per_second > 0).then(|| RateLimiter {
            interval: std::time::Duration::from_secs(1) / per_second,
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        })
    }

    /// Waits for this call's turn.
    pub async fn acquire(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let now = tokio::time::Instant::now();
            let burst_floor = now
                .checked_sub(std::time::Duration::from_secs(1))
                .unwrap_or(now);
            let at = (*next).max(burst_floor);
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// The rate limits one client's calls take their turn at, in order: a tenant's share, then
/// the budget every resource shares. Empty: unlimited.
#[derive(Clone, Debug, Default)]
pub struct Limits(Vec<Arc<RateLimiter>>);

impl Limits {
    /// The budget every resource shares alone (`None`: unlimited).
    pub fn shared(limiter: Option<Arc<RateLimiter>>) -> Limits {
        Limits(limiter.into_iter().collect())
    }

    /// `share` first, then these.
    pub fn within(&self, share: Option<Arc<RateLimiter>>) -> Limits {
        Limits(share.into_iter().chain(self.0.iter().cloned()).collect())
    }

    async fn acquire(&self) {
        for limiter in &self.0 {
            limiter.acquire().await;
        }
    }
}

/// An AWS SDK client whose calls share a [`RateLimiter`] (on top of the SDK's own retries), so
/// many resources reconciling at once stay under the account's request quota. Made `From` a bare
/// client, it is unlimited: for the CLI and tests.
#[derive(Clone, Debug)]
pub struct Limited<C> {
    client: C,
    limits: Limits,
}

impl<C> Limited<C> {
    pub fn with_limits(client: C, limits: Limits) -> Self {
        Limited { client, limits }
    }

    /// The client, once the rate limits allow the next call.
    async fn call(&self) -> &C {
        self.limits.acquire().await;
        &self.client
    }
}

impl<C> From<C> for Limited<C> {
    fn from(client: C) -> Self {
        Limited::with_limits(client, Limits::default())
    }
}

#[cfg(test)]
mod tests {
    use super::{Limits, RateLimiter};
    use std::sync::Arc;
    use std::time::Duration;

    /// One tenant calling as fast as it can takes its share of the budget, not all of it: the
    /// other tenant's few calls go through in about a second, not behind the flood.
    #[tokio::test(start_paused = true)]
    async fn a_tenant_s_share_leaves_the_rest_of_the_budget_to_the_others() {
        let shared = Limits::shared(RateLimiter::per_second(10).map(Arc::new));
        let noisy = shared.within(RateLimiter::per_second(5).map(Arc::new));
        let quiet = shared.within(RateLimiter::per_second(5).map(Arc::new));
        let start = tokio::time::Instant::now();
        let flood: Vec<_> = (0..8)
            .map(|_| {
                let noisy = noisy.clone();
                tokio::spawn(async move {
                    for _ in 0..25 {
                        noisy.acquire().await;
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let asked = tokio::time::Instant::now();
        for _ in 0..5 {
            quiet.acquire().await;
        }
        let waited = asked.elapsed();
        assert!(waited < Duration::from_millis(1_500), "waited {waited:?}");
        for task in flood {
            task.await.unwrap();
        }
        // The flood itself went at its share: 200 calls at 5/s.
        assert!(
            start.elapsed() >= Duration::from_secs(38),
            "{:?}",
            start.elapsed()
        );
        // Without the shares, the same few calls queue behind the flood's.
        let unfair = Limits::shared(RateLimiter::per_second(10).map(Arc::new));
        for _ in 0..8 {
            let unfair = unfair.clone();
            tokio::spawn(async move {
                for _ in 0..25 {
                    unfair.acquire().await;
                }
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let asked = tokio::time::Instant::now();
        for _ in 0..5 {
            unfair.acquire().await;
        }
        let unfair_wait = asked.elapsed();
        assert!(
            unfair_wait > 2 * waited,
            "behind the flood {unfair_wait:?}, with shares {waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn averages_the_rate_after_a_burst() {
        let limiter = RateLimiter::per_second(10).unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await; // idle: burst credit
        let start = tokio::time::Instant::now();
        for _ in 0..10 {
            limiter.acquire().await;
        }
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "a burst of 10 waits not"
        );
        for _ in 0..20 {
            limiter.acquire().await;
        }
        let elapsed = start.elapsed();
        assert!(
            (Duration::from_millis(1_900)..=Duration::from_millis(2_100)).contains(&elapsed),
            "20 more at 10/s take 2 s, took {elapsed:?}"
        );
        assert!(RateLimiter::per_second(0).is_none());
    }
}
