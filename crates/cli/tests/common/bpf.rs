//! The BPF test object (tests/bpf/observe.bpf.c, built by clang) and a process holding one of its
//! programs (tests/bpf/holder.c, linked with libbpf), for the tests that need a real program in
//! the kernel. Included with `#[path]` by the tests that use it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use watertight_testkit::require_tools;

/// The built object and holder, in a temporary directory removed on drop.
pub struct Built {
    _dir: tempfile::TempDir,
    /// observe.bpf.o: programs `wt_test_rawtp` and `wt_test_tp`.
    pub object: PathBuf,
    /// The holder program.
    pub holder: PathBuf,
}

fn src(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/bpf")
        .join(name)
}

fn run(cmd: &mut Command) {
    let o = cmd.output().expect("run the compiler");
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Builds both, or says what is missing (the guard's SKIP, a failure in CI).
pub fn build(test: &str) -> Option<Built> {
    if !watertight_testkit::require_bpf_toolchain(test) || !require_tools(test, &["cc"], "gcc") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let object = dir.path().join("observe.bpf.o");
    let holder = dir.path().join("holder");
    watertight_testkit::compile_bpf(&src("observe.bpf.c"), &object);
    run(Command::new("cc")
        .args(["-O1", "-o"])
        .arg(&holder)
        .arg(src("holder.c"))
        .arg("-lbpf"));
    Some(Built {
        _dir: dir,
        object,
        holder,
    })
}

/// A process holding a loaded program; killed (its own child) on drop, which unloads it.
pub struct Held {
    child: Child,
    /// The kernel's program id.
    pub id: u32,
    /// The kernel's tag, 16 hex digits.
    pub tag: String,
}

impl Held {
    /// The holder's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Loads `prog` (attached when `attach`) in a holder started through `wrapper` (e.g.
/// `["unshare", "--net"]`, or none); Err: the holder's line naming the failed step.
pub fn hold(built: &Built, prog: &str, attach: bool, wrapper: &[&str]) -> Result<Held, String> {
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(&built.holder);
            c
        }
        None => Command::new(&built.holder),
    };
    cmd.arg(&built.object).arg(prog);
    if attach {
        cmd.arg("attach");
    }
    let mut child = cmd
        .arg("hold")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the holder");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut words = line.split_whitespace();
    match (
        words.next().and_then(|w| w.parse::<u32>().ok()),
        words.next(),
    ) {
        (Some(id), Some(tag)) if tag.len() == 16 => Ok(Held {
            id,
            tag: tag.to_string(),
            child,
        }),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            Err(line.trim().to_string())
        }
    }
}

/// Runs the holder once without holding, through `wrapper`: `Ok(())` when it loaded (and
/// attached, when asked), else its line naming the failed step.
pub fn load_once(built: &Built, prog: &str, attach: bool, wrapper: &[&str]) -> Result<(), String> {
    let (first, rest) = wrapper.split_first().expect("a wrapper");
    let mut cmd = Command::new(first);
    cmd.args(rest)
        .arg(&built.holder)
        .arg(&built.object)
        .arg(prog);
    if attach {
        cmd.arg("attach");
    }
    let o = cmd.stdin(Stdio::null()).output().expect("run the holder");
    let line = String::from_utf8_lossy(&o.stdout).trim().to_string();
    if o.status.success() {
        Ok(())
    } else {
        Err(line)
    }
}
