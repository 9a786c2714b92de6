//! Hand-written parsers for the few /proc files the live audit reads. They take text, so they
//! can be fuzzed; they never panic and skip what they do not understand.
//!
//! Why by hand rather than the `procfs` crate: a host audit reads 3-4 small files for each of
//! up to tens of thousands of processes; `procfs::Process::status()` parses every status field
//! into a struct with owned strings and `mountinfo()` allocates per option. Here each file is
//! read once into a reused buffer and only the needed lines are looked at.

use watertight_model::IdMapping;

/// The fields of `/proc/PID/status` the audit needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// The command name (`Name:`, at most 15 bytes).
    pub name: String,
    /// The parent pid (`PPid:`); a child of pid 2 is a kernel thread on kernels without `Kthread:`.
    pub ppid: Option<u32>,
    /// The effective uid (second field of `Uid:`): it decides permissions.
    pub uid: Option<u32>,
    /// The effective gid (second field of `Gid:`).
    pub gid: Option<u32>,
    /// The effective capability mask (`CapEff:`): what the process may do now.
    pub cap_eff: Option<u64>,
    /// The permitted capability mask (`CapPrm:`): what it may raise into the effective set.
    pub cap_prm: Option<u64>,
    /// The bounding set (`CapBnd:`): the most it or its children can ever gain by execve.
    pub cap_bnd: Option<u64>,
    /// The `NoNewPrivs:` flag: whether execve can no longer grant privileges (setuid, file caps).
    pub no_new_privs: Option<bool>,
    /// 0 disabled, 1 strict, 2 filter.
    pub seccomp: Option<u8>,
    /// `Some(true)` for kernel threads (the `Kthread:` line, Linux 6.x).
    pub kthread: Option<bool>,
}

/// Parses `/proc/PID/status`; a missing or malformed line leaves its field at the default.
pub fn parse_status(text: &str) -> Status {
    let mut s = Status::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let first = || value.split_whitespace().next();
        match key {
            "Name" => s.name = value.to_string(),
            "PPid" => s.ppid = value.parse().ok(),
            // Real, effective, saved, filesystem: the effective id decides permissions.
            "Uid" => s.uid = value.split_whitespace().nth(1).and_then(|v| v.parse().ok()),
            "Gid" => s.gid = value.split_whitespace().nth(1).and_then(|v| v.parse().ok()),
            "CapEff" => s.cap_eff = u64::from_str_radix(value, 16).ok(),
            "CapPrm" => s.cap_prm = u64::from_str_radix(value, 16).ok(),
            "CapBnd" => s.cap_bnd = u64::from_str_radix(value, 16).ok(),
            "NoNewPrivs" => s.no_new_privs = first().map(|v| v == "1"),
            "Seccomp" => s.seccomp = first().and_then(|v| v.parse().ok()),
            "Kthread" => s.kthread = first().map(|v| v == "1"),
            _ => {}
        }
    }
    s
}

/// Picks the cgroup path that identifies a process's workload from `/proc/PID/cgroup`, and
/// whether the process is in the root cgroup of every hierarchy.
///
/// On cgroup v2 (`0::/path`) that line decides. On v1 or hybrid hosts runtimes may place
/// processes only in v1 hierarchies, so the first non-root path among `name=systemd` and the
/// controllers counts.
pub fn parse_cgroup(text: &str) -> Option<(String, bool)> {
    let mut unified: Option<&str> = None;
    let mut systemd: Option<&str> = None;
    let mut v1: Option<&str> = None;
    let mut any = false;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrl), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        any = true;
        if id == "0" && ctrl.is_empty() {
            unified = Some(path);
        } else if ctrl == "name=systemd" {
            systemd = Some(path);
        } else if path != "/" && v1.is_none() {
            v1 = Some(path);
        }
    }
    if !any {
        return None;
    }
    fn not_root(p: Option<&str>) -> Option<&str> {
        p.filter(|p| *p != "/")
    }
    let chosen = not_root(unified)
        .or(not_root(systemd))
        .or(v1)
        .unwrap_or("/");
    Some((chosen.to_string(), chosen == "/"))
}

/// One line of `/proc/PID/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// The device major number of the mounted filesystem; with `minor`, matches the mount to the
    /// host mount of the same filesystem.
    pub major: u32,
    /// The device minor number of the mounted filesystem.
    pub minor: u32,
    /// The path inside the filesystem that is mounted (bind mounts: the source subtree).
    pub root: String,
    /// Where it is mounted, relative to the process's root (octal escapes undone).
    pub mount_point: String,
    /// Whether the per-mount options include `ro`.
    pub read_only: bool,
    /// `shared:N` peer group.
    pub shared: Option<u32>,
    /// `master:N` peer group this mount receives from.
    pub master: Option<u32>,
    /// The filesystem type (`ext4`, `overlay`, `cgroup2`, ...).
    pub fs_type: String,
    /// The mount source (a device path, or a name such as `overlay`); empty when absent.
    pub source: String,
    /// The filesystem's own options (`rw,lowerdir=...,upperdir=...` for an overlay), as written.
    pub super_options: String,
}

/// Undoes mountinfo's octal escapes (`\040` for space, `\011`, `\012`, `\134`).
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let oct = &bytes[i + 1..i + 4];
            if oct.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/PID/mountinfo`, one entry per line; malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<MountInfo> {
    let (head, tail) = line.split_once(" - ")?;
    let mut fields = head.split(' ');
    let _id = fields.next()?;
    let _parent = fields.next()?;
    let (major, minor) = fields.next()?.split_once(':')?;
    let root = unescape(fields.next()?);
    let mount_point = unescape(fields.next()?);
    let options = fields.next()?;
    let mut shared = None;
    let mut master = None;
    for opt in fields {
        if let Some(n) = opt.strip_prefix("shared:") {
            shared = n.parse().ok();
        } else if let Some(n) = opt.strip_prefix("master:") {
            master = n.parse().ok();
        }
    }
    let mut tail = tail.split(' ');
    let fs_type = tail.next()?.to_string();
    let source = unescape(tail.next().unwrap_or(""));
    let super_options = tail.next().unwrap_or("").to_string();
    Some(MountInfo {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        root,
        mount_point,
        read_only: options.split(',').any(|o| o == "ro"),
        shared,
        master,
        fs_type,
        source,
        super_options,
    })
}

/// Parses `/proc/PID/uid_map` (`inside outside count` per line).
pub fn parse_id_map(text: &str) -> Vec<IdMapping> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace().map(|v| v.parse::<u32>());
            match (f.next(), f.next(), f.next()) {
                (Some(Ok(inside)), Some(Ok(outside)), Some(Ok(count))) => Some(IdMapping {
                    inside,
                    outside,
                    count,
                }),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields() {
        let s = parse_status(
            "Name:\tsleep\nPPid:\t1\nUid:\t1000\t0\t0\t0\nGid:\t5\t6\t6\t6\nKthread:\t0\n\
             CapPrm:\t000001fffeffffff\nCapEff:\t000001fffeffffff\nCapBnd:\t000001ffffffffff\n\
             NoNewPrivs:\t1\nSeccomp:\t2\n",
        );
        assert_eq!(s.name, "sleep");
        assert_eq!(s.uid, Some(0));
        assert_eq!(s.gid, Some(6));
        assert_eq!(s.cap_eff, Some(0x1fffeffffff));
        assert_eq!(s.no_new_privs, Some(true));
        assert_eq!(s.seccomp, Some(2));
        assert_eq!(s.kthread, Some(false));
    }

    #[test]
    fn cgroup_choice() {
        assert_eq!(
            parse_cgroup("0::/system.slice/docker-ab.scope\n"),
            Some(("/system.slice/docker-ab.scope".into(), false))
        );
        let hybrid = "9:name=systemd:/\n4:memory:/process_api/71aa\n0::/\n";
        assert_eq!(
            parse_cgroup(hybrid),
            Some(("/process_api/71aa".into(), false))
        );
        let v1 = "12:pids:/docker/abc\n1:name=systemd:/docker/abc\n0::/\n";
        assert_eq!(parse_cgroup(v1), Some(("/docker/abc".into(), false)));
        assert_eq!(parse_cgroup("0::/\n3:cpu:/\n"), Some(("/".into(), true)));
        assert_eq!(parse_cgroup(""), None);
    }

    #[test]
    fn mountinfo_lines() {
        let m = parse_mountinfo(
            "36 35 98:0 /mnt\\040x /mnt2 ro,noatime master:1 shared:7 - ext3 /dev/root rw\n\
             garbage\n\
             40 1 0:25 / /run rw,nosuid shared:12 - tmpfs tmpfs rw\n",
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].root, "/mnt x");
        assert!(m[0].read_only);
        assert_eq!(m[0].master, Some(1));
        assert_eq!(m[0].shared, Some(7));
        assert_eq!(m[0].fs_type, "ext3");
        assert_eq!((m[1].major, m[1].minor), (0, 25));
        assert!(!m[1].read_only);
    }

    #[test]
    fn id_maps() {
        assert_eq!(
            parse_id_map("         0          0 4294967295\nbad\n"),
            vec![IdMapping {
                inside: 0,
                outside: 0,
                count: u32::MAX
            }]
        );
    }
}
