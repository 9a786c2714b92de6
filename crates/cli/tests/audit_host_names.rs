//! `watertight audit host` names a live Podman container by its name from containers/storage
//! (`podman container NAME (SHORT-ID)`) instead of its cgroup path. The container runs from a
//! directory (`--rootfs`: no image is pulled or left behind) and is removed by its exact name,
//! also when the test fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Removes the container by its exact name when dropped, then the cgroups Podman's cgroupfs
/// manager made for its monitor (`libpod_parent/conmon`) if they were not there before and are
/// empty now.
struct Container {
    name: String,
    new_cgroups: Vec<PathBuf>,
}

impl Container {
    fn new(name: &str) -> Container {
        let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
        if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
            roots.extend(entries.flatten().map(|e| e.path()));
        }
        Container {
            name: name.to_string(),
            new_cgroups: roots
                .into_iter()
                .map(|r| r.join("libpod_parent"))
                .filter(|p| !p.exists())
                .collect(),
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "--force", "--time", "0", &self.name])
            .output();
        // rmdir only removes an empty cgroup; conmon leaves its own shortly after `rm`.
        for _ in 0..100 {
            for parent in &self.new_cgroups {
                let _ = std::fs::remove_dir(parent.join("conmon"));
                let _ = std::fs::remove_dir(parent);
            }
            if self.new_cgroups.iter().all(|p| !p.exists()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(args)
        .output()
        .expect("run podman")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Whether the 64-bit little-endian ELF file at `path` is linked statically: no program
/// header of type PT_INTERP (3).
fn is_static(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize)
    };
    if !bytes.starts_with(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(phoff), Some(size), Some(count)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return false;
    };
    (0..count).all(|i| {
        let at = phoff + i * size;
        bytes
            .get(at..at + 4)
            .is_some_and(|t| t != 3u32.to_le_bytes())
    })
}

#[test]
fn a_podman_container_is_named_by_its_name() {
    let test = watertight_testkit::this_test();
    if !watertight_testkit::require_root(&test)
        || !watertight_testkit::require_tools(&test, &["podman"], "podman")
        || !watertight_testkit::require_tools(&test, &["busybox"], "busybox-static")
    {
        return;
    }
    let busybox = Path::new("/bin/busybox");
    if !is_static(busybox) {
        watertight_testkit::host_lacks(&test, "/bin/busybox is not linked statically");
        return;
    }
    let rootfs = tempfile::tempdir().unwrap();
    std::fs::create_dir(rootfs.path().join("bin")).unwrap();
    std::fs::copy(busybox, rootfs.path().join("bin/busybox")).unwrap();
    let name = format!("wt-names-{}", std::process::id());
    let _guard = Container::new(&name);
    // Limits within the test's own (root here may lack CAP_SYS_RESOURCE to raise them); a
    // capability added so that the container surely has a finding.
    let run = podman(&[
        "run",
        "--detach",
        "--name",
        &name,
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "--cap-add",
        "SYS_ADMIN",
        "--rootfs",
        rootfs.path().to_str().unwrap(),
        "/bin/busybox",
        "sleep",
        "120",
    ]);
    assert!(
        run.status.success(),
        "podman run: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let id = text(&podman(&["inspect", "--format", "{{.Id}}", &name]));
    let pid = text(&podman(&["inspect", "--format", "{{.State.Pid}}", &name]));
    assert_eq!(id.len(), 64, "{id}");
    assert!(pid.parse::<u32>().is_ok_and(|p| p > 0), "{pid}");

    // This test process is the reference: /proc/1 may be out of reach in a test's sandbox.
    let me = std::process::id().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_watertight"))
        .args([
            "audit",
            "host",
            "--format",
            "json",
            "--fail-on",
            "none",
            "--reference-pid",
            &me,
            "--pid",
            &pid,
        ])
        .output()
        .expect("run watertight");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let findings = report["findings"].as_array().unwrap();
    assert!(!findings.is_empty(), "{report:#}");
    let expected = format!("podman container {name} ({})", &id[..12]);
    for f in findings {
        assert_eq!(f["workload"], expected.as_str(), "{f:#}");
        assert_eq!(f["subject"], expected.as_str(), "{f:#}");
    }
    assert!(
        findings
            .iter()
            .any(|f| f["rule"] == "dangerous-capabilities"),
        "{report:#}"
    );

    // The table shows the name, not the cgroup path.
    let out = Command::new(env!("CARGO_BIN_EXE_watertight"))
        .args([
            "audit",
            "host",
            "--fail-on",
            "none",
            "--reference-pid",
            &me,
            "--pid",
            &pid,
        ])
        .output()
        .expect("run watertight");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains(&format!("podman container {name} (")),
        "{table}"
    );
    assert!(!table.contains(&format!("libpod-{id}")), "{table}");
}
