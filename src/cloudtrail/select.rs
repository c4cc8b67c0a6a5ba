//! Choosing records: whose they are, when they happened, and whether they used a permission.

use super::Record;
use crate::policy::values::{Instant, parse_date};

const NANOS: i128 = 1_000_000_000;

/// Which principal's records to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrincipalFilter {
    /// A role, by full ARN (path included) or by bare name (then in any account and path).
    Role { arn: Option<String>, name: String },
    /// An IAM user, by full ARN.
    User { arn: String },
}

impl PrincipalFilter {
    /// Parses a role ARN (`arn:aws:iam::111122223333:role/path/name`), a user ARN
    /// (`arn:aws:iam::111122223333:user/name`) or a bare role name (`name`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let Some(rest) = s.strip_prefix("arn:") else {
            if is_name(s) {
                return Ok(Self::Role {
                    arn: None,
                    name: s.to_string(),
                });
            }
            return Err(format!(
                "`{s}` is neither a role or user ARN nor a role name"
            ));
        };
        let fields: Vec<&str> = rest.splitn(5, ':').collect();
        let [partition, service, region, account, resource] = fields[..] else {
            return Err(format!("`{s}` is not an ARN"));
        };
        if partition.is_empty()
            || !region.is_empty()
            || account.len() != 12
            || !account.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(format!(
                "`{s}` is not an IAM ARN with a 12-digit account and no region"
            ));
        }
        let name = resource.rsplit('/').next().unwrap_or_default();
        match (service, resource.split_once('/')) {
            ("iam", Some(("role", _))) if is_name(name) => Ok(Self::Role {
                arn: Some(s.to_string()),
                name: name.to_string(),
            }),
            ("iam", Some(("user", _))) if is_name(name) => Ok(Self::User { arn: s.to_string() }),
            ("sts", Some(("assumed-role", session))) => Err(format!(
                "`{s}` is a session; give its role: arn:{partition}:iam::{account}:role/{}",
                session.split('/').next().unwrap_or_default()
            )),
            _ => Err(format!(
                "`{s}` is not a role (…:role/NAME) or user (…:user/NAME) ARN"
            )),
        }
    }

    /// Whether `record` was made with this principal's permissions.
    ///
    /// A user also matches the federated-user sessions it issued (`GetFederationToken`): their
    /// calls are allowed by the user's policies, so shrinking the user must keep them.
    pub fn matches(&self, record: &Record) -> bool {
        let Some(identity) = &record.user_identity else {
            return false;
        };
        let issuer = identity
            .session_context
            .as_ref()
            .and_then(|c| c.session_issuer.as_ref())
            .and_then(|i| i.arn.as_deref());
        match self {
            Self::Role { arn: Some(arn), .. } => {
                issuer == Some(arn) || identity.arn.as_deref() == Some(arn)
            }
            Self::Role { arn: None, name } => issuer.is_some_and(|issuer| {
                issuer.split(':').nth(5).is_some_and(|resource| {
                    resource.starts_with("role/") && resource.rsplit('/').next() == Some(name)
                })
            }),
            Self::User { arn } => match identity.kind.as_deref() {
                Some("IAMUser") => identity.arn.as_deref() == Some(arn),
                Some("FederatedUser") => issuer == Some(arn),
                _ => false,
            },
        }
    }
}

/// IAM's name characters: letters, digits and `+=,.@_-`.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

/// The instant `s` (`90d`, `12h`, `30m`, `2w`) before `now`.
pub fn parse_since(s: &str, now: Instant) -> Result<Instant, String> {
    let s = s.trim();
    let error = || format!("`{s}` is not a duration like 90d, 12h, 30m or 2w");
    let unit = match s.bytes().last().ok_or_else(error)? {
        b'm' => 60,
        b'h' => 3_600,
        b'd' => 86_400,
        b'w' => 7 * 86_400,
        _ => return Err(error()),
    };
    let count = &s[..s.len() - 1];
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error());
    }
    let count: i128 = count.parse().map_err(|_| error())?;
    count
        .checked_mul(unit * NANOS)
        .and_then(|span| now.checked_sub(span))
        .ok_or_else(error)
}

/// Where an event time falls against the scan's window.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum When {
    Inside,
    Outside,
    /// The record has no `eventTime`.
    Missing,
    /// The record's `eventTime` is not a date.
    Invalid,
}

/// The window `[from, to)` on `eventTime`. Each bound is also kept as text in CloudTrail's
/// `YYYY-MM-DDTHH:MM:SSZ` form, against which times of that form compare correctly as text: no
/// date parsing for nearly every record.
#[derive(Debug)]
pub(crate) struct Window {
    from: Option<Bound>,
    to: Option<Bound>,
}

#[derive(Debug)]
struct Bound {
    nanos: Instant,
    /// The first whole second at or after `nanos`, as text, when its year has four digits.
    /// (Event times have whole seconds, so `t >= from` and `t < to` hold exactly when they hold
    /// for this rounded-up second.)
    text: Option<String>,
}

impl Bound {
    fn new(nanos: Instant) -> Self {
        let secs = nanos.div_euclid(NANOS) + i128::from(nanos.rem_euclid(NANOS) != 0);
        Self {
            nanos,
            text: i64::try_from(secs).ok().and_then(format_time),
        }
    }

    /// `time` against this bound, as text when both have the fixed form.
    fn cmp(&self, time: &str, parsed: &mut Option<Option<Instant>>) -> Option<std::cmp::Ordering> {
        match &self.text {
            Some(text) if is_fixed_form(time) => Some(time.cmp(text.as_str())),
            _ => parsed
                .get_or_insert_with(|| parse_date(time))
                .map(|t| t.cmp(&self.nanos)),
        }
    }
}

impl Window {
    pub(crate) fn new(from: Option<Instant>, to: Option<Instant>) -> Self {
        Self {
            from: from.map(Bound::new),
            to: to.map(Bound::new),
        }
    }

    pub(crate) fn check(&self, event_time: Option<&str>) -> When {
        if self.from.is_none() && self.to.is_none() {
            return When::Inside;
        }
        let Some(time) = event_time else {
            return When::Missing;
        };
        let mut parsed = None;
        let after_from = self.from.as_ref().map(|b| b.cmp(time, &mut parsed).map(|o| o.is_ge()));
        let before_to = self.to.as_ref().map(|b| b.cmp(time, &mut parsed).map(|o| o.is_lt()));
        match (after_from, before_to) {
            (Some(None), _) | (_, Some(None)) => When::Invalid,
            (Some(Some(false)), _) | (_, Some(Some(false))) => When::Outside,
            _ => When::Inside,
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, CloudTrail's form for `eventTime`.
fn is_fixed_form(time: &str) -> bool {
    let b = time.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Seconds since the epoch in the fixed form, for years 0 to 9999.
fn format_time(secs: i64) -> Option<String> {
    let (days, secs) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (0..=9999).contains(&year).then(|| {
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            secs / 3_600,
            secs / 60 % 60,
            secs % 60
        )
    })
}

/// Whether an `errorCode` says the call was refused for lack of permission. Such calls are
/// denied attempts, never use; every other error (`NoSuchKey`, `ThrottlingException`, …) came
/// after authorization and counts as use.
pub(crate) fn is_denied(error_code: &str) -> bool {
    const WORDS: [&str; 3] = ["accessdenied", "unauthorized", "notauthorized"];
    const CODES: [&str; 4] = [
        "AuthorizationError",
        "AuthorizationErrorException",
        "Forbidden",
        "ForbiddenException",
    ];
    let lower = error_code.to_ascii_lowercase();
    WORDS.iter().any(|w| lower.contains(w)) || CODES.iter().any(|c| c.eq_ignore_ascii_case(error_code))
}

/// Why a record is not an API call made with the principal's permissions, if it is not: the
/// reason it is counted under in `usage.stats.skipped`.
///
/// Sign-in is decided by AWS's sign-in and IAM Identity Center portal services, not by the
/// principal's policies: those events are skipped. Only events that are sign-in steps are,
/// though: `signin` and `sso` also have real IAM actions (`signin:CreateOAuth2Token`,
/// `sso:ListPermissionSets`, …), whose calls go on to be mapped like any other.
pub(crate) fn pseudo_event(record: &Record) -> Option<&'static str> {
    match record.event_type.as_deref() {
        Some("AwsConsoleSignIn") => return Some("console-sign-in"),
        Some("AwsServiceEvent") => return Some("service-event"),
        Some("AwsCloudTrailInsight") => return Some("insight-event"),
        Some("AwsVpceEvent") => return Some("vpce-event"),
        _ => {}
    }
    let name = record.event_name.as_deref()?;
    match record.event_source.as_deref()? {
        "signin.amazonaws.com"
            if matches!(
                name,
                "ConsoleLogin"
                    | "CheckMfa"
                    | "SwitchRole"
                    | "ExitRole"
                    | "RenewRole"
                    | "GetSigninToken"
                    | "CredentialChallenge"
                    | "CredentialVerification"
                    | "UserAuthentication"
                    | "PasswordUpdated"
            ) =>
        {
            Some("console-sign-in")
        }
        // The access portal: sign-in, then listing and fetching the credentials of the
        // accounts and roles the user may use. None has an IAM action.
        "sso.amazonaws.com"
            if matches!(
                name,
                "Authenticate"
                    | "Federate"
                    | "Logout"
                    | "GetRoleCredentials"
                    | "ListAccounts"
                    | "ListAccountRoles"
            ) =>
        {
            Some("sso-sign-in")
        }
        // The OIDC flow of the CLI and SDKs signing in (`aws sso login`).
        "sso-oauth.amazonaws.com"
            if matches!(
                name,
                "CreateToken" | "RegisterClient" | "StartDeviceAuthorization"
            ) =>
        {
            Some("sso-sign-in")
        }
        _ => None,
    }
}
