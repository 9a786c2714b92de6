//! Events the exec gate reports through its ring buffer (layout of `struct wt_event`).

use serde::Serialize;

/// What the killed task tried to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecWhat {
    /// execve/execveat of an unverified file (also memfd and copies).
    Exec,
    /// mmap with PROT_EXEC of an unverified file (ld.so ./copy, LD_PRELOAD, dlopen).
    Mmap,
    /// mprotect adding PROT_EXEC to a mapping of an unverified file.
    Mprotect,
}

/// One refusal: the task was sent SIGKILL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecEvent {
    /// Host pid (thread group id) of the killed task.
    pub pid: u32,
    /// The task's command name (`comm`, 15 bytes at most).
    pub comm: String,
    /// Device of the refused file, in `st_dev` encoding (compare with `stat -c %d`).
    pub dev: u64,
    /// Inode number of the refused file.
    pub ino: u64,
    /// Inode generation, so a reused inode number is not taken for the verified file.
    pub generation: u32,
    /// Which operation was refused.
    pub what: ExecWhat,
    /// The file was verified, but its inode changed since (rewritten in place: its change time
    /// is not the one read at verification).
    pub changed: bool,
}

pub(crate) const EVENT_SIZE: usize = 40;
/// `WT_EVENT_CHANGED`, or-ed into the kind.
const CHANGED: u32 = 0x100;

impl ExecEvent {
    pub(crate) fn parse(raw: &[u8]) -> Option<Self> {
        if raw.len() < EVENT_SIZE {
            return None;
        }
        let u32_at = |o: usize| u32::from_ne_bytes(raw[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_ne_bytes(raw[o..o + 8].try_into().expect("8 bytes"));
        let kind = u32_at(4);
        let what = match kind & 0xff {
            1 => ExecWhat::Exec,
            2 => ExecWhat::Mmap,
            3 => ExecWhat::Mprotect,
            _ => return None,
        };
        let comm_raw = &raw[24..40];
        let end = comm_raw
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(comm_raw.len());
        Some(Self {
            pid: u32_at(0),
            what,
            ino: u64_at(8),
            dev: user_dev(u32_at(16)),
            generation: u32_at(20),
            changed: kind & CHANGED != 0,
            comm: String::from_utf8_lossy(&comm_raw[..end]).into_owned(),
        })
    }
}

/// Kernel-internal dev_t (`MKDEV`: 12-bit major << 20 | 20-bit minor) → user-space `st_dev`.
pub(crate) fn user_dev(kernel_dev: u32) -> u64 {
    let major = u64::from(kernel_dev >> 20);
    let minor = u64::from(kernel_dev & 0xfffff);
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12) | ((major & !0xfff) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_dev_converts_like_glibc_makedev() {
        // 8:1 (sda1) and 259:65536 (a large minor) in both encodings.
        assert_eq!(user_dev((8 << 20) | 1), 0x801);
        assert_eq!(
            user_dev((259 << 20) | 0x10000),
            (259 << 8) | (0x10000 << 12)
        );
    }

    #[test]
    fn short_or_unknown_events_are_rejected() {
        assert!(ExecEvent::parse(&[0u8; 10]).is_none());
        let mut raw = [0u8; EVENT_SIZE];
        raw[4] = 9;
        assert!(ExecEvent::parse(&raw).is_none());
        raw[4] = 1;
        raw[24..28].copy_from_slice(b"true");
        let ev = ExecEvent::parse(&raw).expect("valid event");
        assert_eq!((ev.what, ev.comm.as_str()), (ExecWhat::Exec, "true"));
        assert!(!ev.changed);
        raw[5] = 1; // WT_EVENT_CHANGED (0x100): a verified inode rewritten since
        let ev = ExecEvent::parse(&raw).expect("valid event");
        assert_eq!((ev.what, ev.changed), (ExecWhat::Exec, true));
    }
}
