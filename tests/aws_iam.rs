//! The IAM reads and writes against a real IAM API (moto): URL-encoded documents, AWS-managed
//! policies, the 5-version limit, idempotent deletes.

use crate::moto;

use aws_sdk_iam::error::ProvideErrorMetadata;
use iam_tailor::aws::iam::{self, IamError};
use iam_tailor::policy::Policy;
use iam_tailor::policy::document::{ActionBlock, Effect};
use std::collections::BTreeMap;

const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const S3_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;

/// A distinct document per `i`.
fn bucket_reader(i: usize) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket-{i}/*"}}]}}"#
    )
}

/// (version ids, the default's id) of the managed policy `arn`.
async fn versions(client: &aws_sdk_iam::Client, arn: &str) -> (Vec<String>, String) {
    let output = client
        .list_policy_versions()
        .policy_arn(arn)
        .send()
        .await
        .unwrap();
    let ids = output
        .versions()
        .iter()
        .map(|v| v.version_id().unwrap().to_string())
        .collect();
    let default = output
        .versions()
        .iter()
        .find(|v| v.is_default_version())
        .and_then(|v| v.version_id())
        .unwrap()
        .to_string();
    (ids, default)
}

async fn default_revision(client: &aws_sdk_iam::Client, role: &str, arn: &str) -> String {
    let live = iam::read_role(&iam::Iam::from(client.clone()), role)
        .await
        .unwrap();
    let policy = live.attached.iter().find(|a| a.arn == arn).unwrap();
    policy.document.revision()
}

#[tokio::test]
async fn reads_and_writes_a_role() {
    let server = moto::Moto::start();
    let client = server.iam();
    let api = iam::Iam::from(client.clone());

    let missing = iam::read_role(&api, "nobody").await;
    assert!(
        matches!(missing, Err(IamError::NotFound { .. })),
        "{missing:?}"
    );

    client
        .create_role()
        .role_name("web")
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap();
    iam::attach(&api, "web", ADMIN).await.unwrap();
    iam::put_inline(&api, "web", "s3-all", S3_ALL)
        .await
        .unwrap();

    let live = iam::read_role(&api, "web").await.unwrap();
    assert_eq!(live.name, "web");
    assert!(live.arn.ends_with(":role/web"), "{}", live.arn);
    assert_eq!(live.inline.keys().collect::<Vec<_>>(), ["s3-all"]);
    let inline = &live.inline["s3-all"];
    assert_eq!(inline.statements.len(), 1);
    assert_eq!(
        inline.statements[0].action,
        Some(ActionBlock::Action(vec!["s3:*".to_string()]))
    );
    assert_eq!(live.attached.len(), 1);
    let admin = &live.attached[0];
    assert_eq!(admin.arn, ADMIN);
    assert_eq!(admin.name, "AdministratorAccess");
    assert!(!admin.managed_by_iam_tailor);
    assert!(
        admin
            .document
            .statements
            .iter()
            .any(|s| s.effect == Effect::Allow
                && s.action == Some(ActionBlock::Action(vec!["*".to_string()]))),
        "{:?}",
        admin.document
    );
    assert_eq!(live.permissions_boundary, None);

    iam::set_boundary(&api, "web", ADMIN).await.unwrap();
    let live = iam::read_role(&api, "web").await.unwrap();
    assert_eq!(live.permissions_boundary.as_deref(), Some(ADMIN));
    iam::delete_boundary(&api, "web").await.unwrap();
    let live = iam::read_role(&api, "web").await.unwrap();
    assert_eq!(live.permissions_boundary, None);

    // iam-tailor's own managed policy, in the role's account.
    let account = live.arn.split(':').nth(4).unwrap();
    let arn = format!("arn:aws:iam::{account}:policy/iam-tailor-web");
    let name = "iam-tailor-web";
    assert!(
        iam::put_managed_policy(&api, name, &arn, &bucket_reader(0), &live.role_id)
            .await
            .unwrap()
    );
    assert_eq!(versions(&client, &arn).await.0.len(), 1);
    // The same content, spelled differently: nothing to write.
    let respelled = bucket_reader(0).replace(r#""s3:GetObject""#, r#"["S3:getobject"]"#);
    assert_ne!(respelled, bucket_reader(0));
    assert!(
        !iam::put_managed_policy(&api, name, &arn, &respelled, &live.role_id)
            .await
            .unwrap()
    );
    assert_eq!(versions(&client, &arn).await.0.len(), 1);

    iam::attach(&api, "web", &arn).await.unwrap();
    for i in 1..=6 {
        let document = bucket_reader(i);
        assert!(
            iam::put_managed_policy(&api, name, &arn, &document, &live.role_id)
                .await
                .unwrap(),
            "document {i}"
        );
        let (ids, default) = versions(&client, &arn).await;
        assert!(ids.len() <= 5, "{ids:?}");
        assert_eq!(ids.len(), (i + 1).min(5), "{ids:?}");
        // The newest version is the default and holds the document.
        assert_eq!(default, format!("v{}", i + 1));
        assert_eq!(
            default_revision(&client, "web", &arn).await,
            Policy::parse(&document).unwrap().revision()
        );
    }

    let role_id = live.role_id.clone();
    assert!(role_id.starts_with("AROA"), "{role_id}");
    let live = iam::read_role(&api, "web").await.unwrap();
    let ours = live.attached.iter().find(|a| a.arn == arn).unwrap();
    assert!(ours.managed_by_iam_tailor);
    assert_eq!(ours.name, name);
    assert!(
        !live
            .attached
            .iter()
            .find(|a| a.arn == ADMIN)
            .unwrap()
            .managed_by_iam_tailor
    );

    for _ in 0..2 {
        iam::detach(&api, "web", &arn).await.unwrap();
        iam::delete_inline(&api, "web", "s3-all").await.unwrap();
        iam::delete_managed_policy(&api, &arn, &role_id)
            .await
            .unwrap();
    }
    let live = iam::read_role(&api, "web").await.unwrap();
    assert!(live.inline.is_empty(), "{:?}", live.inline);
    assert_eq!(
        live.attached.iter().map(|a| &a.arn).collect::<Vec<_>>(),
        [ADMIN]
    );
    let gone = client
        .get_policy()
        .policy_arn(&arn)
        .send()
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Some("NoSuchEntity"), "{gone:?}");
}

/// A policy by the name iam-tailor would give, that it did not make for this role (someone
/// else's, or iam-tailor's for another role): never given a version, never deleted, and not
/// taken for iam-tailor's when read from the role.
#[tokio::test]
async fn policies_not_made_for_the_role_are_never_written() {
    let server = moto::Moto::start();
    let client = server.iam();
    let api = iam::Iam::from(client.clone());
    for role in ["web", "web-2"] {
        client
            .create_role()
            .role_name(role)
            .assume_role_policy_document(TRUST)
            .send()
            .await
            .unwrap();
    }
    let web = iam::read_role(&api, "web").await.unwrap();
    let web_2 = iam::read_role(&api, "web-2").await.unwrap();
    let account = web.arn.split(':').nth(4).unwrap();
    // Someone's own policy by iam-tailor's name for web.
    let squatted = format!("arn:aws:iam::{account}:policy/iam-tailor-web");
    client
        .create_policy()
        .policy_name("iam-tailor-web")
        .policy_document(S3_ALL)
        .send()
        .await
        .unwrap();
    let refused = iam::put_managed_policy(
        &api,
        "iam-tailor-web",
        &squatted,
        &bucket_reader(1),
        &web.role_id,
    )
    .await;
    assert!(
        matches!(refused, Err(IamError::NotOwned { .. })),
        "{refused:?}"
    );
    let refused = iam::delete_managed_policy(&api, &squatted, &web.role_id).await;
    assert!(
        matches!(refused, Err(IamError::NotOwned { .. })),
        "{refused:?}"
    );
    assert_eq!(versions(&client, &squatted).await.0, ["v1"], "untouched");
    // Its versions are nobody's to roll back to.
    let refused = iam::owned_policy_versions(&api, &squatted, &web.role_id).await;
    assert!(
        matches!(refused, Err(IamError::NotOwned { .. })),
        "{refused:?}"
    );

    // iam-tailor's policy for web-2 is not web's: not written for web, and not web's when
    // attached to it.
    let theirs = format!("arn:aws:iam::{account}:policy/iam-tailor-web-2");
    assert!(
        iam::put_managed_policy(
            &api,
            "iam-tailor-web-2",
            &theirs,
            &bucket_reader(2),
            &web_2.role_id
        )
        .await
        .unwrap()
    );
    let refused = iam::put_managed_policy(
        &api,
        "iam-tailor-web-2",
        &theirs,
        &bucket_reader(3),
        &web.role_id,
    )
    .await;
    // As for a role deleted and created again under the name: the left-over policy is named,
    // with the way out.
    let Err(IamError::NotOwned { message, .. }) = refused else {
        panic!("{refused:?}");
    };
    assert!(
        message.contains(&format!(
            "an earlier role of this name (RoleId {})",
            web_2.role_id
        )) && message.contains("aws iam delete-policy"),
        "{message}"
    );
    iam::attach(&api, "web", &theirs).await.unwrap();
    iam::attach(&api, "web-2", &theirs).await.unwrap();
    let on_web = iam::read_role(&api, "web").await.unwrap();
    assert!(!on_web.attached[0].managed_by_iam_tailor, "{on_web:?}");
    let on_web_2 = iam::read_role(&api, "web-2").await.unwrap();
    assert!(on_web_2.attached[0].managed_by_iam_tailor, "{on_web_2:?}");
    assert_eq!(
        versions(&client, &theirs).await.0,
        ["v1"],
        "untouched by web's write"
    );
    // Web-2's own versions, newest first: what a rollback chooses from.
    for i in [4, 5] {
        iam::put_managed_policy(
            &api,
            "iam-tailor-web-2",
            &theirs,
            &bucket_reader(i),
            &web_2.role_id,
        )
        .await
        .unwrap();
    }
    let kept = iam::owned_policy_versions(&api, &theirs, &web_2.role_id)
        .await
        .unwrap();
    let expected: Vec<Policy> = [5, 4, 2]
        .iter()
        .map(|&i| Policy::parse(&bucket_reader(i)).unwrap())
        .collect();
    assert_eq!(kept, expected);
    let refused = iam::owned_policy_versions(&api, &theirs, &web.role_id).await;
    assert!(
        matches!(refused, Err(IamError::NotOwned { .. })),
        "{refused:?}"
    );
}

/// Restore's write to a customer-managed policy: the version holding the backed-up document
/// becomes the default again, or a new one is added within IAM's 5; a policy attached to
/// another identity too, or not tagged restorable, is refused at the write.
#[tokio::test]
async fn a_customer_policy_gets_its_document_back_only_where_it_changes_no_one_else() {
    let server = moto::Moto::start();
    let client = server.iam();
    let api = iam::Iam::from(client.clone());
    for role in ["web", "other"] {
        (client.create_role().role_name(role))
            .assume_role_policy_document(TRUST)
            .send()
            .await
            .unwrap();
    }
    let restorable = aws_sdk_iam::types::Tag::builder()
        .key(iam_tailor::role::RESTORABLE_TAG)
        .value("true")
        .build()
        .unwrap();
    let create = |name: &'static str, tagged: bool| {
        let mut request = client
            .create_policy()
            .policy_name(name)
            .policy_document(bucket_reader(0));
        if tagged {
            request = request.tags(restorable.clone());
        }
        async move {
            let created = request.send().await.unwrap();
            created.policy().unwrap().arn().unwrap().to_string()
        }
    };
    let data = create("data", true).await;
    (client
        .attach_role_policy()
        .role_name("web")
        .policy_arn(&data))
    .send()
    .await
    .unwrap();
    let canonical = |i: usize| Policy::parse(&bucket_reader(i)).unwrap().canonical_json();
    let restore = |arn: String, i: usize| {
        let api = api.clone();
        async move { iam::restore_policy_version(&api, &arn, &canonical(i), "web").await }
    };
    assert!(!restore(data.clone(), 0).await.unwrap(), "holds it already");
    for i in 1..5 {
        (client.create_policy_version().policy_arn(&data))
            .policy_document(bucket_reader(i))
            .set_as_default(true)
            .send()
            .await
            .unwrap();
    }
    assert_eq!(versions(&client, &data).await.0.len(), 5);
    // An older version holds it: that one is the default again, nothing is added.
    assert!(restore(data.clone(), 2).await.unwrap());
    assert_eq!(versions(&client, &data).await.1, "v3");
    assert_eq!(
        default_revision(&client, "web", &data).await,
        Policy::parse(&bucket_reader(2)).unwrap().revision()
    );
    // None does: a new default, the oldest non-default (v1) making room.
    assert!(restore(data.clone(), 7).await.unwrap());
    let (ids, default) = versions(&client, &data).await;
    assert_eq!(ids.len(), 5);
    assert!(
        !ids.contains(&"v1".to_string()) && ids.contains(&"v3".to_string()),
        "{ids:?}"
    );
    assert_eq!(default, "v6");
    assert_eq!(
        default_revision(&client, "web", &data).await,
        Policy::parse(&bucket_reader(7)).unwrap().revision()
    );

    // Shared with another role: refused at the write, whatever the plan said.
    (client
        .attach_role_policy()
        .role_name("other")
        .policy_arn(&data))
    .send()
    .await
    .unwrap();
    let refused = restore(data.clone(), 0).await;
    assert!(
        matches!(&refused, Err(IamError::NotOwned { message, .. }) if message.contains("role/other")),
        "{refused:?}"
    );
    // Not tagged by its owner: refused.
    let untagged = create("untagged", false).await;
    let refused = restore(untagged.clone(), 1).await;
    assert!(
        matches!(&refused, Err(IamError::NotOwned { message, .. }) if message.contains("restorable")),
        "{refused:?}"
    );
    let now = iam::customer_policy_now(&api, &data).await.unwrap();
    assert_eq!(now.attached_to, ["role/other", "role/web"]);
    assert!(now.restorable);
    assert!(
        !iam::customer_policy_now(&api, &untagged)
            .await
            .unwrap()
            .restorable
    );
}

/// The account snapshot says what the per-role reads say, for every role (a path, inline and
/// attached policies, AWS managed ones, a boundary, tags, a second policy version), in one call
/// where the per-role reads took dozens. (moto answers in one page whatever the page size, so
/// the paging is IAM's to show.)
#[tokio::test]
async fn the_account_snapshot_agrees_with_the_per_role_reads() {
    let server = moto::Moto::start();
    let client = server.iam();
    let api = iam::Iam::from(client.clone());
    let tag = |key: &str, value: &str| {
        aws_sdk_iam::types::Tag::builder()
            .key(key)
            .value(value)
            .build()
            .unwrap()
    };
    let mut names = vec!["web".to_string(), "Worker".to_string()];
    names.extend((0..12).map(|i| format!("plain-{i}")));
    for name in &names {
        let path = if name == "Worker" { "/team/" } else { "/" };
        (client.create_role().role_name(name).path(path))
            .assume_role_policy_document(TRUST)
            .tags(tag("iam-tailor.dev/managed-role", "true"))
            .send()
            .await
            .unwrap();
    }
    let mut policies = Vec::new();
    for name in ["data", "fence"] {
        let created = (client.create_policy().policy_name(name))
            .policy_document(bucket_reader(1))
            .send()
            .await
            .unwrap();
        policies.push(created.policy().unwrap().arn().unwrap().to_string());
    }
    (client.create_policy_version().policy_arn(&policies[0]))
        .policy_document(bucket_reader(2))
        .set_as_default(true)
        .send()
        .await
        .unwrap();
    for (role, arn) in [
        ("web", &policies[0]),
        ("web", &ADMIN.to_string()),
        ("Worker", &policies[0]),
    ] {
        (client.attach_role_policy().role_name(role).policy_arn(arn))
            .send()
            .await
            .unwrap();
    }
    (client
        .put_role_policy()
        .role_name("web")
        .policy_name("s3-all"))
    .policy_document(S3_ALL)
    .send()
    .await
    .unwrap();
    (client.put_role_permissions_boundary().role_name("Worker"))
        .permissions_boundary(&policies[1])
        .send()
        .await
        .unwrap();

    let snapshot = iam::read_account(&api).await.unwrap();
    assert_eq!(snapshot.pages, 1);
    assert_eq!(snapshot.roles.len(), names.len());
    assert_eq!(
        snapshot.policies.keys().collect::<Vec<_>>(),
        policies.iter().collect::<Vec<_>>()
    );
    for name in &names {
        let live = iam::read_role(&api, name).await.unwrap();
        let role = snapshot.role(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(
            (
                &role.head.name,
                &role.head.arn,
                &role.head.role_id,
                &role.head.tags
            ),
            (&live.name, &live.arn, &live.role_id, &live.tags),
            "{name}"
        );
        assert_eq!(
            role.head.permissions_boundary, live.permissions_boundary,
            "{name}"
        );
        assert_eq!(role.head.trust_policy, live.trust_policy, "{name}");
        let inline: BTreeMap<String, Policy> = (role.inline.iter())
            .map(|(n, d)| (n.clone(), d.clone().unwrap()))
            .collect();
        assert_eq!(inline, live.inline, "{name}");
        let mut attached: Vec<&str> = role.attached.iter().map(|(arn, _)| arn.as_str()).collect();
        attached.sort();
        let mut expected: Vec<&str> = live.attached.iter().map(|a| a.arn.as_str()).collect();
        expected.sort();
        assert_eq!(attached, expected, "{name}");
        for a in live
            .attached
            .iter()
            .filter(|a| !a.arn.contains(":aws:policy/"))
        {
            let held = &snapshot.policies[&a.arn];
            assert_eq!(
                held.document.as_ref().unwrap(),
                &a.document,
                "{name} {}",
                a.arn
            );
            assert_eq!(held.name, a.name);
        }
    }
    assert_eq!(
        snapshot.policies[&policies[0]]
            .document
            .as_ref()
            .unwrap()
            .revision(),
        Policy::parse(&bucket_reader(2)).unwrap().revision(),
        "the default version"
    );
}
