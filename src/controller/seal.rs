//! The status is the operator's alone, but the API server cannot make it so: anyone granted
//! `leastprivilegeroles/status` can write it. The gates decide from it (when the shadow period
//! began, the last analysis's evidence, the Access Analyzer job to resume, what the restore
//! holds), so the operator seals what it writes — HMAC-SHA256 over the resource's uid and the
//! status, with a key only it reads — and believes the gate state of a status only when the
//! seal holds. A forged status can then at most delay an apply (the gates start again), never
//! skip one.

use crate::controller::crd::LeastPrivilegeRoleStatus;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The Secret (operator's namespace) holding the key, made by the operator when missing.
pub const KEY_SECRET: &str = "iam-tailor-status-key";
/// Its key.
pub const KEY_FIELD: &str = "key";
/// Bytes of a key the operator makes.
pub const KEY_BYTES: usize = 32;

/// The key statuses are sealed with.
#[derive(Clone)]
pub struct StatusKey(Vec<u8>);

impl std::fmt::Debug for StatusKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusKey(..)")
    }
}

impl StatusKey {
    /// A key from the Secret's bytes; too short a key is refused.
    pub fn new(bytes: Vec<u8>) -> Result<StatusKey, String> {
        if bytes.len() < KEY_BYTES {
            return Err(format!(
                "Secret {KEY_SECRET} key {KEY_FIELD}: {} bytes, fewer than {KEY_BYTES}",
                bytes.len()
            ));
        }
        Ok(StatusKey(bytes))
    }

    /// A new random key.
    pub fn generate() -> StatusKey {
        let mut bytes = vec![0u8; KEY_BYTES];
        getrandom::fill(&mut bytes).expect("the OS has randomness");
        StatusKey(bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    fn mac(&self, uid: &str, status: &LeastPrivilegeRoleStatus) -> Hmac<Sha256> {
        let mut unsealed = status.clone();
        unsealed.seal = None;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes a key of any length");
        mac.update(b"iam-tailor status v1\n");
        mac.update(uid.as_bytes());
        mac.update(b"\n");
        mac.update(&serde_json::to_vec(&unsealed).expect("a status serializes"));
        mac
    }

    fn text_mac(&self, purpose: &str, text: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes a key of any length");
        mac.update(b"iam-tailor text v1\n");
        mac.update(purpose.as_bytes());
        mac.update(b"\n");
        mac.update(text.as_bytes());
        mac
    }

    /// The seal of `text` for `purpose` (what it is, e.g. a backup ConfigMap's name), hex.
    pub fn seal_text(&self, purpose: &str, text: &str) -> String {
        hex(&self.text_mac(purpose, text).finalize().into_bytes())
    }

    /// Whether `seal` is this key's seal of `text` for `purpose`.
    pub fn verify_text(&self, purpose: &str, text: &str, seal: &str) -> bool {
        unhex(seal).is_some_and(|tag| self.text_mac(purpose, text).verify_slice(&tag).is_ok())
    }

    /// `status` of the resource `uid`, sealed.
    pub fn seal(&self, uid: &str, status: &LeastPrivilegeRoleStatus) -> LeastPrivilegeRoleStatus {
        let tag = self.mac(uid, status).finalize().into_bytes();
        let mut sealed = status.clone();
        sealed.seal = Some(hex(&tag));
        sealed
    }

    /// Whether `status` carries this key's seal for `uid`.
    pub fn verify(&self, uid: &str, status: &LeastPrivilegeRoleStatus) -> bool {
        let Some(tag) = status.seal.as_deref().and_then(unhex) else {
            return false;
        };
        self.mac(uid, status).verify_slice(&tag).is_ok()
    }
}

/// What of a status the plan may believe, and whether it was all of it.
#[derive(Debug, PartialEq)]
pub struct Believed {
    pub status: LeastPrivilegeRoleStatus,
    /// The status carried this key's seal (or there was none yet).
    pub sealed: bool,
}

/// What of `status` the plan may believe: all of it, seal aside, when the seal holds; else
/// everything but the gate state — the analysis and its evidence, the proposal, the shadow
/// period, the job and the restore — so every gate starts again. The pin, the backup record,
/// what was applied and the conditions stay: each is checked against AWS and the backup on
/// its own.
pub fn believed(key: &StatusKey, uid: &str, status: Option<&LeastPrivilegeRoleStatus>) -> Believed {
    let Some(status) = status else {
        return Believed {
            status: LeastPrivilegeRoleStatus::default(),
            sealed: true,
        };
    };
    let sealed = key.verify(uid, status);
    let mut believed = status.clone();
    believed.seal = None;
    if !sealed {
        believed.analysis = None;
        believed.proposal = None;
        believed.shadow = None;
        believed.job = None;
        believed.restore = None;
    }
    Believed {
        status: believed,
        sealed,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::crd::Shadow;

    fn status() -> LeastPrivilegeRoleStatus {
        LeastPrivilegeRoleStatus {
            shadow: Some(Shadow {
                revision: "sha256:aa".into(),
                since: "2026-12-01T00:00:00Z".into(),
                checked_at: "2026-12-06T00:00:00Z".into(),
                ..Shadow::default()
            }),
            ..LeastPrivilegeRoleStatus::default()
        }
    }

    #[test]
    fn a_sealed_status_is_believed_and_any_change_to_it_is_not() {
        let key = StatusKey::generate();
        let sealed = key.seal("uid-1", &status());
        assert!(key.verify("uid-1", &sealed));
        let trusted = believed(&key, "uid-1", Some(&sealed));
        assert_eq!((trusted.status, trusted.sealed), (status(), true));
        // A forged shadow start: the seal no longer holds, and the shadow period is not believed.
        let mut forged = sealed.clone();
        forged.shadow.as_mut().unwrap().since = "2020-01-01T00:00:00Z".into();
        assert!(!key.verify("uid-1", &forged));
        let doubted = believed(&key, "uid-1", Some(&forged));
        assert!(!doubted.sealed, "a forged status was believed");
        assert_eq!(doubted.status.shadow, None);
        // Another resource's status, another key, no seal, a malformed seal: none holds.
        assert!(!key.verify("uid-2", &sealed));
        assert!(!StatusKey::generate().verify("uid-1", &sealed));
        assert!(!key.verify("uid-1", &status()));
        let mut garbled = sealed.clone();
        garbled.seal = Some("zz".repeat(32));
        assert!(!key.verify("uid-1", &garbled));
        garbled.seal = Some("é".repeat(32));
        assert!(!key.verify("uid-1", &garbled));
        // No status yet: nothing to believe or doubt.
        let fresh = believed(&key, "uid-1", None);
        assert_eq!((fresh.status, fresh.sealed), (Default::default(), true));
    }

    #[test]
    fn a_text_seal_holds_for_its_purpose_and_text_only() {
        let key = StatusKey::generate();
        let seal = key.seal_text("iam-tailor-backup-1", "sha256:aa");
        assert!(key.verify_text("iam-tailor-backup-1", "sha256:aa", &seal));
        assert!(!key.verify_text("iam-tailor-backup-2", "sha256:aa", &seal));
        assert!(!key.verify_text("iam-tailor-backup-1", "sha256:ab", &seal));
        assert!(!StatusKey::generate().verify_text("iam-tailor-backup-1", "sha256:aa", &seal));
        assert!(!key.verify_text("iam-tailor-backup-1", "sha256:aa", "nope"));
    }

    #[test]
    fn a_short_key_is_refused() {
        assert!(
            StatusKey::new(vec![1; 31])
                .unwrap_err()
                .contains("fewer than 32")
        );
        assert!(StatusKey::new(vec![1; 32]).is_ok());
    }
}
