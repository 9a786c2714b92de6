//! The plan of a running sandbox, published for `watertight audit host`
//! (`watertight_model::RUNNING_SANDBOXES_DIR`): the auditor compares what it measures of the
//! sandbox's processes from /proc with what this says was planned, and reports the plan's
//! digest, so an operator can find sandboxes still running under a superseded policy.

use std::path::PathBuf;

use watertight_model::{BpfProgramRef, RunningSandbox, RUNNING_SANDBOXES_DIR};

use super::Plan;
use crate::error::{Error, IoContext};

/// The published entry; removed when dropped (a supervisor killed before that leaves a stale
/// entry, which the next publish removes: its supervisor pid is gone).
pub struct Published {
    path: PathBuf,
}

impl Plan {
    /// Publishes this plan for the running sandbox `sandbox_id`.
    pub fn publish(&self, sandbox_id: &str) -> Result<Published, Error> {
        let dir = PathBuf::from(RUNNING_SANDBOXES_DIR);
        std::fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
        remove_stale(&dir);
        let entry = RunningSandbox {
            sandbox_id: sandbox_id.into(),
            supervisor_pid: std::process::id(),
            plan_digest: self.digest().to_string(),
            workload: self.workload(),
            bpf_programs: own_bpf_programs(),
        };
        let json = serde_json::to_vec_pretty(&entry)
            .map_err(|e| Error::Config(format!("encode the published plan: {e}")))?;
        // Root's only, and whole or absent for a reader (our own state file, so a rename).
        let path = dir.join(format!("{sandbox_id}.json"));
        let partial = dir.join(format!(".{sandbox_id}.json.partial"));
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&partial)?;
            f.write_all(&json)?;
            std::fs::rename(&partial, &path)
        };
        write().ctx(|| format!("write {}", path.display()))?;
        Ok(Published { path })
    }
}

/// The BPF programs this supervisor holds (the exec gate's, a cgroup v2 device program), by id
/// and tag, read from its own `/proc/self/fdinfo` (`prog_id:`/`prog_tag:` of program and link
/// descriptors), so `watertight audit host` knows them as this sandbox's own. Published after
/// the gate is attached (contain.rs: the gate before the second go, the plan later).
fn own_bpf_programs() -> Vec<BpfProgramRef> {
    let mut out: Vec<BpfProgramRef> = Vec::new();
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return out;
    };
    for fd in fds.flatten() {
        let is_bpf = std::fs::read_link(fd.path()).is_ok_and(|t| {
            let t = t.to_string_lossy();
            t == "anon_inode:bpf-prog" || t == "anon_inode:bpf_link"
        });
        if !is_bpf {
            continue;
        }
        let info = format!("/proc/self/fdinfo/{}", fd.file_name().to_string_lossy());
        if let Some(p) = read_bounded(&info).as_deref().and_then(prog_of_fdinfo) {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out.sort_by_key(|p| p.id);
    out
}

/// At most 4 KiB of a file (an fdinfo is a few hundred bytes).
fn read_bounded(path: &str) -> Option<String> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(4096)
        .read_to_end(&mut buf)
        .ok()?;
    String::from_utf8(buf).ok()
}

/// The program an fdinfo names (`prog_id:` and `prog_tag:` lines, of a program or a link).
fn prog_of_fdinfo(text: &str) -> Option<BpfProgramRef> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    Some(BpfProgramRef {
        id: field("prog_id:")?.parse().ok()?,
        tag: field("prog_tag:")?,
    })
}

/// Removes entries whose supervisor no longer exists (named `wt-<slot>-<pid>.json`, or
/// `.wt-<slot>-<pid>.json.partial` when it died while writing one).
fn remove_stale(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .map(|n| n.trim_start_matches('.').trim_end_matches(".partial"))
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|n| n.rsplit('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_names_the_program_of_a_program_or_a_link() {
        let prog = "pos:\t0\nflags:\t02000002\nmnt_id:\t16\nino:\t1059\nprog_type:\t26\n\
                    prog_jited:\t1\nprog_tag:\tf21b4e52a1f1ff4b\nmemlock:\t4096\nprog_id:\t41\n";
        assert_eq!(
            prog_of_fdinfo(prog),
            Some(BpfProgramRef {
                id: 41,
                tag: "f21b4e52a1f1ff4b".into()
            })
        );
        let link = "link_type:\ttracing\nlink_id:\t3\nprog_tag:\tf21b4e52a1f1ff4b\nprog_id:\t41\n";
        assert_eq!(prog_of_fdinfo(link).map(|p| p.id), Some(41));
        assert_eq!(prog_of_fdinfo("pos:\t0\nflags:\t0\n"), None);
    }

    #[test]
    fn only_entries_of_dead_supervisors_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let live = format!("wt-1-{}.json", std::process::id());
        // pid_max is at most 2^22: these supervisors cannot exist.
        for name in [
            live.as_str(),
            "wt-0-99999999.json",
            ".wt-2-99999998.json.partial",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), b"{}").unwrap();
        }
        remove_stale(dir.path());
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, vec!["notes.txt".to_string(), live]);
    }
}
