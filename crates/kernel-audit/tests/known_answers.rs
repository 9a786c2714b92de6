//! Known answers on the kernel CNA's published records in ../shared, from the records and from the
//! index (same answers), plus cases picked from the records by hand.

use std::path::PathBuf;
use std::sync::OnceLock;
use watertight_kernel_audit::{CveDatabase, KernelVersion};

/// The kernel CNA's published records in ../shared (a SKIP without them; a failure in CI).
fn records_dir() -> Option<PathBuf> {
    watertight_testkit::require_shared(
        &watertight_testkit::this_test(),
        "kernel-vulns/cve/published",
    )
}

/// Loaded once for all tests in this file (loading is the slow part).
fn database() -> Option<&'static CveDatabase> {
    static DB: OnceLock<Option<CveDatabase>> = OnceLock::new();
    DB.get_or_init(|| {
        records_dir().map(|d| CveDatabase::from_records_dir(&d).expect("records load"))
    })
    .as_ref()
}

fn v(s: &str) -> KernelVersion {
    KernelVersion::parse(s).unwrap()
}

const KNOWN: [(&str, usize); 4] = [
    ("6.1.100", 5369),
    ("6.6.50", 5640),
    ("5.15.0", 8060),
    ("6.18.44", 211),
];

#[test]
fn loads_every_published_record() {
    let Some(db) = database() else { return };
    assert_eq!(db.records.len(), 14_626);
    assert_eq!(db.source.skipped_count, 0, "{:?}", db.source.skipped);
    // Sorted by id, unique.
    for pair in db.records.windows(2) {
        assert!(pair[0].sort_key() < pair[1].sort_key());
    }
}

#[test]
fn known_answers_from_records() {
    let Some(db) = database() else { return };
    for (version, expected) in KNOWN {
        assert_eq!(db.affected_count(&v(version)), expected, "{version}");
    }
}

#[test]
fn index_gives_the_same_answers() {
    let Some(db) = database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kernel-cves.idx");
    let size = db.write_index(&path).unwrap();
    assert!(size < 4 * 1024 * 1024, "index is {size} bytes");
    let from_index = CveDatabase::from_index(&path).unwrap();
    assert_eq!(from_index.records, db.records);
    assert_eq!(from_index.source.kind, "index");
    for (version, expected) in KNOWN {
        assert_eq!(
            from_index.affected_count(&v(version)),
            expected,
            "{version}"
        );
    }
    // Same sets, not just the same counts, on versions of every era.
    for version in [
        "2.6.32.71",
        "3.16.50",
        "4.19.300",
        "6.1.100",
        "6.12.1",
        "7.0",
    ] {
        let a: Vec<_> = db.affecting(&v(version)).iter().map(|r| &r.id).collect();
        let b: Vec<_> = from_index
            .affecting(&v(version))
            .iter()
            .map(|r| &r.id)
            .collect();
        assert_eq!(a, b, "{version}");
    }
}

fn record<'a>(db: &'a CveDatabase, id: &str) -> &'a watertight_kernel_audit::CveRecord {
    db.records.iter().find(|r| r.id == id).expect(id)
}

#[test]
fn per_branch_cases_from_the_records() {
    let Some(db) = database() else { return };

    // CVE-2024-26581 (nft_set_rbtree): introduced in 6.5, backported to 6.1.43 and 6.4.8; fixed
    // in 6.1.78, 6.6.17, 6.7.5, mainline 6.8.
    let r = &record(db, "CVE-2024-26581").rule;
    assert!(!r.is_affected(&v("6.1.42")));
    assert!(r.is_affected(&v("6.1.43")));
    assert!(r.is_affected(&v("6.1.77")));
    assert!(!r.is_affected(&v("6.1.78")));
    assert!(r.is_affected(&v("6.4.8")));
    assert!(!r.is_affected(&v("6.4.7")));
    assert!(r.is_affected(&v("6.6.16")));
    assert!(!r.is_affected(&v("6.6.17")));
    assert!(r.is_affected(&v("6.7")));
    assert!(!r.is_affected(&v("6.8")));
    assert_eq!(r.fixed_in_branch(&v("6.6.1")), Some(v("6.6.17")));

    // A stable-only bug: never in mainline, affected only 6.4.5 <= V < 6.4.10.
    let r = &record(db, "CVE-2023-54223").rule;
    assert!(!r.default_affected);
    assert!(!r.is_affected(&v("6.4.4")));
    assert!(r.is_affected(&v("6.4.5")));
    assert!(r.is_affected(&v("6.4.9")));
    assert!(!r.is_affected(&v("6.4.10")));
    assert!(!r.is_affected(&v("6.5")));
    assert!(!r.is_affected(&v("6.1.100")));
    assert_eq!(r.fixed_in_branch(&v("6.4.6")), Some(v("6.4.10")));

    // Four-part 2.6.x versions: CVE-2026-23352 was backported to 2.6.39.1 only, fixed in
    // 2.6.39.2 (written "2.6.39.2 lessThanOrEqual 2.6.*"); mainline has it from 3.0.
    let r = &record(db, "CVE-2026-23352").rule;
    assert!(!r.is_affected(&v("2.6.39")));
    assert!(r.is_affected(&v("2.6.39.1")));
    assert!(!r.is_affected(&v("2.6.39.2")));
    assert!(!r.is_affected(&v("2.6.32.71")));
    assert!(r.is_affected(&v("3.0")));
    assert!(r.is_affected(&v("6.1.166")));
    assert!(!r.is_affected(&v("6.1.167")));
    assert_eq!(r.fixed_in_branch(&v("6.1.100")), Some(v("6.1.167")));
    assert_eq!(r.fixed_in_branch(&v("2.6.39.1")), Some(v("2.6.39.2")));

    // CVE-2022-49344: backported into 2.6.32.70 (four parts) up to the end of that branch.
    let r = &record(db, "CVE-2022-49344").rule;
    assert!(!r.is_affected(&v("2.6.32.69")));
    assert!(r.is_affected(&v("2.6.32.70")));
    assert!(r.is_affected(&v("2.6.32.71")));
    assert!(!r.is_affected(&v("2.6.33")));
    assert!(r.is_affected(&v("4.4")));
    assert!(!r.is_affected(&v("5.19")));
    // 6.1 and 6.1.0 are the same release.
    assert_eq!(r.is_affected(&v("4.19")), r.is_affected(&v("4.19.0")));

    // Counts agree for equal versions written differently.
    assert_eq!(db.affected_count(&v("6.1")), db.affected_count(&v("6.1.0")));
}

#[test]
fn a_branch_fixed_late() {
    let Some(db) = database() else { return };
    // Find a CVE whose 5.15 fix landed long after its 6.1 fix (a late backport) and check that
    // each branch is judged by its own fix.
    let late = db
        .records
        .iter()
        .find_map(|r| {
            let fix = |b: &str| {
                r.rule
                    .branch_fixes
                    .iter()
                    .find(|f| f.fixed.branch() == v(b))
                    .map(|f| f.fixed)
            };
            match (fix("5.15"), fix("6.1")) {
                (Some(a), Some(b)) if a.parts()[2] > 150 && b.parts()[2] < 60 => {
                    let before = KernelVersion::from_parts(&[5, 15, a.parts()[2] - 1]).unwrap();
                    r.rule.is_affected(&before).then_some((r, a, b, before))
                }
                _ => None,
            }
        })
        .expect("some CVE was fixed late in 5.15");
    let (r, fix_515, fix_61, before_515) = late;
    assert!(r.rule.is_affected(&before_515), "{}", r.id);
    assert_eq!(
        r.rule.fixed_in_branch(&before_515),
        Some(fix_515),
        "{}",
        r.id
    );
    // 6.1 was fixed long before 5.15 was: a 6.1 release older than 5.15's fix number is clean.
    assert!(!r.rule.is_affected(&fix_61), "{}", r.id);
    assert!(!r.rule.is_affected(&fix_515), "{}", r.id);
    assert!(!r.rule.is_affected(&fix_61), "{}", r.id);
}
