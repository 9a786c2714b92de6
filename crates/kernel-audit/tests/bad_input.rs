//! Bad input gives clear errors naming the thing and the fix, or is skipped, counted and named.

use std::fs;
use watertight_kernel_audit::{CveDatabase, KernelAuditError, KernelRelease, KernelVersion};

fn good_record(id: &str) -> String {
    format!(
        r#"{{"containers":{{"cna":{{"title":"t {id}","affected":[
{{"defaultStatus":"affected","programFiles":["fs/x.c"],"versions":[
{{"version":"0","lessThan":"5.0","status":"unaffected","versionType":"semver"}},
{{"version":"6.1.10","lessThanOrEqual":"6.1.*","status":"unaffected","versionType":"semver"}},
{{"version":"6.2","lessThanOrEqual":"*","status":"unaffected","versionType":"original_commit_for_fix"}}]}}]}}}},
"cveMetadata":{{"cveId":"{id}","state":"PUBLISHED"}}}}"#
    )
}

#[test]
fn empty_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = CveDatabase::from_records_dir(dir.path()).unwrap_err();
    assert!(matches!(err, KernelAuditError::NoRecords { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&dir.path().display().to_string()));
    assert!(msg.contains("cve/published"), "{msg}");
}

#[test]
fn missing_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let msg = CveDatabase::from_records_dir(&missing)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("nope") && msg.contains("No such file"),
        "{msg}"
    );
}

#[test]
fn corrupt_record_is_skipped_counted_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let year = dir.path().join("2024");
    fs::create_dir(&year).unwrap();
    fs::write(year.join("CVE-2024-1.json"), good_record("CVE-2024-1")).unwrap();
    fs::write(year.join("CVE-2024-2.json"), good_record("CVE-2024-2")).unwrap();
    fs::write(year.join("CVE-2024-3.json"), "{\"containers\": {").unwrap();
    fs::write(
        year.join("CVE-2024-4.json"),
        good_record("CVE-2024-4").replace("6.1.10", "six.one"),
    )
    .unwrap();
    // Not JSON by name: ignored, not counted.
    fs::write(year.join("README.md"), "hello").unwrap();

    let db = CveDatabase::from_records_dir(dir.path()).unwrap();
    assert_eq!(db.records.len(), 2);
    assert_eq!(db.source.skipped_count, 2);
    let names: Vec<String> = db
        .source
        .skipped
        .iter()
        .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["CVE-2024-3.json", "CVE-2024-4.json"]);
    assert!(db.source.skipped[1].reason.contains("six.one"));
    // The good records still decide.
    let v = KernelVersion::parse("6.1.5").unwrap();
    assert_eq!(db.affected_count(&v), 2);
    assert_eq!(
        db.affected_count(&KernelVersion::parse("6.1.10").unwrap()),
        0
    );
}

#[test]
fn directory_of_only_corrupt_records_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.json"), "not json").unwrap();
    let msg = CveDatabase::from_records_dir(dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("a.json") && msg.contains("failed to parse"),
        "{msg}"
    );
}

#[test]
fn corrupt_or_missing_index_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = CveDatabase::from_index(&dir.path().join("none.idx"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("none.idx"), "{missing}");

    let junk = dir.path().join("junk.idx");
    fs::write(&junk, vec![7u8; 100]).unwrap();
    let msg = CveDatabase::from_index(&junk).unwrap_err().to_string();
    assert!(
        msg.contains("junk.idx") && msg.contains("wrong magic") && msg.contains("--index-out"),
        "{msg}"
    );

    // A real index with one flipped byte in the body.
    let records = dir.path().join("records");
    fs::create_dir(&records).unwrap();
    fs::write(records.join("CVE-2024-1.json"), good_record("CVE-2024-1")).unwrap();
    let db = CveDatabase::from_records_dir(&records).unwrap();
    let idx = dir.path().join("k.idx");
    db.write_index(&idx).unwrap();
    let mut bytes = fs::read(&idx).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 1;
    fs::write(&idx, &bytes).unwrap();
    let msg = CveDatabase::from_index(&idx).unwrap_err().to_string();
    assert!(msg.contains("checksum mismatch"), "{msg}");
}

#[test]
fn non_versions_are_clear_errors() {
    for bad in ["", "latest", "six.one", "6", "-6.1", "v6.1"] {
        let msg = KernelRelease::parse(bad).unwrap_err().to_string();
        assert!(msg.contains("is not a kernel version"), "{bad}: {msg}");
        assert!(msg.contains("6.1.100"), "{msg}");
    }
}
