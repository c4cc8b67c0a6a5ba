//! Plan tests of the finalizer: Retain and Restore.

use super::*;

#[test]
fn cleanup_retains_or_restores_exactly() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (first, mut role) = enforced(&s, vec![get_orders()]);
    role.permissions_boundary = None;
    assert!(matches!(first.operations[0], Operation::BackupRole { .. }));
    let o = next(&first, role.clone());

    // Retain lets go of the role, so another resource may manage it, and keeps the backup as
    // the role's original.
    let retain = plan_cleanup(&s, &o).unwrap();
    assert_eq!(retain.operations.last(), Some(&Operation::ReleaseRole));
    assert_eq!(retain.events[0].reason, "Retained");

    let mut restore_spec = s;
    restore_spec.deletion_policy = DeletionPolicy::Restore;
    let p = plan_cleanup(&restore_spec, &o).unwrap();
    assert_eq!(
        p.operations,
        [
            Operation::PutInlinePolicy {
                name: "legacy".to_string(),
                document: doc("dynamodb:GetItem", "*").canonical_json(),
            },
            Operation::AttachPolicy {
                arn: S3_FULL.to_string()
            },
            Operation::SetPermissionsBoundary {
                arn: BOUNDARY.to_string()
            },
            Operation::DetachPolicy {
                arn: OURS.to_string()
            },
            Operation::DeleteManagedPolicy {
                arn: OURS.to_string()
            },
            Operation::ForgetBackup {
                config_map: backup_config_map(UID)
            },
            Operation::ReleaseRole,
        ]
    );
    let mut store = BTreeMap::from([(S3_FULL.to_string(), doc("s3:*", "*"))]);
    let mut unclaimed = original_role();
    unclaimed.tags.clear();
    assert_eq!(apply(&role, &p.operations, &mut store), unclaimed);
    assert!(!store.contains_key(OURS));

    // The backup is gone: deletion waits, and the user is told how to let go.
    let mut gone = o.clone();
    gone.backup = None;
    let missing = plan_cleanup(&restore_spec, &gone).unwrap_err();
    assert!(missing.contains("deletionPolicy: Retain"), "{missing}");
    // Never changed: nothing to restore, deletion goes ahead.
    let mut untouched = observed(Default::default(), original_role(), None);
    untouched.previous.backup = None;
    let p = plan_cleanup(&restore_spec, &untouched).unwrap();
    assert_eq!(
        p.operations,
        [Operation::ReleaseRole],
        "only the claim goes"
    );
    assert_eq!(p.events[0].reason, "NothingToRestore");
}

/// Retain → a new resource → Restore: the first resource's backup is kept by RoleId when it is
/// deleted with Retain, the next resource on the role adopts it (not the narrowed role as it
/// is), and its Restore puts back the role as it was before iam-tailor, then lets both go.
#[test]
fn a_kept_original_survives_retain_and_is_what_the_next_restore_puts_back() {
    let s = spec(Mode::Enforce, Approval::Automatic);
    let (first, narrowed) = enforced(&s, vec![get_orders()]);
    let Operation::BackupRole {
        snapshot: original, ..
    } = &first.operations[0]
    else {
        panic!("{:#?}", first.operations);
    };
    let original = original.clone();
    let o = next(&first, narrowed.clone());
    let kept_name = original_config_map(&narrowed.role_id);
    assert_eq!(kept_name, "iam-tailor-original-aroacheckout");

    // Retain hands the backup over as the role's kept original, then lets go.
    let retain = plan_cleanup(&s, &o).unwrap();
    assert_eq!(
        retain.operations,
        [
            Operation::BackupRole {
                config_map: kept_name.clone(),
                snapshot: original.clone(),
            },
            Operation::ForgetBackup {
                config_map: backup_config_map(UID),
            },
            Operation::ReleaseRole,
        ]
    );
    // A kept original of the same content: only this resource's copy goes; another one: both stay.
    let mut again = o.clone();
    again.original = o.backup.clone();
    let p = plan_cleanup(&s, &again).unwrap();
    assert_eq!(
        p.operations,
        [
            Operation::ForgetBackup {
                config_map: backup_config_map(UID),
            },
            Operation::ReleaseRole,
        ]
    );
    let mut other = original.clone();
    other.inline.clear();
    again.original = Some(StoredBackup::of(&other));
    assert_eq!(
        plan_cleanup(&s, &again).unwrap().operations,
        [Operation::ReleaseRole]
    );

    // A new resource on the narrowed, released role: its backup is the kept original.
    let mut released = narrowed.clone();
    released.tags.clear();
    // The new resource has claimed it (its first write, confirmed before any other).
    let mut claimed = released.clone();
    claimed
        .tags
        .insert(crate::role::CLAIM_TAG.to_string(), "uid-2".to_string());
    let narrower = doc("s3:GetObject", "arn:aws:s3:::orders/a.json");
    let mut fresh = observed(
        Default::default(),
        claimed.clone(),
        Some(analysis(vec![narrower])),
    );
    fresh.uid = "uid-2".to_string();
    fresh.original = Some(StoredBackup::of(&original));
    let adopted = plan(&s, &fresh);
    assert_eq!(
        adopted.operations[0],
        Operation::BackupRole {
            config_map: backup_config_map("uid-2"),
            snapshot: original.clone(),
        }
    );
    assert_eq!(
        adopted.status.backup.as_ref().unwrap().sha256,
        StoredBackup::of(&original).sha256
    );
    assert!(adopted.events.iter().any(|e| e.reason == "OriginalAdopted"));
    // Nothing else to write: an enforcing resource still adopts it, for its Restore.
    let mut idle = fresh.clone();
    idle.analysis = Some(analysis(vec![get_orders()]));
    assert_eq!(
        plan(&s, &idle).operations,
        [Operation::BackupRole {
            config_map: backup_config_map("uid-2"),
            snapshot: original.clone(),
        }]
    );
    // One the operator did not seal (planted in its namespace) is never adopted.
    let mut planted = fresh.clone();
    planted.original = Some(StoredBackup {
        sealed: false,
        ..StoredBackup::of(&original)
    });
    assert_eq!(
        plan(&s, &planted).operations[0],
        Operation::BackupRole {
            config_map: backup_config_map("uid-2"),
            snapshot: BackupSnapshot::of(&claimed),
        }
    );
    // An original of another role (deleted and created again: another RoleId) is never adopted.
    let mut recreated = claimed.clone();
    recreated.role_id = "AROARECREATED".to_string();
    let mut elsewhere = fresh.clone();
    elsewhere.role = RoleState::Found(recreated.clone());
    let own = plan(&s, &elsewhere);
    assert_eq!(
        own.operations[0],
        Operation::BackupRole {
            config_map: backup_config_map("uid-2"),
            snapshot: BackupSnapshot::of(&recreated),
        }
    );

    // Its Restore puts back the original, and lets its backup and the kept original go.
    remember(&adopted);
    let role = apply(&claimed, &adopted.operations, &mut BTreeMap::new());
    let mut leaving = observed(adopted.status.clone(), role.clone(), None);
    leaving.uid = "uid-2".to_string();
    leaving.original = Some(StoredBackup::of(&original));
    let mut restore_spec = s.clone();
    restore_spec.deletion_policy = DeletionPolicy::Restore;
    let restore = plan_cleanup(&restore_spec, &leaving).unwrap();
    let tail = &restore.operations[restore.operations.len() - 3..];
    assert_eq!(
        tail,
        [
            Operation::ForgetBackup {
                config_map: backup_config_map("uid-2"),
            },
            Operation::ForgetBackup {
                config_map: kept_name,
            },
            Operation::ReleaseRole,
        ]
    );
    let mut store = BTreeMap::from([(S3_FULL.to_string(), doc("s3:*", "*"))]);
    let mut unclaimed = original_role();
    unclaimed.tags.clear();
    assert_eq!(apply(&role, &restore.operations, &mut store), unclaimed);
}
