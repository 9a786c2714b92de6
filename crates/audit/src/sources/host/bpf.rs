//! The host's BPF programs, bpftool-style: every loaded program (`BPF_PROG_GET_NEXT_ID`, then
//! libbpf-rs's [`ProgInfoIter`] for each one's `bpf_prog_info`), the processes holding each
//! (`prog_id:` in `/proc/PID/fdinfo` of program and link descriptors, as bpftool's `pids`
//! feature finds them), the gatekeeper's registry ([`watertight_model::BPF_REGISTRY_DIR`]) and
//! the programs watertight's own sandboxes published as theirs.
//!
//! Enumerating needs CAP_SYS_ADMIN in the initial user namespace. libbpf-rs's iterator ends
//! quietly on any error, which would read "no programs" to an auditor without it; the ids are
//! therefore listed through `watertight_sys::bpf::prog_get_next_id`, which says why it stopped
//! (EPERM: [`HostBpf::not_taken`]), and a listed program the iterator could not describe is
//! kept as [`HostBpf::unreadable`], never dropped.

use super::HostScan;
use libbpf_rs::query::ProgInfoIter;
use libbpf_rs::ProgramType;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use watertight_model::{
    BpfHolder, BpfProgram, HostBpf, LoadedBpfProgram, RunningSandbox, SandboxBpf,
};

/// More programs than any host runs: a kernel listing more is not believed to end.
const MAX_PROGRAMS: usize = 1 << 16;
/// The largest registry record or published sandbox entry read.
const MAX_RECORD: u64 = 1 << 20;
/// The largest fdinfo read (a program's or link's is a few hundred bytes).
const MAX_FDINFO: u64 = 4096;

/// Takes the host's BPF inventory. `registry_dir` is the gatekeeper's registry as seen from
/// here, `running_dir` where watertight sandboxes publish their entries. Marks the processes of
/// `scan` that are the gatekeeper ([`watertight_model::Subject::bpf_gatekeeper`]).
pub fn inventory(
    proc_root: &Path,
    registry_dir: &Path,
    running_dir: &Path,
    scan: &mut HostScan,
) -> HostBpf {
    let (registry, registry_errors) = read_registry(registry_dir);
    let sandboxes = read_sandboxes(running_dir, proc_root);
    let mut bpf = HostBpf {
        registry,
        registry_errors,
        sandboxes,
        ..HostBpf::default()
    };
    let ids = match list_ids() {
        Ok(ids) => ids,
        Err(why) => {
            bpf.not_taken = Some(why);
            return bpf;
        }
    };
    let boot = boot_time();
    let mut described: BTreeMap<u32, BpfProgram> = ProgInfoIter::default()
        .map(|p| {
            let program = BpfProgram {
                id: p.id,
                tag: hex(&p.tag.0),
                prog_type: type_name(p.ty).to_string(),
                name: p.name.to_string_lossy().into_owned(),
                uid: p.created_by_uid,
                loaded_at: boot.map(|boot| boot + p.load_time.as_secs()),
                holders: Vec::new(),
            };
            (p.id, program)
        })
        .collect();
    for id in &ids {
        // Gone between the listing and the iterator: unloaded, nothing to judge.
        let gone = matches!(libbpf_rs::Program::fd_from_id(*id),
            Err(e) if e.kind() == libbpf_rs::ErrorKind::NotFound);
        if !described.contains_key(id) && !gone {
            bpf.unreadable.push(*id);
        }
    }
    // Workload and kind of every scanned process, for naming holders.
    let mut of_pid: HashMap<u32, (String, bool)> = HashMap::new();
    for w in &scan.workloads {
        for s in &w.subjects {
            if let Some(pid) = s.pid {
                of_pid.insert(pid, (w.id.clone(), w.kind.expects_isolation()));
            }
        }
    }
    let held = holders(proc_root);
    for (id, pids) in &held {
        let Some(program) = described.get_mut(id) else {
            continue;
        };
        for pid in pids {
            let (workload, in_container) = match of_pid.get(pid) {
                Some((w, c)) => (Some(w.clone()), *c),
                None => (None, false),
            };
            program.holders.push(BpfHolder {
                pid: *pid,
                name: comm(proc_root, *pid),
                workload,
                in_container,
            });
        }
    }
    bpf.programs = described.into_values().collect();
    mark_gatekeeper(&bpf, &held, scan);
    bpf
}

/// Every loaded program's id, or why they could not be listed.
fn list_ids() -> Result<Vec<u32>, String> {
    let mut ids = Vec::new();
    let mut at = 0;
    loop {
        match watertight_sys::bpf::prog_get_next_id(at) {
            Ok(Some(next)) if next > at && ids.len() < MAX_PROGRAMS => {
                ids.push(next);
                at = next;
            }
            Ok(Some(_)) => {
                return Err(format!(
                    "the kernel's program list did not end after {} programs",
                    ids.len()
                ))
            }
            Ok(None) => return Ok(ids),
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                return Err(
                    "listing BPF programs (BPF_PROG_GET_NEXT_ID) needs CAP_SYS_ADMIN, which this \
                     audit does not hold: refused with EPERM"
                        .into(),
                )
            }
            Err(e) => return Err(format!("listing BPF programs (BPF_PROG_GET_NEXT_ID): {e}")),
        }
    }
}

/// Program id -> pids holding a descriptor of it or of a link to it.
fn holders(proc_root: &Path) -> BTreeMap<u32, BTreeSet<u32>> {
    let mut out: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
    let Ok(entries) = fs::read_dir(proc_root) else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = fs::read_dir(e.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            // Only BPF descriptors' fdinfo is read: the link names the kind of anon inode.
            let bpf = fs::read_link(fd.path()).is_ok_and(|t| {
                let t = t.to_string_lossy();
                t == "anon_inode:bpf-prog" || t == "anon_inode:bpf_link"
            });
            if !bpf {
                continue;
            }
            let info = e.path().join("fdinfo").join(fd.file_name());
            if let Some(id) = read_bounded(&info, MAX_FDINFO)
                .as_deref()
                .and_then(|t| fdinfo_field(t, "prog_id:"))
                .and_then(|v| v.parse().ok())
            {
                out.entry(id).or_default().insert(pid);
            }
        }
    }
    out
}

/// A field of an fdinfo text (`prog_id:\t41`).
pub fn fdinfo_field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .map(|v| v.trim())
}

/// Marks the gatekeeper: a process holding BPF programs, every one of which the registry records
/// with the same id and tag. Nothing else can hold them: taking a descriptor of another
/// process's program by id needs CAP_SYS_ADMIN (reported on its own), and a registry record is
/// root's file on the host.
fn mark_gatekeeper(bpf: &HostBpf, held: &BTreeMap<u32, BTreeSet<u32>>, scan: &mut HostScan) {
    let vetted: BTreeSet<u32> = bpf
        .programs
        .iter()
        .filter(|p| bpf.recorded(p))
        .map(|p| p.id)
        .collect();
    let mut by_pid: BTreeMap<u32, (usize, usize)> = BTreeMap::new();
    for (id, pids) in held {
        for pid in pids {
            let e = by_pid.entry(*pid).or_default();
            e.0 += 1;
            if vetted.contains(id) {
                e.1 += 1;
            }
        }
    }
    for w in &mut scan.workloads {
        for s in &mut w.subjects {
            if let Some((all, ok)) = s.pid.and_then(|p| by_pid.get(&p)) {
                s.bpf_gatekeeper = *all > 0 && all == ok;
            }
        }
    }
}

/// The gatekeeper's records, and one line per file that could not be read.
fn read_registry(dir: &Path) -> (Vec<LoadedBpfProgram>, Vec<String>) {
    let mut records = Vec::new();
    let mut errors = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (records, errors),
        Err(e) => {
            errors.push(format!("{}: {e}", dir.display()));
            return (records, errors);
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    for path in paths {
        let parsed = read_bounded_bytes(&path, MAX_RECORD)
            .ok_or_else(|| "unreadable".to_string())
            .and_then(|b| {
                serde_json::from_slice::<LoadedBpfProgram>(&b).map_err(|e| e.to_string())
            });
        match parsed {
            Ok(r) => records.push(r),
            Err(e) => errors.push(format!("{}: {e}", path.display())),
        }
    }
    records.sort_by_key(|r| r.id);
    (records, errors)
}

/// The programs each running sandbox (whose supervisor is alive) published as its own.
fn read_sandboxes(dir: &Path, proc_root: &Path) -> Vec<SandboxBpf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<SandboxBpf> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| read_bounded_bytes(&e.path(), MAX_RECORD))
        .filter_map(|b| serde_json::from_slice::<RunningSandbox>(&b).ok())
        .filter(|r| !r.bpf_programs.is_empty())
        .filter(|r| proc_root.join(r.supervisor_pid.to_string()).exists())
        .map(|r| SandboxBpf {
            sandbox_id: r.sandbox_id,
            supervisor_pid: r.supervisor_pid,
            programs: r.bpf_programs,
        })
        .collect();
    out.sort_by(|a, b| a.sandbox_id.cmp(&b.sandbox_id));
    out
}

/// A process's name, or `?`.
fn comm(proc_root: &Path, pid: u32) -> String {
    read_bounded(&proc_root.join(pid.to_string()).join("comm"), 64)
        .map(|s| s.trim_end().to_string())
        .unwrap_or_else(|| "?".into())
}

/// The boot time, seconds since the epoch (now minus `/proc/uptime`).
fn boot_time() -> Option<u64> {
    let up: f64 = read_bounded(Path::new("/proc/uptime"), 128)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    Some((now - up).max(0.0) as u64)
}

fn read_bounded_bytes(path: &Path, max: u64) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    fs::File::open(path)
        .ok()?
        .take(max)
        .read_to_end(&mut buf)
        .ok()?;
    Some(buf)
}

fn read_bounded(path: &Path, max: u64) -> Option<String> {
    String::from_utf8(read_bounded_bytes(path, max)?).ok()
}

/// Lower-case hex without separators, as bpftool prints a tag without colons.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The program type as bpftool names it (libbpf's `prog_type_name`).
pub fn type_name(ty: ProgramType) -> &'static str {
    use ProgramType as T;
    match ty {
        T::Unspec => "unspec",
        T::SocketFilter => "socket_filter",
        T::Kprobe => "kprobe",
        T::SchedCls => "sched_cls",
        T::SchedAct => "sched_act",
        T::Tracepoint => "tracepoint",
        T::Xdp => "xdp",
        T::PerfEvent => "perf_event",
        T::CgroupSkb => "cgroup_skb",
        T::CgroupSock => "cgroup_sock",
        T::LwtIn => "lwt_in",
        T::LwtOut => "lwt_out",
        T::LwtXmit => "lwt_xmit",
        T::SockOps => "sock_ops",
        T::SkSkb => "sk_skb",
        T::CgroupDevice => "cgroup_device",
        T::SkMsg => "sk_msg",
        T::RawTracepoint => "raw_tracepoint",
        T::CgroupSockAddr => "cgroup_sock_addr",
        T::LwtSeg6local => "lwt_seg6local",
        T::LircMode2 => "lirc_mode2",
        T::SkReuseport => "sk_reuseport",
        T::FlowDissector => "flow_dissector",
        T::CgroupSysctl => "cgroup_sysctl",
        T::RawTracepointWritable => "raw_tracepoint_writable",
        T::CgroupSockopt => "cgroup_sockopt",
        T::Tracing => "tracing",
        T::StructOps => "struct_ops",
        T::Ext => "ext",
        T::Lsm => "lsm",
        T::SkLookup => "sk_lookup",
        T::Syscall => "syscall",
        T::Netfilter => "netfilter",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_fields_of_programs_and_links() {
        let link =
            "pos:\t0\nflags:\t02000000\nmnt_id:\t16\nino:\t1059\nlink_type:\traw_tracepoint\n\
                    link_id:\t3\nprog_tag:\t6deef7357e7b4530\nprog_id:\t41\ntp_name:\tsys_enter\n";
        assert_eq!(fdinfo_field(link, "prog_id:"), Some("41"));
        assert_eq!(fdinfo_field(link, "prog_tag:"), Some("6deef7357e7b4530"));
        assert_eq!(fdinfo_field("pos:\t0\n", "prog_id:"), None);
    }

    #[test]
    fn tags_print_as_bpftool_prints_them() {
        assert_eq!(
            hex(&[0x6d, 0xee, 0xf7, 0x35, 0x7e, 0x7b, 0x45, 0x30]),
            "6deef7357e7b4530"
        );
        assert_eq!(type_name(ProgramType::RawTracepoint), "raw_tracepoint");
        assert_eq!(type_name(ProgramType::Unknown), "unknown");
    }

    #[test]
    fn registry_files_that_cannot_be_read_are_named_not_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let good = LoadedBpfProgram {
            id: 7,
            tag: "00112233445566ff".into(),
            name: "observe".into(),
            prog_type: "raw_tp".into(),
            attach: None,
            object: "/etc/watertight/bpf.d/o.bpf.o".into(),
            object_sha256: "ab".into(),
            signer: "sha256:cd".into(),
            pin: None,
            loaded_at: 1,
        };
        fs::write(
            dir.path().join("7.json"),
            serde_json::to_vec(&good).unwrap(),
        )
        .unwrap();
        fs::write(dir.path().join("8.json"), b"{not json").unwrap();
        fs::write(dir.path().join(".9.json.partial"), b"{").unwrap();
        let (records, errors) = read_registry(dir.path());
        assert_eq!(records, vec![good]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("8.json"), "{errors:?}");
        let (none, no_errors) = read_registry(&dir.path().join("absent"));
        assert!(none.is_empty() && no_errors.is_empty());
    }
}
