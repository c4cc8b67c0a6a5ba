//! A deploy role end to end (the `iam-tailor controller` binary, a real kube-apiserver, moto):
//! the roles it passed are in its proposal as `iam:PassRole` on exactly those roles, to their
//! services; an instance profile is read with GetInstanceProfile; one IAM cannot answer for
//! (another account's) holds the proposal until `spec.instanceProfiles` names its role.

use crate::operator_env;

use iam_tailor::controller::LeastPrivilegeRole;
use iam_tailor::policy::Policy;
use kube::api::{Api, Patch, PatchParams, PostParams};
use operator_env::{
    ACCOUNT, BUCKET, Cluster, NS, TRUST, broad_role, condition, condition_message, lpr,
    put_trail_file, read, record, wait_for,
};

const PARTNER_PROFILE: &str = "arn:aws:iam::444455556666:instance-profile/partner-web";
const PARTNER_ROLE: &str = "arn:aws:iam::444455556666:role/partner-web";
const EC2: &str = "ec2.amazonaws.com";
const LAMBDA: &str = "lambda.amazonaws.com";

/// The PassRole statements of some documents: (resources, PassedToService values), sorted.
fn pass_role(documents: &[Policy]) -> Vec<(Vec<String>, Vec<String>)> {
    let mut out: Vec<(Vec<String>, Vec<String>)> = (documents.iter())
        .flat_map(|d| &d.statements)
        .filter(|s| format!("{:?}", s.action).contains("iam:PassRole"))
        .map(|s| {
            let resources = match &s.resource {
                Some(iam_tailor::policy::ResourceBlock::Resource(r)) => r.clone(),
                other => panic!("{other:?}"),
            };
            let services = (s.conditions.iter())
                .filter(|c| c.key == "iam:PassedToService")
                .flat_map(|c| c.values.clone())
                .collect();
            (resources, services)
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn passed_roles_and_instance_profiles_are_granted_exactly_and_unknown_ones_hold_the_apply() {
    let cluster = Cluster::start().await;
    let (aws, kube) = (&cluster.aws, cluster.kube.clone());
    let (iam, s3) = (aws.iam(), aws.s3());
    broad_role(&iam, "deployer").await;
    // The web fleet's role, in its instance profile, set up by someone else.
    let web_role = iam
        .create_role()
        .role_name("web")
        .path("/fleet/")
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap();
    let web_role = web_role.role().unwrap().arn().to_string();
    iam.create_instance_profile()
        .instance_profile_name("web-profile")
        .send()
        .await
        .unwrap();
    iam.add_role_to_instance_profile()
        .instance_profile_name("web-profile")
        .role_name("web")
        .send()
        .await
        .unwrap();
    let fn_role = format!("arn:aws:iam::{ACCOUNT}:role/service-role/orders-fn");
    let yesterday = k8s_openapi::jiff::Timestamp::now()
        .checked_sub(k8s_openapi::jiff::SignedDuration::from_hours(24))
        .unwrap()
        .strftime("%Y-%m-%d")
        .to_string();
    let t = |h: u32| format!("{yesterday}T{h:02}:00:00Z");
    let launch = |profile: serde_json::Value| {
        serde_json::json!({
            "instancesSet": {"items": [{"imageId": "ami-0abc", "minCount": 1, "maxCount": 1}]},
            "instanceType": "t3.micro",
            "iamInstanceProfile": profile,
        })
    };
    let records = [
        record(
            "deployer",
            &t(1),
            "lambda",
            "CreateFunction20150331",
            serde_json::json!({"functionName": "orders", "runtime": "python3.12",
                               "role": fn_role, "handler": "a.h"}),
        ),
        record(
            "deployer",
            &t(2),
            "ec2",
            "RunInstances",
            launch(serde_json::json!({"name": "web-profile"})),
        ),
        record(
            "deployer",
            &t(3),
            "ec2",
            "RunInstances",
            launch(serde_json::json!({"arn": PARTNER_PROFILE})),
        ),
    ];
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    put_trail_file(&s3, &yesterday, "T0000Z_deploy", &records).await;

    let _operator = cluster.operator(&[], &[]);
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), NS);
    let spec = "  roleName: deployer\n  mode: Enforce\n  approval: Automatic\n  \
                cloudTrail: {s3: {bucket: org-trail-logs}}\n  lastAccessed: {required: false}\n";
    roles
        .create(&PostParams::default(), &lpr("deployer", spec))
        .await
        .unwrap();
    let status = wait_for(&roles, "deployer", "the proposal held", |s| {
        condition(s, "Approved") == Some(("False", "UnresolvedInstanceProfiles"))
    })
    .await;
    let proposal = status.proposal.clone().unwrap();
    let documents: Vec<Policy> = serde_json::from_str::<Vec<serde_json::Value>>(&proposal.policy)
        .map(|docs| {
            docs.iter()
                .map(|d| Policy::parse(&d.to_string()).unwrap())
                .collect()
        })
        .unwrap_or_else(|_| vec![Policy::parse(&proposal.policy).unwrap()]);
    assert_eq!(
        pass_role(&documents),
        [
            (vec![web_role.clone()], vec![EC2.to_string()]),
            (vec![fn_role.clone()], vec![LAMBDA.to_string()]),
        ],
        "{}",
        proposal.policy
    );
    let [unresolved] = &proposal.unresolved_instance_profiles[..] else {
        panic!("{:?}", proposal.unresolved_instance_profiles)
    };
    assert_eq!(unresolved.instance_profile, PARTNER_PROFILE);
    assert!(
        unresolved.reason.contains("spec.instanceProfiles"),
        "{unresolved:?}"
    );
    let message = condition_message(&status, "Approved");
    assert!(message.contains(PARTNER_PROFILE), "{message}");
    // Held: the role is as broad as it was.
    let live = read(&iam, "deployer").await;
    assert_eq!(live.attached.len(), 1, "{live:#?}");

    // The owner names the partner profile's role: the proposal is complete and applied.
    let hint = serde_json::json!({"spec": {"instanceProfiles": {PARTNER_PROFILE: PARTNER_ROLE}}});
    roles
        .patch("deployer", &PatchParams::default(), &Patch::Merge(&hint))
        .await
        .unwrap();
    wait_for(&roles, "deployer", "the apply", |s| {
        condition(s, "InSync").is_some_and(|(status, _)| status == "True")
    })
    .await;
    let live = read(&iam, "deployer").await;
    assert_eq!(
        pass_role(&live.documents()),
        [
            (
                vec![web_role, PARTNER_ROLE.to_string()],
                vec![EC2.to_string()]
            ),
            (vec![fn_role], vec![LAMBDA.to_string()]),
        ]
    );
}
