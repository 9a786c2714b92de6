//! `--box-size`: the box as a size-limited tmpfs (`run --box-size`, a job's `box_size`, `batch
//! --box-size`). A program writing 10 MiB into a 1 MiB box gets ENOSPC, its verdict is its own
//! exit's (RE here) with `box_full`, and what it wrote is copied back to the host box; no mount is
//! left on the host.

mod common;
use common::*;
use watertight_testkit::{compile_c, this_test};

use std::path::{Path, PathBuf};

/// `fill N`: prints the seed file the caller left in the box, then writes N bytes to `big` in
/// 64 KiB writes; on a failed write prints the error and the bytes written, and exits 1.
const FILL: &str = r#"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char seed[64] = {0};
    int s = open("seed", O_RDONLY);
    if (s >= 0) { (void)!read(s, seed, sizeof seed - 1); close(s); }
    printf("seed %s", seed);
    long want = atol(argv[1]), done = 0;
    static char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    int fd = open("big", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { printf("open: %s\n", strerror(errno)); return 2; }
    while (done < want) {
        ssize_t n = write(fd, chunk, sizeof chunk);
        if (n < 0) { printf("write: %s after %ld bytes\n", strerror(errno), done); return 1; }
        done += n;
    }
    if (close(fd) != 0) { printf("close: %s\n", strerror(errno)); return 1; }
    printf("wrote %ld bytes\n", done);
    return 0;
}
"#;

const TEN_MIB: &str = "10485760";

fn build(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("fill.c"), FILL).unwrap();
    compile_c(&dir.join("fill.c"), &dir.join("fill"), &[]);
    dir.join("fill")
}

/// Mount lines of this (the host's) mount namespace naming `dir`.
fn host_mounts_of(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(String::from)
        .collect()
}

#[test]
fn a_run_writing_past_its_box_size_gets_enospc_and_the_box_comes_back() {
    if !require_root(&this_test()) || !require_tools(&this_test(), &["cc"], "gcc") {
        return;
    }
    let dir = world_readable_tempdir();
    build(dir.path());
    let boxes = dir.path().join("boxes");
    std::fs::create_dir(&boxes).unwrap();
    std::fs::set_permissions(&boxes, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let the_box = boxes.join("box");
    std::fs::create_dir(&the_box).unwrap();
    std::fs::write(the_box.join("seed"), "from the caller\n").unwrap();
    let run = |bytes: &str| {
        let result = dir.path().join("v.json");
        let o = watertight()
            .arg("run")
            .arg(format!("--bind-ro={}:/probe", dir.path().display()))
            .arg(format!("--box={}", the_box.display()))
            .args(["--box-size", "1M", "--result"])
            .arg(&result)
            .args(["--", "/probe/fill", bytes])
            .output()
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&result).unwrap()).unwrap();
        (o, v)
    };

    let (o, v) = run(TEN_MIB);
    let out = stdout(&o);
    assert!(
        out.starts_with("seed from the caller\nwrite: No space left on device after "),
        "{out}{}",
        stderr(&o)
    );
    assert_eq!(v["status"], "RE", "{v}");
    assert_eq!(v["exit_code"], 1, "{v}");
    assert_eq!(v["box_full"], true, "{v}");
    let big = std::fs::metadata(the_box.join("big")).unwrap().len();
    assert!(big > 0 && big <= 1 << 20, "big is {big} bytes on the host");
    assert_eq!(
        std::fs::read_to_string(the_box.join("seed")).unwrap(),
        "from the caller\n"
    );
    assert_eq!(host_mounts_of(dir.path()), Vec::<String>::new());

    // Within the size: OK, not full, the file back whole.
    let (o, v) = run("131072");
    assert_eq!(
        stdout(&o),
        "seed from the caller\nwrote 131072 bytes\n",
        "{}",
        stderr(&o)
    );
    assert_eq!(v["status"], "OK", "{v}");
    assert_eq!(v["box_full"], false, "{v}");
    assert_eq!(
        std::fs::metadata(the_box.join("big")).unwrap().len(),
        131072
    );
    assert_eq!(host_mounts_of(dir.path()), Vec::<String>::new());
}

#[test]
fn bad_box_sizes_are_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let o = watertight()
        .args(["run", "--box-size", "1M", "--", "/bin/true"])
        .output()
        .unwrap();
    // run's usage errors exit 125 (watertight failed), apart from any program's own code.
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("--box <DIR>"), "{}", stderr(&o));
    let jobs = dir.path().join("jobs.jsonl");
    std::fs::write(
        &jobs,
        "{\"id\":\"a\",\"box_size\":\"1K\",\"steps\":[{\"name\":\"s\",\"argv\":[\"true\"]}]}\n",
    )
    .unwrap();
    let o = watertight()
        .args(["batch", "--results"])
        .arg(dir.path().join("r.jsonl"))
        .arg(&jobs)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("jobs.jsonl:1: box_size: 1K: a box needs at least 64K"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("r.jsonl").exists());
    let o = watertight()
        .args(["batch", "--box-size", "12Q", "--results"])
        .arg(dir.path().join("r.jsonl"))
        .arg(&jobs)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--box-size"), "{}", stderr(&o));
}

#[test]
fn a_batch_job_writing_past_its_box_size_gets_enospc() {
    if !require_root(&this_test()) || !require_tools(&this_test(), &["cc"], "gcc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fill = build(dir.path());
    std::fs::write(dir.path().join("seed"), "job file\n").unwrap();
    let job = |id: &str, size: Option<&str>| {
        let mut j = serde_json::json!({"id": id, "files": {"fill": fill, "seed": "seed"},
            "steps": [{"name": "fill", "argv": ["./fill", TEN_MIB]},
                      {"name": "after", "argv": ["/bin/sh", "-c", "test -s big && test -f seed"]}]});
        if let Some(s) = size {
            j["box_size"] = s.into();
        }
        format!("{j}\n")
    };
    let jobs = dir.path().join("jobs.jsonl");
    // "small" has its own size; "default" gets --box-size 2M; "big" one larger than it writes.
    std::fs::write(
        &jobs,
        job("small", Some("1M")) + &job("default", None) + &job("big", Some("16M")),
    )
    .unwrap();
    let results = dir.path().join("results.jsonl");
    let o = watertight()
        .args(["batch", "--box-size", "2M", "--results"])
        .arg(&results)
        .arg(&jobs)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(&results).unwrap();
    let by_id: std::collections::BTreeMap<String, serde_json::Value> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["id"].as_str().unwrap().to_string(), v)
        })
        .collect();
    for id in ["small", "default"] {
        let v = &by_id[id];
        assert_eq!(v["verdict"], "RE", "{id}: {text}");
        assert_eq!(v["steps"][0]["exit_code"], 1, "{id}: {text}");
        assert_eq!(v["steps"][0]["box_full"], true, "{id}: {text}");
        assert_eq!(v["steps"][1]["status"], "skipped", "{id}: {text}");
    }
    let v = &by_id["big"];
    assert_eq!(v["verdict"], "OK", "{text}");
    assert_eq!(v["steps"][0]["box_full"], false, "{text}");
    // The box (the file written, the seed) is kept from one step to the next.
    assert_eq!(v["steps"][1]["status"], "OK", "{text}");
    assert_eq!(host_mounts_of(dir.path()), Vec::<String>::new());
}
