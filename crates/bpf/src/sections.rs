//! A program's type and attach target from its ELF section name, as libbpf derives them
//! (libbpf.c `section_defs`): a prefix names the type; for the `+` kinds what follows `/` is the
//! attach target. Aliases are folded to one spelling (`tp/` is `tracepoint`, `raw_tp/` is
//! `raw_tracepoint`, `kretprobe/` stays `kretprobe`): that spelling is what policies name.

/// What a section name says about its programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionKind {
    /// The program type in libbpf's section spelling, aliases folded (`tracepoint`,
    /// `raw_tracepoint`, `tp_btf`, `kprobe`, `fentry`, `xdp`, `cgroup/connect4`, ...).
    pub prog_type: String,
    /// The attach target, normalized: `category:event` for tracepoints (raw and BTF tracepoints
    /// too, the category inferred from the event name: see [`raw_category`]), the function or
    /// path for probes, none for types that take no target in the section name.
    pub attach: Option<String>,
}

/// Section prefixes taking a target after `/` (libbpf's `+` definitions). First the aliases:
/// (spelling in the section, canonical spelling).
const WITH_TARGET: &[(&str, &str)] = &[
    ("tp", "tracepoint"),
    ("tracepoint", "tracepoint"),
    ("raw_tp", "raw_tracepoint"),
    ("raw_tracepoint", "raw_tracepoint"),
    ("raw_tp.w", "raw_tracepoint.w"),
    ("raw_tracepoint.w", "raw_tracepoint.w"),
    ("tp_btf", "tp_btf"),
    ("kprobe", "kprobe"),
    ("kretprobe", "kretprobe"),
    ("kprobe.multi", "kprobe.multi"),
    ("kretprobe.multi", "kretprobe.multi"),
    ("kprobe.session", "kprobe.session"),
    ("ksyscall", "ksyscall"),
    ("kretsyscall", "kretsyscall"),
    ("uprobe", "uprobe"),
    ("uretprobe", "uretprobe"),
    ("uprobe.s", "uprobe.s"),
    ("uretprobe.s", "uretprobe.s"),
    ("uprobe.multi", "uprobe.multi"),
    ("uretprobe.multi", "uretprobe.multi"),
    ("uprobe.multi.s", "uprobe.multi.s"),
    ("uretprobe.multi.s", "uretprobe.multi.s"),
    ("uprobe.session", "uprobe.session"),
    ("usdt", "usdt"),
    ("usdt.s", "usdt.s"),
    ("fentry", "fentry"),
    ("fexit", "fexit"),
    ("fmod_ret", "fmod_ret"),
    ("fentry.s", "fentry.s"),
    ("fexit.s", "fexit.s"),
    ("fmod_ret.s", "fmod_ret.s"),
    ("freplace", "freplace"),
    ("lsm", "lsm"),
    ("lsm.s", "lsm.s"),
    ("lsm_cgroup", "lsm_cgroup"),
    ("iter", "iter"),
    ("iter.s", "iter.s"),
    ("struct_ops", "struct_ops"),
    ("struct_ops.s", "struct_ops.s"),
];

/// Sections named exactly (or with a fixed sub-name): the whole name is the type.
const EXACT: &[&str] = &[
    "socket",
    "sk_reuseport",
    "sk_reuseport/migrate",
    "tc",
    "tc/ingress",
    "tc/egress",
    "tcx/ingress",
    "tcx/egress",
    "netkit/primary",
    "netkit/peer",
    "classifier",
    "action",
    "syscall",
    "xdp",
    "xdp.frags",
    "xdp/devmap",
    "xdp.frags/devmap",
    "xdp/cpumap",
    "xdp.frags/cpumap",
    "perf_event",
    "lwt_in",
    "lwt_out",
    "lwt_xmit",
    "lwt_seg6local",
    "sockops",
    "sk_skb",
    "sk_skb/stream_parser",
    "sk_skb/stream_verdict",
    "sk_skb/verdict",
    "sk_msg",
    "lirc_mode2",
    "flow_dissector",
    "cgroup_skb/ingress",
    "cgroup_skb/egress",
    "cgroup/skb",
    "cgroup/sock_create",
    "cgroup/sock_release",
    "cgroup/sock",
    "cgroup/post_bind4",
    "cgroup/post_bind6",
    "cgroup/bind4",
    "cgroup/bind6",
    "cgroup/connect4",
    "cgroup/connect6",
    "cgroup/connect_unix",
    "cgroup/sendmsg4",
    "cgroup/sendmsg6",
    "cgroup/sendmsg_unix",
    "cgroup/recvmsg4",
    "cgroup/recvmsg6",
    "cgroup/recvmsg_unix",
    "cgroup/getpeername4",
    "cgroup/getpeername6",
    "cgroup/getpeername_unix",
    "cgroup/getsockname4",
    "cgroup/getsockname6",
    "cgroup/getsockname_unix",
    "cgroup/sysctl",
    "cgroup/getsockopt",
    "cgroup/setsockopt",
    "cgroup/dev",
    "sk_lookup",
    "netfilter",
];

/// The program type and attach target of a section, or `None` when libbpf would not know it.
pub fn classify(section: &str) -> Option<SectionKind> {
    // A leading `?` only tells libbpf not to load the program by default.
    let section = section.strip_prefix('?').unwrap_or(section);
    if EXACT.contains(&section) {
        return Some(SectionKind {
            prog_type: section.to_string(),
            attach: None,
        });
    }
    let (prefix, target) = match section.split_once('/') {
        Some((p, t)) => (p, Some(t)),
        None => (section, None),
    };
    let (_, canonical) = WITH_TARGET.iter().find(|(alias, _)| *alias == prefix)?;
    let attach = target.filter(|t| !t.is_empty()).map(|t| match *canonical {
        "tracepoint" => match t.split_once('/') {
            Some((category, event)) => format!("{category}:{event}"),
            None => t.to_string(),
        },
        "raw_tracepoint" | "raw_tracepoint.w" | "tp_btf" => {
            format!("{}:{t}", raw_category(t))
        }
        _ => t.to_string(),
    });
    Some(SectionKind {
        prog_type: canonical.to_string(),
        attach,
    })
}

/// Whether programs of this type attach to a tracepoint (their attach target is
/// `category:event` and `programs.attach` decides it).
pub fn is_tracepoint_family(prog_type: &str) -> bool {
    matches!(
        prog_type,
        "tracepoint" | "raw_tracepoint" | "raw_tracepoint.w" | "tp_btf"
    )
}

/// The tracefs category of a raw (or BTF) tracepoint, which libbpf names without one
/// (`raw_tp/sched_wakeup`): inferred from the event name's prefix for the kernel's common
/// families, else `unknown` (which only a policy pattern with category `*` matches). The object
/// alone does not say; the prefixes follow include/trace/events/*.h of Linux 6.18.
pub fn raw_category(event: &str) -> &'static str {
    const PREFIXES: &[(&str, &str)] = &[
        ("sys_enter", "raw_syscalls"),
        ("sys_exit", "raw_syscalls"),
        ("sched_", "sched"),
        ("block_", "block"),
        ("irq_handler_", "irq"),
        ("softirq_", "irq"),
        ("tasklet_", "irq"),
        ("tcp_", "tcp"),
        ("inet_sock_", "sock"),
        ("sock_", "sock"),
        ("net_dev_", "net"),
        ("netif_", "net"),
        ("kmem_", "kmem"),
        ("kmalloc", "kmem"),
        ("kfree", "kmem"),
        ("mm_page_", "kmem"),
        ("mm_vmscan_", "vmscan"),
        ("mm_filemap_", "filemap"),
        ("mm_compaction_", "compaction"),
        ("writeback_", "writeback"),
        ("cpu_frequency", "power"),
        ("cpu_idle", "power"),
        ("task_", "task"),
        ("signal_", "signal"),
        ("hrtimer_", "timer"),
        ("timer_", "timer"),
        ("workqueue_", "workqueue"),
        ("ext4_", "ext4"),
        ("xfs_", "xfs"),
        ("mark_victim", "oom"),
        ("page_fault_", "exceptions"),
        ("cgroup_", "cgroup"),
        ("module_", "module"),
    ];
    PREFIXES
        .iter()
        .find(|(p, _)| event.starts_with(p))
        .map(|(_, c)| *c)
        .unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_fold_aliases_and_normalize_tracepoints() {
        let k = classify("tp/syscalls/sys_enter_openat").unwrap();
        assert_eq!(k.prog_type, "tracepoint");
        assert_eq!(k.attach.as_deref(), Some("syscalls:sys_enter_openat"));
        let k = classify("raw_tp/sched_wakeup").unwrap();
        assert_eq!(k.prog_type, "raw_tracepoint");
        assert_eq!(k.attach.as_deref(), Some("sched:sched_wakeup"));
        let k = classify("tp_btf/sys_enter").unwrap();
        assert_eq!(k.attach.as_deref(), Some("raw_syscalls:sys_enter"));
        assert_eq!(classify("kprobe/do_unlinkat").unwrap().prog_type, "kprobe");
        assert_eq!(classify("xdp").unwrap().prog_type, "xdp");
        assert_eq!(classify("perf_event").unwrap().attach, None);
        assert_eq!(
            classify("cgroup/connect4").unwrap().prog_type,
            "cgroup/connect4"
        );
        assert_eq!(classify("mystery/thing"), None);
        assert_eq!(
            classify("?tp/sched/sched_process_exec").unwrap().prog_type,
            "tracepoint"
        );
        assert_eq!(
            classify("kprobe"),
            Some(SectionKind {
                prog_type: "kprobe".into(),
                attach: None
            })
        );
    }
}
