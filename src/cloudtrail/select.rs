//! Choosing records: whose they are, when they happened, and whether they used a permission.

use super::Record;
use crate::time::{Instant, parse_date};

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

    /// Whether `record` was made with this principal's permissions: whether its
    /// [`principal_key`] is this principal's.
    pub fn matches(&self, record: &Record) -> bool {
        principal_key(record).is_some_and(|key| self.matches_key(key))
    }

    /// Whether `key` (a [`principal_key`]: a role or user ARN) is this principal's.
    pub fn matches_key(&self, key: &str) -> bool {
        match self {
            Self::Role { arn: Some(arn), .. } | Self::User { arn } => key == arn,
            Self::Role { arn: None, name } => key.split(':').nth(5).is_some_and(|resource| {
                resource.starts_with("role/") && resource.rsplit('/').next() == Some(name)
            }),
        }
    }
}

/// Whose permissions `record` was made with: the user's ARN for an IAM user, else the ARN of
/// the session's issuer — the role of an assumed-role session, the user of a federated one
/// (`GetFederationToken`: its calls are allowed by the user's policies, so shrinking the user
/// must keep them) — or, with no session, the identity's own ARN when it is a role's (a call
/// made as the role itself). `None` for the root user, AWS services and records without an
/// identity.
pub fn principal_key<'r>(record: &'r Record) -> Option<&'r str> {
    let identity = record.user_identity.as_ref()?;
    if identity.kind.as_deref() == Some("IAMUser") {
        return identity.arn.as_deref();
    }
    let issuer = (identity.session_context.as_ref())
        .and_then(|c| c.session_issuer.as_ref())
        .and_then(|i| i.arn.as_deref());
    issuer.or_else(|| {
        identity.arn.as_deref().filter(|arn| {
            arn.split(':')
                .nth(5)
                .is_some_and(|r| r.starts_with("role/"))
        })
    })
}

/// IAM's name characters: letters, digits and `+=,.@_-`.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
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

    /// `time` against this bound, as text when both have the fixed form (`fixed`: `time` has).
    fn cmp(
        &self,
        time: &str,
        fixed: bool,
        parsed: &mut Option<Option<Instant>>,
    ) -> Option<std::cmp::Ordering> {
        match &self.text {
            Some(text) if fixed => Some(time.cmp(text.as_str())),
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
        // Month 80 or February 30 in the fixed form is no time, as the operator's days
        // (`Day::of_event_time`) have it, whatever the lenient parser would make of it.
        let fixed = is_fixed_form(time);
        if fixed && crate::time::Day::of_event_time(time).is_none() {
            return When::Invalid;
        }
        let mut parsed = None;
        let after_from = self
            .from
            .as_ref()
            .map(|b| b.cmp(time, fixed, &mut parsed).map(|o| o.is_ge()));
        let before_to = self
            .to
            .as_ref()
            .map(|b| b.cmp(time, fixed, &mut parsed).map(|o| o.is_lt()));
        match (after_from, before_to) {
            (Some(None), _) | (_, Some(None)) => When::Invalid,
            (Some(Some(false)), _) | (_, Some(Some(false))) => When::Outside,
            _ => When::Inside,
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, CloudTrail's form for `eventTime` (digits where digits go).
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
    WORDS.iter().any(|w| lower.contains(w))
        || CODES.iter().any(|c| c.eq_ignore_ascii_case(error_code))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: &str) -> Record<'_> {
        serde_json::from_str(json).unwrap()
    }

    fn session(issuer: &str) -> String {
        format!(
            r#"{{"userIdentity":{{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/x/s",
              "sessionContext":{{"sessionIssuer":{{"type":"Role","arn":"{issuer}"}}}}}}}}"#
        )
    }

    #[test]
    fn parses_principals() {
        let role = "arn:aws:iam::111122223333:role/service/app";
        assert_eq!(
            PrincipalFilter::parse(role),
            Ok(PrincipalFilter::Role {
                arn: Some(role.into()),
                name: "app".into()
            })
        );
        let user = "arn:aws-us-gov:iam::111122223333:user/ops/alice";
        assert_eq!(
            PrincipalFilter::parse(user),
            Ok(PrincipalFilter::User { arn: user.into() })
        );
        assert_eq!(
            PrincipalFilter::parse(" app-role "),
            Ok(PrincipalFilter::Role {
                arn: None,
                name: "app-role".into()
            })
        );
        let session = PrincipalFilter::parse("arn:aws:sts::111122223333:assumed-role/app/i-1");
        assert!(
            session
                .unwrap_err()
                .contains("arn:aws:iam::111122223333:role/app")
        );
        for bad in [
            "",
            "role/app",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::111122223333:group/g",
            "arn:aws:iam::1111:role/app",
            "arn:aws:iam:us-east-1:111122223333:role/app",
            "arn:aws:iam::111122223333:role/",
        ] {
            assert!(PrincipalFilter::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn role_filters_match_sessions_by_issuer() {
        let by_arn = PrincipalFilter::parse("arn:aws:iam::111122223333:role/service/app").unwrap();
        let by_name = PrincipalFilter::parse("app").unwrap();
        let same = session("arn:aws:iam::111122223333:role/service/app");
        let other_path = session("arn:aws:iam::111122223333:role/app");
        let other_account = session("arn:aws:iam::444455556666:role/other/app");
        let other_name = session("arn:aws:iam::111122223333:role/service/app2");
        for (json, arn, name) in [
            (&same, true, true),
            (&other_path, false, true),
            (&other_account, false, true),
            (&other_name, false, false),
        ] {
            assert_eq!(by_arn.matches(&record(json)), arn, "{json}");
            assert_eq!(by_name.matches(&record(json)), name, "{json}");
        }
        // A record made as the role itself (no session context).
        let direct = r#"{"userIdentity":{"type":"AWSService","arn":"arn:aws:iam::111122223333:role/service/app"}}"#;
        assert!(by_arn.matches(&record(direct)));
        // A user named `app` is not the role `app`.
        let user =
            r#"{"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/app"}}"#;
        assert!(!by_name.matches(&record(user)));
        assert!(!by_arn.matches(&record("{}")));
    }

    #[test]
    fn user_filters_match_the_user_and_its_federated_sessions() {
        let alice = PrincipalFilter::parse("arn:aws:iam::111122223333:user/alice").unwrap();
        let direct =
            r#"{"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice"}}"#;
        let federated = r#"{"userIdentity":{"type":"FederatedUser","arn":"arn:aws:sts::111122223333:federated-user/f",
            "sessionContext":{"sessionIssuer":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice"}}}}"#;
        let bob =
            r#"{"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/bob"}}"#;
        let root =
            r#"{"userIdentity":{"type":"Root","arn":"arn:aws:iam::111122223333:user/alice"}}"#;
        assert!(alice.matches(&record(direct)));
        assert!(alice.matches(&record(federated)));
        assert!(!alice.matches(&record(bob)));
        assert!(!alice.matches(&record(root)));
    }

    #[test]
    fn formats_times_like_parse_date_reads_them() {
        for secs in [
            0,
            59,
            86_399,
            951_782_400,
            1_722_427_012,
            253_402_300_799,
            -1,
        ] {
            let text = format_time(secs).unwrap();
            assert!(is_fixed_form(&text), "{text}");
            assert_eq!(parse_date(&text), Some(i128::from(secs) * NANOS), "{text}");
        }
        assert_eq!(format_time(951_782_400).unwrap(), "2000-02-29T00:00:00Z");
        assert_eq!(format_time(253_402_300_800), None);
        assert_eq!(format_time(-62_167_219_201), None);
    }

    #[test]
    fn windows_compare_text_and_fall_back_to_dates() {
        let at = |s: &str| parse_date(s).unwrap();
        // Inclusive from, exclusive to; a from with a fraction of a second rounds up.
        let window = Window::new(
            Some(at("2024-01-01T00:00:00Z")),
            Some(at("2024-02-01T00:00:00Z")),
        );
        assert_eq!(window.check(Some("2024-01-01T00:00:00Z")), When::Inside);
        assert_eq!(window.check(Some("2024-01-31T23:59:59Z")), When::Inside);
        assert_eq!(window.check(Some("2023-12-31T23:59:59Z")), When::Outside);
        assert_eq!(window.check(Some("2024-02-01T00:00:00Z")), When::Outside);
        // Other forms are parsed.
        assert_eq!(
            window.check(Some("2024-01-01T01:00:00+02:00")),
            When::Outside
        );
        assert_eq!(window.check(Some("2024-01-31T23:59:59.999Z")), When::Inside);
        assert_eq!(window.check(Some("yesterday")), When::Invalid);
        // The fixed form naming no real time is not compared as text (found by fuzzing: the
        // text sorts inside the window, while the operator's days refuse it).
        for impossible in [
            "2024-01-80T09:00:00Z",
            "2024-00-15T09:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-15T24:00:00Z",
        ] {
            assert_eq!(
                window.check(Some(impossible)),
                When::Invalid,
                "{impossible}"
            );
        }
        assert_eq!(window.check(None), When::Missing);
        let fraction = Window::new(Some(at("2024-01-01T00:00:00Z") + 1), None);
        assert_eq!(fraction.check(Some("2024-01-01T00:00:00Z")), When::Outside);
        assert_eq!(fraction.check(Some("2024-01-01T00:00:01Z")), When::Inside);
        let until = Window::new(None, Some(at("2024-01-01T00:00:00Z") + 1));
        assert_eq!(until.check(Some("2024-01-01T00:00:00Z")), When::Inside);
        assert_eq!(until.check(Some("2024-01-01T00:00:01Z")), When::Outside);
        // Bounds beyond four-digit years are compared as dates.
        let far = Window::new(Some(-100_000 * 366 * 86_400 * NANOS), None);
        assert_eq!(far.check(Some("2024-01-01T00:00:00Z")), When::Inside);
        // No window: every record, with or without a time.
        assert_eq!(Window::new(None, None).check(None), When::Inside);
    }

    #[test]
    fn denials_are_authorization_failures_only() {
        for code in [
            "AccessDenied",
            "AccessDeniedException",
            "UnauthorizedOperation",
            "Client.UnauthorizedOperation",
            "UnauthorizedAccess",
            "Client.UnauthorizedAccess",
            "AuthorizationError",
            "AuthorizationErrorException",
            "Forbidden",
            "NotAuthorized",
            "UnauthorizedException",
            "AccessDeniedFault",
            "accessdenied",
            "KMS.NotAuthorizedException",
        ] {
            assert!(is_denied(code), "{code}");
        }
        for code in [
            "NoSuchKey",
            "ResourceNotFoundException",
            "ThrottlingException",
            "ValidationException",
            "EntityTemporarilyUnmodifiableException",
            "AuthorizationAlreadyExistsFault",
        ] {
            assert!(!is_denied(code), "{code}");
        }
    }

    #[test]
    fn sign_in_and_service_events_are_pseudo_events() {
        let event = |source: &str, name: &str, kind: &str| {
            let json = format!(
                r#"{{"eventSource":"{source}","eventName":"{name}","eventType":"{kind}"}}"#
            );
            pseudo_event(&record(&json))
        };
        assert_eq!(
            event("signin.amazonaws.com", "ConsoleLogin", "AwsConsoleSignIn"),
            Some("console-sign-in")
        );
        assert_eq!(
            event("signin.amazonaws.com", "GetSigninToken", "AwsApiCall"),
            Some("console-sign-in")
        );
        assert_eq!(
            event("kms.amazonaws.com", "RotateKey", "AwsServiceEvent"),
            Some("service-event")
        );
        assert_eq!(
            event("cloudtrail.amazonaws.com", "x", "AwsCloudTrailInsight"),
            Some("insight-event")
        );
        assert_eq!(
            event("s3.amazonaws.com", "GetObject", "AwsVpceEvent"),
            Some("vpce-event")
        );
        assert_eq!(
            event("sso.amazonaws.com", "Federate", "AwsApiCall"),
            Some("sso-sign-in")
        );
        assert_eq!(
            event("sso-oauth.amazonaws.com", "CreateToken", "AwsApiCall"),
            Some("sso-sign-in")
        );
        // Calls to IAM actions of the same services are real use.
        assert_eq!(
            event("sso.amazonaws.com", "ListPermissionSets", "AwsApiCall"),
            None
        );
        assert_eq!(
            event("signin.amazonaws.com", "CreateOAuth2Token", "AwsApiCall"),
            None
        );
        assert_eq!(event("s3.amazonaws.com", "GetObject", "AwsApiCall"), None);
    }
}
