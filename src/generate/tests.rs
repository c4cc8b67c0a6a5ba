use super::*;
use crate::catalog::AccessLevel;
use crate::policy::lint::policy_size;
use crate::usage::Seen;

const T: &str = "2024-05-01T00:00:00Z";

fn usage(uses: &[(&str, &str)]) -> Usage {
    let mut u = Usage::default();
    for (action, resource) in uses {
        u.record_use(action, resource, T);
    }
    u
}

fn gen_with(u: &Usage, opts: GenerateOptions) -> Generated {
    generate(u, &opts).unwrap()
}

fn gen_default(u: &Usage) -> Generated {
    gen_with(u, GenerateOptions::default())
}

/// Every (action, resource) the documents grant.
fn pairs(g: &Generated) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for st in g.policies.iter().flat_map(|p| &p.statements) {
        let (Some(ActionBlock::Action(actions)), Some(ResourceBlock::Resource(resources))) =
            (&st.action, &st.resource)
        else {
            panic!("generated statements list actions and resources: {st:?}");
        };
        for a in actions {
            for r in resources {
                out.insert((a.clone(), r.clone()));
            }
        }
    }
    out
}

fn pair(a: &str, r: &str) -> (String, String) {
    (a.to_string(), r.to_string())
}

fn resources_of(g: &Generated, action: &str) -> Vec<String> {
    pairs(g)
        .into_iter()
        .filter(|(a, _)| a == action)
        .map(|(_, r)| r)
        .collect()
}

fn policy(text: &str) -> Policy {
    Policy::parse(text).unwrap()
}

#[test]
fn only_used_catalog_actions_are_granted() {
    let mut u = usage(&[
        ("s3:GetObject", "arn:aws:s3:::b/k"),
        ("sqs:SendMessage", "arn:aws:sqs:us-east-1:111122223333:q"),
    ]);
    u.denied.insert(
        (
            "iam.amazonaws.com".into(),
            "CreateUser".into(),
            "AccessDenied".into(),
        ),
        Seen::default(),
    );
    u.unmapped.insert(
        ("s3.amazonaws.com".into(), "Mystery".into()),
        Seen::default(),
    );
    let g = gen_default(&u);
    assert_eq!(
        pairs(&g),
        BTreeSet::from([
            pair("s3:GetObject", "arn:aws:s3:::b/k"),
            pair("sqs:SendMessage", "arn:aws:sqs:us-east-1:111122223333:q"),
        ])
    );
    let json = to_json(&g);
    assert!(!json.contains("CreateUser") && !json.contains("Mystery"));
    assert_eq!(g.policies.len(), 1);
    assert_eq!(g.policies[0], g.policies[0].canonical());
}

#[test]
fn an_unscoped_use_grants_star_only() {
    let u = usage(&[
        ("s3:GetObject", "arn:aws:s3:::b/k"),
        ("s3:GetObject", "*"),
        ("s3:PutObject", "arn:aws:s3:::b/k"),
    ]);
    let g = gen_default(&u);
    assert_eq!(resources_of(&g, "s3:GetObject"), vec!["*"]);
    assert_eq!(resources_of(&g, "s3:PutObject"), vec!["arn:aws:s3:::b/k"]);
}

#[test]
fn granularity_decides_how_resources_are_listed() {
    let arns: Vec<String> = (0..11)
        .map(|i| format!("arn:aws:s3:::b/logs/app/{i}"))
        .collect();
    let uses: Vec<(&str, &str)> = arns.iter().map(|a| ("s3:GetObject", a.as_str())).collect();
    let u = usage(&uses);
    let with = |granularity| {
        let g = gen_with(
            &u,
            GenerateOptions {
                granularity,
                ..GenerateOptions::default()
            },
        );
        resources_of(&g, "s3:GetObject")
    };
    assert_eq!(with(Granularity::Exact).len(), 11);
    assert_eq!(with(Granularity::Prefix), vec!["arn:aws:s3:::b/logs/app/*"]);
    assert_eq!(with(Granularity::Service), vec!["*"]);
    // The threshold is configurable.
    let g = gen_with(
        &u,
        GenerateOptions {
            collapse_threshold: 11,
            ..GenerateOptions::default()
        },
    );
    assert_eq!(resources_of(&g, "s3:GetObject").len(), 11);
}

#[test]
fn identical_resources_share_a_statement_and_sids_are_numbered() {
    let u = usage(&[
        ("s3:GetObject", "arn:aws:s3:::b/k"),
        ("s3:GetObjectTagging", "arn:aws:s3:::b/k"),
        ("s3:GetObjectAcl", "arn:aws:s3:::other/k"),
        ("s3:PutObject", "arn:aws:s3:::b/k"),
        ("dynamodb:ListTables", "*"),
        ("iam:PutRolePolicy", "arn:aws:iam::111122223333:role/r"),
    ]);
    let g = gen_default(&u);
    let statements: Vec<(String, Vec<String>)> = g.policies[0]
        .statements
        .iter()
        .map(|st| {
            let Some(ActionBlock::Action(actions)) = &st.action else {
                unreachable!()
            };
            (st.sid.clone().unwrap(), actions.clone())
        })
        .collect();
    let by_sid: BTreeMap<_, _> = statements.iter().cloned().collect();
    assert_eq!(by_sid["DynamodbList"], vec!["dynamodb:ListTables"]);
    assert_eq!(
        by_sid["IamPermissionsManagement"],
        vec!["iam:PutRolePolicy"]
    );
    assert_eq!(by_sid["S3Write"], vec!["s3:PutObject"]);
    // Two Read resource sets: two statements, the second numbered.
    assert_eq!(
        by_sid["S3Read"],
        vec!["s3:GetObject", "s3:GetObjectTagging"]
    );
    assert_eq!(by_sid["S3Read2"], vec!["s3:GetObjectAcl"]);
    assert_eq!(statements.len(), 5);
    // Statements are in canonical order.
    assert_eq!(g.policies[0], g.policies[0].canonical());
}

#[test]
fn large_policies_split_into_documents_within_the_limit() {
    let arns: Vec<String> = (0..400)
        .map(|i| format!("arn:aws:s3:::bucket-{i:03}/some/long/object/key/name.json"))
        .collect();
    let mut uses: Vec<(&str, &str)> = arns.iter().map(|a| ("s3:GetObject", a.as_str())).collect();
    uses.push(("sqs:SendMessage", "arn:aws:sqs:us-east-1:111122223333:q"));
    let u = usage(&uses);
    let opts = GenerateOptions {
        granularity: Granularity::Exact,
        ..GenerateOptions::default()
    };
    let g = gen_with(&u, opts.clone());
    assert!(g.policies.len() >= 3, "{}", g.policies.len());
    for p in &g.policies {
        assert!(policy_size(&p.canonical_json()) <= 6144);
    }
    // Nothing lost or added by the split, and the split statements get distinct Sids.
    assert_eq!(pairs(&g).len(), 401);
    let sids: Vec<_> = g
        .policies
        .iter()
        .flat_map(|p| &p.statements)
        .map(|s| s.sid.clone().unwrap())
        .collect();
    let distinct: BTreeSet<_> = sids.iter().collect();
    assert_eq!(distinct.len(), sids.len());
    assert!(sids.contains(&"S3Read2".to_string()));
    assert_eq!(gen_with(&u, opts), g);

    // A single action on a resource too long for the limit is an error, not a broken policy.
    let err = generate(
        &u,
        &GenerateOptions {
            max_size: 100,
            ..GenerateOptions::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, GenerateError::StatementTooLarge { .. }),
        "{err}"
    );
}

#[test]
fn a_statement_with_many_actions_splits_its_actions() {
    let names: Vec<String> = crate::catalog::catalog()
        .service_actions("ec2")
        .filter(|a| a.access_level() == crate::catalog::AccessLevel::Read)
        .map(|a| a.full_name())
        .take(300)
        .collect();
    let uses: Vec<(&str, &str)> = names.iter().map(|a| (a.as_str(), "*")).collect();
    let g = gen_with(
        &usage(&uses),
        GenerateOptions {
            max_size: 2000,
            ..GenerateOptions::default()
        },
    );
    assert!(g.policies.len() > 1);
    assert!(
        g.policies
            .iter()
            .all(|p| policy_size(&p.canonical_json()) <= 2000)
    );
    assert_eq!(pairs(&g).len(), names.len());
}

#[test]
fn keep_is_granted_even_unused_and_must_be_a_real_action() {
    let keep: Keep = "s3:deleteobject=arn:aws:s3:::backups/*".parse().unwrap();
    assert_eq!(keep.action, "s3:DeleteObject");
    assert_eq!(keep.resource.as_deref(), Some("arn:aws:s3:::backups/*"));
    let bare: Keep = "sqs:SendMessage".parse().unwrap();
    assert_eq!(bare.resource, None);
    let err = "s3:GetObjekt".parse::<Keep>().unwrap_err();
    assert!(err.to_string().contains("s3:GetObject"), "{err}");
    assert!("s3:Get*".parse::<Keep>().is_err());
    assert!("s3:GetObject=".parse::<Keep>().is_err());

    let u = usage(&[("s3:GetObject", "arn:aws:s3:::b/k")]);
    let g = gen_with(
        &u,
        GenerateOptions {
            keep: vec![keep, bare],
            ..GenerateOptions::default()
        },
    );
    assert_eq!(
        pairs(&g),
        BTreeSet::from([
            pair("s3:DeleteObject", "arn:aws:s3:::backups/*"),
            pair("s3:GetObject", "arn:aws:s3:::b/k"),
            pair("sqs:SendMessage", "*"),
        ])
    );
}

#[test]
fn forbidden_actions_are_reported_not_granted() {
    let u = usage(&[
        ("s3:GetObject", "arn:aws:s3:::b/k"),
        ("iam:CreateUser", "arn:aws:iam::111122223333:user/u"),
        ("iam:CreateUser", "arn:aws:iam::111122223333:user/v"),
    ]);
    let g = gen_with(
        &u,
        GenerateOptions {
            forbid: vec!["IAM:*".to_string(), "iam:Creat*Usr".to_string()],
            keep: vec!["iam:DeleteUser".parse().unwrap()],
            ..GenerateOptions::default()
        },
    );
    assert_eq!(
        pairs(&g),
        BTreeSet::from([pair("s3:GetObject", "arn:aws:s3:::b/k")])
    );
    assert_eq!(
        g.forbidden_used,
        vec![ForbiddenUse {
            action: "iam:CreateUser".to_string(),
            pattern: "IAM:*".to_string(),
            count: 2,
        }]
    );
    assert!(g.notes.iter().any(|n| n.contains("iam:DeleteUser")));
    assert!(
        g.notes
            .iter()
            .any(|n| n == "--forbid iam:Creat*Usr matches no known action")
    );
}

#[test]
fn current_policies_cut_the_output_provably() {
    let u = usage(&[
        ("s3:GetObject", "arn:aws:s3:::b/k"),
        ("iam:CreateUser", "arn:aws:iam::111122223333:user/u"),
    ]);
    let current = vec![policy(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
    )];
    let g = gen_with(
        &u,
        GenerateOptions {
            current: current.clone(),
            ..GenerateOptions::default()
        },
    );
    assert_eq!(
        pairs(&g),
        BTreeSet::from([pair("s3:GetObject", "arn:aws:s3:::b/k")])
    );
    assert_eq!(g.dropped.len(), 1);
    assert_eq!(g.dropped[0].action, "iam:CreateUser");
    assert_eq!(g.dropped[0].resource, "arn:aws:iam::111122223333:user/u");
    assert!(
        g.dropped[0].reason.contains("not allowed"),
        "{:?}",
        g.dropped
    );
    assert!(grants_no_new_access(&g.policies, &current).is_proven());
}

#[test]
fn a_collapse_the_current_policies_do_not_cover_falls_back_to_the_arns() {
    let arns: Vec<String> = (0..12).map(|i| format!("arn:aws:s3:::b/d/{i}")).collect();
    let uses: Vec<(&str, &str)> = arns.iter().map(|a| ("s3:GetObject", a.as_str())).collect();
    // The current policy grants objects 0 and 1 only: b/d/* cannot be proven.
    let current = vec![policy(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject",
        "Resource":["arn:aws:s3:::b/d/0","arn:aws:s3:::b/d/1"]}}"#,
    )];
    let g = gen_with(
        &usage(&uses),
        GenerateOptions {
            current: current.clone(),
            ..GenerateOptions::default()
        },
    );
    assert_eq!(
        resources_of(&g, "s3:GetObject"),
        vec!["arn:aws:s3:::b/d/0", "arn:aws:s3:::b/d/1"]
    );
    assert_eq!(g.dropped.len(), 10);
    assert!(grants_no_new_access(&g.policies, &current).is_proven());
    // A kept action on `*` the current policies do not grant is dropped too.
    let g = gen_with(
        &usage(&uses),
        GenerateOptions {
            current: current.clone(),
            keep: vec!["s3:PutObject".parse().unwrap()],
            ..GenerateOptions::default()
        },
    );
    assert!(
        g.dropped
            .iter()
            .any(|d| d.action == "s3:PutObject" && d.resource == "*")
    );
    assert!(grants_no_new_access(&g.policies, &current).is_proven());
}

#[test]
fn output_is_deterministic() {
    let uses = [
        ("sqs:SendMessage", "arn:aws:sqs:us-east-1:111122223333:q"),
        ("s3:GetObject", "arn:aws:s3:::b/k"),
        ("s3:PutObject", "arn:aws:s3:::b/k2"),
        ("iam:PassRole", "arn:aws:iam::111122223333:role/r"),
    ];
    let forward = usage(&uses);
    let mut reversed_uses = uses;
    reversed_uses.reverse();
    let reversed = usage(&reversed_uses);
    let render = |u: &Usage| {
        let g = gen_default(u);
        (to_json(&g), to_terraform(&g), to_cloudformation(&g))
    };
    assert_eq!(render(&forward), render(&forward));
    assert_eq!(render(&forward), render(&reversed));
}

/// Strings in double quotes, in order, from HCL or JSON text.
fn quoted_strings(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn terraform_lists_what_the_json_does() {
    let u = usage(&[
        ("s3:GetObject", "arn:aws:s3:::b/k"),
        ("s3:PutObject", "arn:aws:s3:::b/k"),
        ("sqs:SendMessage", "*"),
        ("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:1:table/t"),
    ]);
    let g = gen_default(&u);
    let tf = to_terraform(&g);
    assert!(tf.starts_with("# iam-tailor revision sha256:"));
    assert!(tf.contains(r#"data "aws_iam_policy_document" "iam_tailor" {"#));
    assert_eq!(tf.matches('{').count(), tf.matches('}').count());
    let mut depth = 0i32;
    for c in tf.chars() {
        depth += match c {
            '{' => 1,
            '}' => -1,
            _ => 0,
        };
        assert!(depth >= 0);
    }
    for (action, resource) in pairs(&g) {
        assert!(tf.contains(&format!("\"{action}\",")), "{action}");
        assert!(tf.contains(&format!("\"{resource}\",")), "{resource}");
    }
    let in_tf: BTreeSet<String> = quoted_strings(&tf).into_iter().collect();
    let in_json: BTreeSet<String> = quoted_strings(&to_json(&g)).into_iter().collect();
    let keys = [
        "Version",
        "Statement",
        "Sid",
        "Effect",
        "Action",
        "Resource",
    ];
    for s in in_json.iter().filter(|s| !keys.contains(&s.as_str())) {
        assert!(in_tf.contains(s), "{s} missing from Terraform");
    }

    // Several documents: one data source each.
    let g2 = Generated {
        policies: vec![g.policies[0].clone(), g.policies[0].clone()],
        ..g.clone()
    };
    let tf = to_terraform(&g2);
    assert!(tf.contains(r#""iam_tailor_2""#) && !tf.contains("iam_tailor_3"));
    // Policy variables are escaped from Terraform interpolation.
    let keep = Keep {
        action: "s3:GetObject".into(),
        resource: Some("arn:aws:s3:::home/${aws:username}/*".into()),
    };
    let g = gen_with(
        &Usage::default(),
        GenerateOptions {
            keep: vec![keep],
            ..GenerateOptions::default()
        },
    );
    assert!(to_terraform(&g).contains(r#""arn:aws:s3:::home/$${aws:username}/*""#));
}

#[test]
fn cloudformation_parses_to_the_json_policies() {
    let arns: Vec<String> = (0..300)
        .map(|i| format!("arn:aws:s3:::bucket-{i:03}/path/key.json"))
        .collect();
    let mut uses: Vec<(&str, &str)> = arns.iter().map(|a| ("s3:GetObject", a.as_str())).collect();
    uses.extend([
        ("sqs:SendMessage", "*"),
        (
            "logs:PutLogEvents",
            "arn:aws:logs:us-east-1:1:log-group:/a:log-stream:s",
        ),
    ]);
    let g = gen_default(&usage(&uses));
    assert!(g.policies.len() > 1);
    let yaml = to_cloudformation(&g);
    let template: serde_json::Value = serde_norway::from_str(&yaml).unwrap();
    let resources = template["Resources"].as_object().unwrap();
    assert_eq!(resources.len(), g.policies.len());
    for (i, p) in g.policies.iter().enumerate() {
        let name = if i == 0 {
            "IamTailorPolicy".to_string()
        } else {
            format!("IamTailorPolicy{}", i + 1)
        };
        let resource = &resources[&name];
        assert_eq!(resource["Type"], "AWS::IAM::ManagedPolicy");
        let expected: serde_json::Value = serde_json::from_str(&p.canonical_json()).unwrap();
        assert_eq!(resource["Properties"]["PolicyDocument"], expected, "{name}");
    }
    // The JSON rendering is the array of the same documents.
    let json: serde_json::Value = serde_json::from_str(&to_json(&g)).unwrap();
    assert_eq!(json.as_array().unwrap().len(), g.policies.len());
}

#[test]
fn unused_groups_riskiest_first_and_skips_used_actions() {
    let granted = [policy(
        r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":["s3:GetObject","s3:PutObject","s3:ListBucket","s3:PutBucketPolicy",
          "s3:PutObjectTagging","iam:PassRole","iam:GetRole","dynamodb:PutItem"],"Resource":"*"}]}"#,
    )];
    let u = usage(&[("s3:GetObject", "arn:aws:s3:::b/k"), ("iam:GetRole", "*")]);
    let out = unused(&granted, &u);
    let groups: Vec<(&str, AccessLevel, Vec<&str>)> = out
        .groups
        .iter()
        .map(|g| {
            (
                g.service.as_str(),
                g.access_level,
                g.actions.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        vec![
            (
                "s3",
                AccessLevel::PermissionsManagement,
                vec!["s3:PutBucketPolicy"]
            ),
            ("dynamodb", AccessLevel::Write, vec!["dynamodb:PutItem"]),
            ("iam", AccessLevel::Write, vec!["iam:PassRole"]),
            ("s3", AccessLevel::Write, vec!["s3:PutObject"]),
            ("s3", AccessLevel::Tagging, vec!["s3:PutObjectTagging"]),
            ("s3", AccessLevel::List, vec!["s3:ListBucket"]),
        ]
    );
    let text = render_unused(&out);
    assert!(text.starts_with("6 granted actions were never used"));
    assert!(!text.contains("s3:GetObject\n") && !text.contains("iam:GetRole"));
    let json = serde_json::to_value(&out).unwrap();
    assert_eq!(json["groups"][0]["accessLevel"], "PermissionsManagement");
}

#[test]
fn report_counts_in_camel_case() {
    let mut u = usage(&[
        ("s3:GetObject", "arn:aws:s3:::b/k"),
        ("s3:GetObject", "arn:aws:s3:::b/j"),
    ]);
    u.skip("console-sign-in");
    u.stats.files_scanned = 3;
    u.unmapped.insert(
        ("s3.amazonaws.com".into(), "Mystery".into()),
        Seen {
            count: 2,
            last_seen: T.into(),
        },
    );
    let g = gen_default(&u);
    let r = serde_json::to_value(report(&u, &g)).unwrap();
    assert_eq!(r["filesScanned"], 3);
    assert_eq!(r["skipped"]["console-sign-in"], 1);
    assert_eq!(r["used"][0]["action"], "s3:GetObject");
    assert_eq!(r["used"][0]["accessLevel"], "Read");
    assert_eq!(r["used"][0]["count"], 2);
    assert_eq!(r["used"][0]["lastSeen"], T);
    assert_eq!(r["used"][0]["resources"], 2);
    assert_eq!(r["unmapped"][0]["eventName"], "Mystery");
    assert_eq!(r["revisions"][0], g.policies[0].revision());
    for key in [
        "recordsScanned",
        "recordsMatched",
        "denied",
        "dropped",
        "forbiddenUsed",
        "notes",
    ] {
        assert!(r.get(key).is_some(), "{key}");
    }
}

#[test]
fn a_kept_action_without_resources_falls_back_to_what_the_role_holds() {
    // The shipped example's `kms:Decrypt`: kept, never used in the window, and the role holds it
    // on one key only. `*` cannot be proven, so the key is kept, not the action dropped.
    let key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let current = vec![policy(&format!(
        r#"{{"Version":"2012-10-17","Statement":[
        {{"Effect":"Allow","Action":"kms:Decrypt","Resource":"{key}"}},
        {{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}]}}"#
    ))];
    let g = gen_with(
        &usage(&[("s3:GetObject", "arn:aws:s3:::b/k")]),
        GenerateOptions {
            current: current.clone(),
            keep: vec!["kms:Decrypt".parse().unwrap()],
            ..GenerateOptions::default()
        },
    );
    assert_eq!(resources_of(&g, "kms:Decrypt"), vec![key]);
    assert!(g.dropped.is_empty(), "{:?}", g.dropped);
    assert!(grants_no_new_access(&g.policies, &current).is_proven());
}

#[test]
fn the_window_s_own_calls_are_replayed_against_the_output() {
    let u = usage(&[
        ("s3:GetObject", "arn:aws:s3:::b/orders/2026/11/20/a.json"),
        ("sqs:SendMessage", "arn:aws:sqs:us-east-1:111122223333:q"),
        ("iam:PassRole", "arn:aws:iam::111122223333:role/r"),
    ]);
    // Without current policies every used call is granted: nothing would be denied.
    let g = gen_default(&u);
    assert!(g.would_deny.is_empty(), "{:?}", g.would_deny);
    // Current policies that allow SendMessage except over plain HTTP: the unconditional grant
    // cannot be proven, so the cut drops it, and the replay says the output would break it.
    let current = policy(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"*","Resource":"*"},
            {"Effect":"Deny","Action":"sqs:*","Resource":"*",
             "Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#,
    );
    let g = gen_with(
        &u,
        GenerateOptions {
            current: vec![current],
            forbid: vec!["iam:*".to_string()],
            ..GenerateOptions::default()
        },
    );
    assert!(g.dropped.iter().any(|d| d.action == "sqs:SendMessage"));
    let denied: Vec<(&str, &str)> = (g.would_deny.iter())
        .map(|w| (w.action.as_str(), w.resource.as_str()))
        .collect();
    // A forbidden action is the user's choice, not a would-be denial.
    assert_eq!(
        denied,
        [("sqs:SendMessage", "arn:aws:sqs:us-east-1:111122223333:q")]
    );
    // A call the current policies do not allow either is not broken by the output.
    let narrow = policy(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
    );
    let g = gen_with(
        &u,
        GenerateOptions {
            current: vec![narrow],
            ..GenerateOptions::default()
        },
    );
    assert!(g.would_deny.is_empty(), "{:?}", g.would_deny);
}

mod conditions;
