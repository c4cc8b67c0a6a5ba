//! Plan tests of spec.rollbackTo.

use super::*;

/// What the shell reads for a rollback: `versions` of iam-tailor's first policy (newest
/// first) and the original's AWS managed policy.
fn read_for_rollback(o: &mut Observed, versions: Vec<Policy>) {
    o.rollback = Some(Ok(vec![versions]));
    o.original_aws_managed = Some(Ok(s3_full_read()));
}

/// Applies read+write, then read only: the role as it is after both, and the plan of the second.
fn applied_twice(s: &LeastPrivilegeRoleSpec) -> (Plan, LiveRole) {
    let (first, role) = enforced(s, vec![orders_read_write()]);
    let narrower = plan(
        s,
        &Observed {
            analysis: Some(analysis(vec![get_orders()])),
            ..next(&first, role.clone())
        },
    );
    let mut store = BTreeMap::new();
    let role = apply(&role, &narrower.operations, &mut store);
    assert_eq!(
        (narrower.status.applied.as_ref()).map(|a| a.revision.clone()),
        Some(set_revision(&[get_orders()]))
    );
    (narrower, role)
}

#[test]
fn a_rollback_puts_an_earlier_revision_back_from_iam_s_versions() {
    let mut s = spec(Mode::Enforce, Approval::Automatic);
    let (narrower, role) = applied_twice(&s);
    let earlier = set_revision(&[orders_read_write()]);
    s.rollback_to = Some(earlier.clone());
    let mut o = next(&narrower, role.clone());
    read_for_rollback(&mut o, vec![get_orders(), orders_read_write()]);
    let p = plan(&s, &o);
    // Wider than the role is now, within what it held before iam-tailor: applied.
    assert_condition(&p, "Approved", TRUE, "RollbackApproved");
    assert_eq!(
        p.operations,
        [Operation::PutManagedPolicy {
            name: "iam-tailor-checkout-api".to_string(),
            arn: OURS.to_string(),
            document: orders_read_write().canonical_json(),
        }]
    );
    let applied = p.status.applied.clone().unwrap();
    assert_eq!(
        (applied.revision.as_str(), applied.rollback),
        (earlier.as_str(), true)
    );
    assert_eq!(p.status.history[0].revision, set_revision(&[get_orders()]));
    assert_eq!(p.completion[0].reason, "RolledBack");
    assert!(
        p.completion[0].note.contains("from sha256:"),
        "{:?}",
        p.completion
    );

    // Held there: the next look finds it applied and writes nothing, a new proposal included.
    let role = apply(&role, &p.operations, &mut BTreeMap::new());
    let mut again = next(&p, role);
    again.analysis = Some(analysis(vec![get_orders()]));
    read_for_rollback(&mut again, vec![orders_read_write(), get_orders()]);
    let held = plan(&s, &again);
    assert!(held.operations.is_empty(), "{:#?}", held.operations);
    assert_condition(&held, "Approved", TRUE, "RolledBack");
    assert_condition(&held, "InSync", TRUE, "InSync");
}

#[test]
fn a_rollback_never_goes_past_what_the_role_held_before() {
    // A version someone else created on iam-tailor's policy, wider than the original role.
    let mut s = spec(Mode::Enforce, Approval::Automatic);
    let (narrower, role) = applied_twice(&s);
    let forged = doc("iam:*", "*");
    s.rollback_to = Some(set_revision(std::slice::from_ref(&forged)));
    let mut o = next(&narrower, role.clone());
    read_for_rollback(&mut o, vec![get_orders(), forged]);
    let p = plan(&s, &o);
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    assert_condition(&p, "Approved", FALSE, "NotProvablyNarrower");
    let message = condition(&p, "Approved").message.clone().unwrap();
    assert!(
        message.contains("before iam-tailor's first write"),
        "{message}"
    );

    // Without the AWS managed policy's document, the ceiling is the role as it is: the
    // earlier, wider revision is not applied either.
    s.rollback_to = Some(set_revision(&[orders_read_write()]));
    read_for_rollback(&mut o, vec![get_orders(), orders_read_write()]);
    o.original_aws_managed = Some(Err("AccessDenied".to_string()));
    let unknown = plan(&s, &o);
    assert!(unknown.operations.is_empty());
    let message = condition(&unknown, "Approved").message.clone().unwrap();
    assert!(
        message.contains("not known here: AccessDenied"),
        "{message}"
    );

    // A revision IAM does not keep: nothing written, and the status says why.
    s.rollback_to = Some(format!("sha256:{}", "0".repeat(64)));
    read_for_rollback(&mut o, vec![get_orders(), orders_read_write()]);
    let missing = plan(&s, &o);
    assert!(missing.operations.is_empty());
    assert_condition(&missing, "Approved", FALSE, "RollbackNotFound");
    assert_condition(&missing, "Ready", FALSE, "RollbackNotFound");
    assert_eq!(missing.status.applied, narrower.status.applied);
}

#[test]
fn a_revision_of_several_documents_is_found_among_their_versions() {
    let (a, b, c) = (
        get_orders(),
        orders_read_write(),
        doc("sqs:SendMessage", "*"),
    );
    let versions = vec![vec![a.clone(), b.clone()], vec![c.clone(), a.clone()]];
    let wanted = vec![b.clone(), a.clone()];
    assert_eq!(
        crate::controller::plan::rollback::find_revision(&versions, &set_revision(&wanted)),
        Ok(wanted)
    );
    assert_eq!(
        crate::controller::plan::rollback::find_revision(
            &versions,
            &set_revision(std::slice::from_ref(&a))
        ),
        Ok(vec![a.clone()])
    );
    let absent = crate::controller::plan::rollback::find_revision(
        &versions,
        &set_revision(std::slice::from_ref(&c)),
    )
    .unwrap_err();
    assert!(absent.contains("6 combinations"), "{absent}");
    // Too many documents to try every combination: an explicit limit, not a long search.
    let many = vec![vec![a.clone(), b.clone(), c.clone(), a.clone(), b.clone()]; 7];
    let elsewhere = set_revision(&[doc("kms:Decrypt", "*")]);
    let capped = crate::controller::plan::rollback::find_revision(&many, &elsewhere).unwrap_err();
    assert!(capped.contains("more than 4096"), "{capped}");
    // Only Enforce rolls back.
    let mut s = spec(Mode::Recommend, Approval::Manual);
    s.rollback_to = Some(set_revision(&[a]));
    assert_eq!(rollback_wanted(&s), None);
}
