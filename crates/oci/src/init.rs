//! The container's side: the intermediate process (joins namespaces by path, unshares the new
//! ones, forks) and the container init's steps (mounts, pivot_root, hostname, sysctl, console,
//! "created", the exec fifo, identity, capabilities, no_new_privs, seccomp, exec). `exec` runs
//! the same process steps in a process that joined a running container.
//!
//! The parent and these processes talk over one socket pair (`Channel`), one line per message:
//! parent -> child `go`, `maps`, `start`, `ok <state JSON>`; child -> parent `userns`,
//! `pid <n>`, `hooks`, `created`, `error <message>`. Every socket and descriptor of the runtime
//! is close-on-exec, so the program inherits only its stdio and the preserved fds.

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{Gid, Pid, Uid};
use std::convert::Infallible;
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::cgroup::ContainerCgroup;
use crate::mounts::{
    make_target, mkdir_all, remount_bind, secure_join, MountKind, MountPlan, REMOUNT_FLAGS,
};
use crate::plan::{ns_file_name, ContainerPlan, DevicePlan, JoinNamespace, ProcessPlan};

/// One end of the parent/child socket, line-based.
#[derive(Debug)]
pub struct Channel {
    stream: UnixStream,
}

impl Channel {
    /// A connected pair (parent end, child end), both close-on-exec.
    pub fn pair() -> std::io::Result<(Channel, Channel)> {
        let (a, b) = UnixStream::pair()?;
        Ok((Channel { stream: a }, Channel { stream: b }))
    }

    /// Sends one message (newlines in it become spaces).
    pub fn send(&mut self, msg: &str) -> std::io::Result<()> {
        let mut line = msg.replace('\n', " ");
        line.push('\n');
        self.stream.write_all(line.as_bytes())
    }

    /// The next message; None when every peer has closed (or exec'd).
    pub fn recv(&mut self) -> std::io::Result<Option<String>> {
        // Byte by byte: several processes share this socket, so nothing may be read ahead.
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            match self.stream.read(&mut byte) {
                Ok(0) => {
                    return Ok(if line.is_empty() {
                        None
                    } else {
                        Some(String::from_utf8_lossy(&line).into_owned())
                    })
                }
                Ok(_) if byte[0] == b'\n' => {
                    return Ok(Some(String::from_utf8_lossy(&line).into_owned()))
                }
                Ok(_) => line.push(byte[0]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `msg` and then `fd` (SCM_RIGHTS, one payload byte the line reader never sees).
    pub fn send_with_fd(
        &mut self,
        msg: &str,
        fd: std::os::fd::BorrowedFd<'_>,
    ) -> std::io::Result<()> {
        self.send(msg)?;
        watertight_sys::fdpass::send_fd(self.stream.as_fd(), fd)
    }

    /// The descriptor sent after a message by [`Channel::send_with_fd`].
    pub fn recv_fd(&mut self) -> std::io::Result<Option<OwnedFd>> {
        watertight_sys::fdpass::recv_fd(self.stream.as_fd())
    }

    fn expect(&mut self, want: &str) -> Result<String, String> {
        match self.recv() {
            Ok(Some(m)) if m == want || m.starts_with(&format!("{want} ")) => {
                Ok(m[want.len()..].trim_start().to_owned())
            }
            Ok(Some(m)) => Err(format!("expected {want:?} from the runtime, got {m:?}")),
            Ok(None) => Err(format!("the runtime went away while waiting for {want:?}")),
            Err(e) => Err(format!("waiting for {want:?}: {e}")),
        }
    }
}

/// What the forked container process does after the intermediate step.
pub enum Role<'a> {
    /// The container init of `create`.
    Init {
        /// The plan.
        plan: &'a ContainerPlan,
        /// The exec fifo, opened O_PATH by the parent (reopened for writing via /proc/self/fd).
        fifo: OwnedFd,
        /// The connected console socket.
        console: Option<UnixStream>,
        /// The cgroup (for the cgroup mount).
        cgroup: &'a ContainerCgroup,
    },
    /// A process `exec` starts in a running container.
    Exec {
        /// The process.
        process: &'a ProcessPlan,
        /// The connected console socket.
        console: Option<UnixStream>,
    },
}

fn fail_with(chan: &mut Channel, msg: String) -> ! {
    if chan.send(&format!("error {msg}")).is_err() {
        // The runtime is gone (after "created"): the container's stderr is all there is.
        let _ = writeln!(std::io::stderr(), "watertight-runc: {msg}");
    }
    watertight_sys::process::exit_now(1)
}

/// The intermediate process: never returns. Waits for `go` (the parent has placed it in the
/// cgroup), joins `join`, unshares `unshare` (a new user namespace first, its maps written by
/// the parent), forks the container process, reports its pid and exits.
pub fn intermediate(
    mut chan: Channel,
    join: &[JoinNamespace],
    unshare_flags: CloneFlags,
    role: Role<'_>,
) -> ! {
    if let Err(msg) = chan.expect("go") {
        fail_with(&mut chan, msg);
    }
    // The mount namespace is joined by the forked process: after it, /proc is the
    // container's, where this process (outside its pid namespace) has no /proc/self, and fork
    // reads /proc/self/task to make sure it is single-threaded.
    let (mount_join, others): (Vec<&JoinNamespace>, Vec<&JoinNamespace>) =
        join.iter().partition(|j| j.flag == CloneFlags::CLONE_NEWNS);
    for j in others {
        join_one(&mut chan, j);
    }
    if unshare_flags.contains(CloneFlags::CLONE_NEWUSER) {
        if let Err(e) = unshare(CloneFlags::CLONE_NEWUSER) {
            fail_with(&mut chan, format!("creating the user namespace: {e}"));
        }
        let _ = chan.send("userns");
        if let Err(msg) = chan.expect("maps") {
            fail_with(&mut chan, msg);
        }
        // Root in the new namespace, where 0 is mapped (the rootless case maps it).
        let _ = nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0));
        let _ = nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0));
    }
    let rest = unshare_flags - CloneFlags::CLONE_NEWUSER;
    if !rest.is_empty() {
        if let Err(e) = unshare(rest) {
            fail_with(&mut chan, format!("creating namespaces ({rest:?}): {e}"));
        }
    }
    match watertight_sys::process::fork() {
        Err(e) => fail_with(&mut chan, format!("forking the container process: {e}")),
        Ok(watertight_sys::process::Forked::Parent { pid, .. }) => {
            let _ = chan.send(&format!("pid {pid}"));
            watertight_sys::process::exit_now(0)
        }
        Ok(watertight_sys::process::Forked::Child) => {
            for j in mount_join {
                join_one(&mut chan, j);
            }
            let result = match role {
                Role::Init {
                    plan,
                    fifo,
                    console,
                    cgroup,
                } => container_init(&mut chan, plan, fifo, console, cgroup),
                Role::Exec { process, console } => exec_process(&mut chan, process, console),
            };
            let Err(msg) = result;
            fail_with(&mut chan, msg)
        }
    }
}

fn join_one(chan: &mut Channel, j: &JoinNamespace) {
    let joined = std::fs::File::open(&j.path)
        .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
        .and_then(|f| setns(f.as_fd(), j.flag));
    if let Err(e) = joined {
        fail_with(
            chan,
            format!(
                "joining the {} namespace {}: {e}",
                ns_file_name(j.flag),
                j.path.display()
            ),
        );
    }
}

fn ctx<T, E: std::fmt::Display>(
    r: Result<T, E>,
    what: impl FnOnce() -> String,
) -> Result<T, String> {
    r.map_err(|e| format!("{}: {e}", what()))
}

fn container_init(
    chan: &mut Channel,
    plan: &ContainerPlan,
    fifo: OwnedFd,
    console: Option<UnixStream>,
    cgroup: &ContainerCgroup,
) -> Result<Infallible, String> {
    chan.expect("start")?;
    let root = plan.rootfs.as_path();
    let userns = plan.unshare.contains(CloneFlags::CLONE_NEWUSER)
        || plan
            .join
            .iter()
            .any(|j| j.flag == CloneFlags::CLONE_NEWUSER);
    // A mount namespace of its own, new or joined by path: the rootfs is set up in it.
    let new_mntns = plan.unshare.contains(CloneFlags::CLONE_NEWNS)
        || plan.join.iter().any(|j| j.flag == CloneFlags::CLONE_NEWNS);
    if new_mntns {
        // Nothing mounted here may propagate back to the host.
        ctx(
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_SLAVE,
                None::<&str>,
            ),
            || "making / rslave".into(),
        )?;
        ctx(
            mount(
                Some(root),
                root,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            ),
            || format!("bind-mounting the rootfs {}", root.display()),
        )?;
        for (i, m) in plan.mounts.iter().enumerate() {
            mount_one(m, root, cgroup)
                .map_err(|e| format!("mounts[{i}] ({}): {e}", m.destination))?;
        }
        let dev_mounted = plan
            .mounts
            .iter()
            .any(|m| m.destination.trim_end_matches('/') == "/dev");
        if dev_mounted {
            for (name, major, minor) in [
                ("null", 1, 3),
                ("zero", 1, 5),
                ("full", 1, 7),
                ("tty", 5, 0),
                ("random", 1, 8),
                ("urandom", 1, 9),
            ] {
                let path = format!("/dev/{name}");
                if plan.devices.iter().any(|d| d.path == path) {
                    continue;
                }
                let dev = DevicePlan {
                    path,
                    kind: SFlag::S_IFCHR,
                    major,
                    minor,
                    mode: 0o666,
                    uid: 0,
                    gid: 0,
                };
                create_device(&dev, root, userns)?;
            }
            dev_symlinks(root)?;
        }
        for d in &plan.devices {
            create_device(d, root, userns)?;
        }
    }
    chan.send("hooks")
        .map_err(|e| format!("talking to the runtime: {e}"))?;
    let state = chan.expect("ok")?;
    let state: serde_json::Value = serde_json::from_str(&state).unwrap_or_default();
    crate::hooks::run("createContainer", &plan.raw["hooks"], &state).map_err(|e| e.to_string())?;
    if new_mntns {
        if plan.no_pivot {
            ctx(nix::unistd::chdir(root), || "chdir to the rootfs".into())?;
            ctx(
                mount(
                    Some(root),
                    "/",
                    None::<&str>,
                    MsFlags::MS_MOVE,
                    None::<&str>,
                ),
                || "moving the rootfs to /".into(),
            )?;
            ctx(nix::unistd::chroot("."), || "chroot".into())?;
        } else {
            ctx(nix::unistd::chdir(root), || "chdir to the rootfs".into())?;
            ctx(nix::unistd::pivot_root(".", "."), || "pivot_root".into())?;
            // The old root is detached without its unmount reaching the host.
            ctx(
                mount(
                    None::<&str>,
                    ".",
                    None::<&str>,
                    MsFlags::MS_SLAVE | MsFlags::MS_REC,
                    None::<&str>,
                ),
                || "making the old root rslave".into(),
            )?;
            ctx(umount2(".", MntFlags::MNT_DETACH), || {
                "detaching the old root".into()
            })?;
        }
        ctx(nix::unistd::chdir("/"), || "chdir /".into())?;
        if let Some(p) = plan.rootfs_propagation {
            ctx(
                mount(None::<&str>, "/", None::<&str>, p, None::<&str>),
                || "linux.rootfsPropagation".into(),
            )?;
        }
        // Before readonlyPaths: /proc/sys is usually one of them.
        names_and_sysctl(plan)?;
        for p in &plan.readonly_paths {
            readonly_path(p).map_err(|e| format!("linux.readonlyPaths {p}: {e}"))?;
        }
        for p in &plan.masked_paths {
            mask_path(p).map_err(|e| format!("linux.maskedPaths {p}: {e}"))?;
        }
        if plan.readonly_root {
            ctx(remount_bind(Path::new("/"), MsFlags::MS_RDONLY), || {
                "root.readonly: remounting / read-only".into()
            })?;
        }
    } else {
        ctx(nix::unistd::chroot(root), || "chroot to the rootfs".into())?;
        ctx(nix::unistd::chdir("/"), || "chdir /".into())?;
        names_and_sysctl(plan)?;
    }
    let _ = nix::unistd::setsid();
    if plan.process.terminal {
        setup_console(console, plan.process.console_size)?;
    }
    // Limits the host refuses (a hard limit above root's without CAP_SYS_RESOURCE) fail create.
    apply_rlimits(&plan.process)?;
    // The program must exist now: `create` fails on a missing executable, as runc's does.
    let program = find_program(&plan.process)?;
    // Filters whose listener someone must hold go in now, while the runtime is there to take
    // it: the container's own when linux.seccomp.listenerPath names its agent (runc installs it
    // before "created" too), then the floor's, always after the container's, when it has a
    // violation monitor (or whenever the container's went in early). Others follow at exec.
    let mut installed = FiltersInstalled {
        container: install_for_agent(chan, &plan.process)?,
        floor: false,
    };
    if let Some(filter) = plan
        .process
        .floor_seccomp
        .as_ref()
        .filter(|f| installed.container || f.wants_listener())
    {
        let listener = ctx(
            watertight_sys::seccomp::install_filter(filter.program(), filter.flags()),
            || "the runtime floor's seccomp filter".into(),
        )?;
        installed.floor = true;
        if let Some(listener) = listener {
            chan.send_with_fd("listener", listener.as_fd())
                .map_err(|e| format!("handing the violation listener to the runtime: {e}"))?;
        }
    }
    chan.send("created")
        .map_err(|e| format!("talking to the runtime: {e}"))?;
    // Blocks until `start` opens the fifo for reading.
    let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
    let mut w = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| {
            format!("opening the exec fifo {path}: {e} (is /proc mounted in the container?)")
        })?;
    drop(fifo);
    ctx(w.write_all(b"0"), || "writing the exec fifo".into())?;
    drop(w);
    crate::hooks::run("startContainer", &plan.raw["hooks"], &state).map_err(|e| e.to_string())?;
    finish_process(&plan.process, &program, plan.personality, installed)
}

fn names_and_sysctl(plan: &ContainerPlan) -> Result<(), String> {
    if let Some(h) = &plan.hostname {
        ctx(nix::unistd::sethostname(h), || "hostname".into())?;
    }
    if let Some(d) = &plan.domainname {
        ctx(std::fs::write("/proc/sys/kernel/domainname", d), || {
            "domainname".into()
        })?;
    }
    for (k, v) in &plan.sysctl {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        ctx(std::fs::write(&path, v), || format!("linux.sysctl.{k}"))?;
    }
    Ok(())
}

fn exec_process(
    chan: &mut Channel,
    process: &ProcessPlan,
    console: Option<UnixStream>,
) -> Result<Infallible, String> {
    chan.expect("start")?;
    let _ = nix::unistd::setsid();
    if process.terminal {
        setup_console(console, process.console_size)?;
    }
    let program = find_program(process)?;
    // The floor's filter follows at exec, after the container's.
    let installed = FiltersInstalled {
        container: install_for_agent(chan, process)?,
        floor: false,
    };
    finish_process(process, &program, None, installed)
}

/// With linux.seccomp.listenerPath, installs the container's filter now and hands its notify fd
/// to the runtime, which sends it on to the agent. Whether it installed the filter.
fn install_for_agent(chan: &mut Channel, p: &ProcessPlan) -> Result<bool, String> {
    let Some(filter) = p
        .seccomp
        .as_ref()
        .filter(|f| p.seccomp_listener.is_some() && f.wants_listener())
    else {
        return Ok(false);
    };
    let listener = ctx(
        watertight_sys::seccomp::install_filter(filter.program(), filter.flags()),
        || "linux.seccomp: installing the filter".into(),
    )?;
    if let Some(listener) = listener {
        chan.send_with_fd("seccomp-listener", listener.as_fd())
            .map_err(|e| format!("handing the seccomp listener to the runtime: {e}"))?;
    }
    Ok(true)
}

fn mount_one(m: &MountPlan, root: &Path, cgroup: &ContainerCgroup) -> Result<(), String> {
    let dest = secure_join(root, &m.destination);
    let base = m.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    match &m.kind {
        MountKind::Bind => {
            let src = m.source.as_ref().ok_or("a bind needs a source")?;
            ctx(make_target(src, &dest), || {
                format!("creating {}", dest.display())
            })?;
            ctx(
                mount(
                    Some(src.as_path()),
                    &dest,
                    None::<&str>,
                    MsFlags::MS_BIND | (m.flags & MsFlags::MS_REC),
                    None::<&str>,
                ),
                || format!("bind {} -> {}", src.display(), dest.display()),
            )?;
            if !(base & REMOUNT_FLAGS).is_empty() {
                ctx(remount_bind(&dest, base & REMOUNT_FLAGS), || {
                    format!("remount {}", dest.display())
                })?;
            }
        }
        MountKind::Filesystem(fstype) => {
            ctx(mkdir_all(&dest), || format!("creating {}", dest.display()))?;
            let data = (!m.data.is_empty()).then_some(m.data.as_str());
            let source = m.source.clone().unwrap_or_else(|| PathBuf::from(fstype));
            let r = mount(
                Some(source.as_path()),
                &dest,
                Some(fstype.as_str()),
                base,
                data,
            );
            match r {
                Err(nix::Error::EPERM) if fstype == "sysfs" => {
                    // sysfs of a network namespace the container's user namespace does not
                    // own: bind the host's, read-only, as runc does.
                    ctx(
                        mount(
                            Some("/sys"),
                            &dest,
                            None::<&str>,
                            MsFlags::MS_BIND | MsFlags::MS_REC,
                            None::<&str>,
                        ),
                        || "binding /sys".into(),
                    )?;
                    ctx(remount_bind(&dest, base & REMOUNT_FLAGS), || {
                        "remounting /sys".into()
                    })?;
                }
                r => ctx(r, || {
                    format!("mount -t {fstype} {} {}", source.display(), dest.display())
                })?,
            }
        }
        MountKind::Cgroup => mount_cgroup(&dest, base, cgroup)?,
    }
    for p in &m.propagation {
        ctx(
            mount(None::<&str>, &dest, None::<&str>, *p, None::<&str>),
            || format!("propagation of {}", dest.display()),
        )?;
    }
    Ok(())
}

/// /sys/fs/cgroup in the container: the container's own cgroup of each hierarchy.
fn mount_cgroup(dest: &Path, flags: MsFlags, cgroup: &ContainerCgroup) -> Result<(), String> {
    ctx(mkdir_all(dest), || format!("creating {}", dest.display()))?;
    let pure_v2 = cgroup.dirs.len() == 1 && cgroup.dirs[0].v2;
    if pure_v2 {
        let r = mount(Some("cgroup2"), dest, Some("cgroup2"), flags, None::<&str>);
        if r.is_ok() {
            return Ok(());
        }
        ctx(
            mount(
                Some(cgroup.dirs[0].dir.as_path()),
                dest,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            ),
            || "binding the cgroup".into(),
        )?;
        return ctx(remount_bind(dest, flags & REMOUNT_FLAGS), || {
            "remounting the cgroup".into()
        });
    }
    ctx(
        mount(
            Some("tmpfs"),
            dest,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("mode=755"),
        ),
        || format!("tmpfs on {}", dest.display()),
    )?;
    for d in &cgroup.dirs {
        let name = if d.v2 {
            "unified".to_owned()
        } else {
            d.controllers
                .iter()
                .map(|c| c.trim_start_matches("name="))
                .collect::<Vec<_>>()
                .join(",")
        };
        if name.is_empty() {
            continue;
        }
        let target = dest.join(&name);
        ctx(mkdir_all(&target), || {
            format!("creating {}", target.display())
        })?;
        ctx(
            mount(
                Some(d.dir.as_path()),
                &target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            ),
            || format!("binding {}", d.dir.display()),
        )?;
        ctx(
            remount_bind(
                &target,
                (flags & REMOUNT_FLAGS)
                    | MsFlags::MS_NOSUID
                    | MsFlags::MS_NODEV
                    | MsFlags::MS_NOEXEC,
            ),
            || format!("remounting {}", target.display()),
        )?;
        if name.contains(',') {
            for single in name.split(',') {
                let _ = std::os::unix::fs::symlink(&name, dest.join(single));
            }
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        ctx(
            mount(
                None::<&str>,
                dest,
                None::<&str>,
                MsFlags::MS_REMOUNT
                    | MsFlags::MS_RDONLY
                    | MsFlags::MS_NOSUID
                    | MsFlags::MS_NODEV
                    | MsFlags::MS_NOEXEC,
                Some("mode=755"),
            ),
            || format!("remounting {} read-only", dest.display()),
        )?;
    }
    Ok(())
}

fn create_device(d: &DevicePlan, root: &Path, userns: bool) -> Result<(), String> {
    let path = secure_join(root, &d.path);
    if let Some(parent) = path.parent() {
        ctx(mkdir_all(parent), || {
            format!("creating {}", parent.display())
        })?;
    }
    let _ = std::fs::remove_file(&path);
    if userns {
        // mknod is refused in a user namespace: bind the host's node of the same path.
        ctx(make_target(Path::new("/dev/null"), &path), || {
            format!("creating {}", path.display())
        })?;
        return ctx(
            mount(
                Some(Path::new(&d.path)),
                &path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            ),
            || format!("linux.devices {}: binding the host's node", d.path),
        );
    }
    ctx(
        nix::sys::stat::mknod(
            &path,
            d.kind,
            Mode::from_bits_truncate(d.mode),
            nix::sys::stat::makedev(d.major, d.minor),
        ),
        || format!("linux.devices {}: mknod", d.path),
    )?;
    ctx(
        nix::unistd::chown(
            &path,
            Some(Uid::from_raw(d.uid)),
            Some(Gid::from_raw(d.gid)),
        ),
        || format!("linux.devices {}: chown", d.path),
    )?;
    ctx(
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            &path,
            Mode::from_bits_truncate(d.mode),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        ),
        || format!("linux.devices {}: chmod", d.path),
    )
}

fn dev_symlinks(root: &Path) -> Result<(), String> {
    let mut links = vec![
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "/dev/core"));
    }
    for (target, link) in links {
        let at = secure_join(root, link);
        match std::os::unix::fs::symlink(target, &at) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("symlink {link}: {e}")),
        }
    }
    let ptmx = secure_join(root, "/dev/ptmx");
    if secure_join(root, "/dev/pts/ptmx").exists() {
        let _ = std::fs::remove_file(&ptmx);
        ctx(std::os::unix::fs::symlink("pts/ptmx", &ptmx), || {
            "symlink /dev/ptmx".into()
        })?;
    }
    Ok(())
}

fn readonly_path(p: &str) -> Result<(), String> {
    if std::fs::symlink_metadata(p).is_err() {
        return Ok(());
    }
    ctx(
        mount(
            Some(p),
            p,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        ),
        || "bind".into(),
    )?;
    ctx(
        remount_bind(Path::new(p), MsFlags::MS_RDONLY | MsFlags::MS_REC),
        || "remount read-only".into(),
    )
}

fn mask_path(p: &str) -> Result<(), String> {
    let Ok(meta) = std::fs::metadata(p) else {
        return Ok(());
    };
    if meta.is_dir() {
        ctx(
            mount(
                Some("tmpfs"),
                p,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            ),
            || "tmpfs".into(),
        )
    } else {
        ctx(
            mount(
                Some("/dev/null"),
                p,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            ),
            || "bind /dev/null".into(),
        )
    }
}

fn setup_console(console: Option<UnixStream>, size: Option<(u16, u16)>) -> Result<(), String> {
    use nix::fcntl::OFlag;
    let sock = console.ok_or("process.terminal needs --console-socket")?;
    let master = ctx(
        nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC),
        || "opening /dev/ptmx".into(),
    )?;
    ctx(nix::pty::grantpt(&master), || "grantpt".into())?;
    ctx(nix::pty::unlockpt(&master), || "unlockpt".into())?;
    let name = ctx(nix::pty::ptsname_r(&master), || "ptsname".into())?;
    let slave = ctx(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&name),
        || format!("opening {name}"),
    )?;
    if let Some((rows, cols)) = size {
        let ws = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let _ = watertight_sys::tty::set_window_size(slave.as_fd(), &ws);
    }
    ctx(
        watertight_sys::fdpass::send_fd(sock.as_fd(), master.as_fd()),
        || "sending the pty master to the console socket".into(),
    )?;
    drop(master);
    drop(sock);
    ctx(
        watertight_sys::tty::set_controlling_terminal(slave.as_fd()),
        || "setting the controlling terminal".into(),
    )?;
    ctx(nix::unistd::dup2_stdin(&slave), || "dup2 stdin".into())?;
    ctx(nix::unistd::dup2_stdout(&slave), || "dup2 stdout".into())?;
    ctx(nix::unistd::dup2_stderr(&slave), || "dup2 stderr".into())?;
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;

/// The program's path: argv[0] as is when it has a '/', else found in the process's PATH.
pub fn find_program(p: &ProcessPlan) -> Result<PathBuf, String> {
    let arg0 = &p.args[0];
    if arg0.contains('/') {
        return Ok(PathBuf::from(arg0));
    }
    let path_var = p
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(arg0);
        if nix::unistd::access(&candidate, nix::unistd::AccessFlags::X_OK).is_ok()
            && candidate.is_file()
        {
            return Ok(candidate);
        }
    }
    Err(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    ))
}

fn apply_rlimits(p: &ProcessPlan) -> Result<(), String> {
    for (res, soft, hard) in &p.rlimits {
        ctx(nix::sys::resource::setrlimit(*res, *soft, *hard), || {
            format!("process.rlimits {res:?} {soft}/{hard}")
        })?;
    }
    Ok(())
}

/// Which filters the init installed before "created" (the rest go in at exec).
#[derive(Clone, Copy, Default)]
struct FiltersInstalled {
    /// The container's own (linux.seccomp with a listenerPath).
    container: bool,
    /// The hardening floor's.
    floor: bool,
}

fn install_seccomp(p: &ProcessPlan, installed: FiltersInstalled) -> Result<(), String> {
    if let Some(filter) = p.seccomp.as_ref().filter(|_| !installed.container) {
        let listener = ctx(
            watertight_sys::seccomp::install_filter(filter.program(), filter.flags()),
            || "linux.seccomp: installing the filter".into(),
        )?;
        drop(listener);
    }
    // The floor's filter second: the kernel runs both and takes the most restrictive answer,
    // so its deny list holds whatever the container's profile allows. A listener it returns
    // is closed here: a notified call then fails (ENOSYS), closed without a monitor.
    if let Some(filter) = p.floor_seccomp.as_ref().filter(|_| !installed.floor) {
        let listener = ctx(
            watertight_sys::seccomp::install_filter(filter.program(), filter.flags()),
            || "the runtime floor's seccomp filter".into(),
        )?;
        drop(listener);
    }
    Ok(())
}

/// The process's last steps, in order: cwd, umask, rlimits, oom_score_adj, personality, (the
/// seccomp filter here when no_new_privs is off: it needs CAP_SYS_ADMIN, about to be dropped),
/// bounding set, groups, gid, uid (capabilities kept across it), capability sets, ambient,
/// no_new_privs, seccomp, fds, exec.
fn finish_process(
    p: &ProcessPlan,
    program: &Path,
    personality: Option<u64>,
    installed: FiltersInstalled,
) -> Result<Infallible, String> {
    ctx(nix::unistd::chdir(p.cwd.as_str()), || {
        format!("process.cwd {}", p.cwd)
    })?;
    // Before any seccomp filter: the container's profile may refuse close_range and sigaction.
    ctx(
        watertight_sys::process::cloexec_from(3 + p.preserve_fds as i32),
        || "closing inherited descriptors".into(),
    )?;
    watertight_sys::process::reset_signal_dispositions();
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
    if let Some(mask) = p.umask {
        nix::sys::stat::umask(Mode::from_bits_truncate(mask));
    }
    apply_rlimits(p)?;
    if let Some(adj) = p.oom_score_adj {
        ctx(
            std::fs::write("/proc/self/oom_score_adj", adj.to_string()),
            || "process.oomScoreAdj".into(),
        )?;
    }
    if let Some(domain) = personality {
        let persona = nix::sys::personality::Persona::from_bits_retain(domain as i32);
        ctx(nix::sys::personality::set(persona), || {
            "linux.personality".into()
        })?;
    }
    if !p.no_new_privs {
        install_seccomp(p, installed)?;
    }
    if let Some(c) = &p.caps {
        ctx(
            watertight_sys::process::clear_ambient_and_bounding_except(c.bounding),
            || "process.capabilities.bounding".into(),
        )?;
    }
    let gids: Vec<Gid> = p
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    match nix::unistd::setgroups(&gids) {
        Ok(()) => {}
        // In a user namespace whose setgroups is denied only an empty list was ever possible.
        Err(nix::Error::EPERM) if gids.is_empty() => {}
        Err(e) => return Err(format!("process.user.additionalGids: {e}")),
    }
    let gid = Gid::from_raw(p.gid);
    ctx(nix::unistd::setresgid(gid, gid, gid), || {
        format!("process.user.gid {}", p.gid)
    })?;
    ctx(nix::sys::prctl::set_keepcaps(true), || {
        "PR_SET_KEEPCAPS".into()
    })?;
    let uid = Uid::from_raw(p.uid);
    ctx(nix::unistd::setresuid(uid, uid, uid), || {
        format!("process.user.uid {}", p.uid)
    })?;
    if let Some(c) = &p.caps {
        ctx(
            watertight_sys::process::set_capability_sets(c.effective, c.permitted, c.inheritable),
            || "process.capabilities".into(),
        )?;
        if c.ambient != 0 {
            ctx(watertight_sys::process::raise_ambient(c.ambient), || {
                "process.capabilities.ambient".into()
            })?;
        }
    }
    let _ = nix::sys::prctl::set_keepcaps(false);
    if p.no_new_privs {
        ctx(nix::sys::prctl::set_no_new_privs(), || {
            "process.noNewPrivileges".into()
        })?;
        install_seccomp(p, installed)?;
    }
    let cstr = |s: &str| CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"));
    let path = cstr(&program.to_string_lossy())?;
    let args = p
        .args
        .iter()
        .map(|a| cstr(a))
        .collect::<Result<Vec<_>, _>>()?;
    let env = p
        .env
        .iter()
        .map(|a| cstr(a))
        .collect::<Result<Vec<_>, _>>()?;
    let e = nix::unistd::execve(&path, &args, &env).unwrap_err();
    Err(format!("exec {}: {e}", program.display()))
}

/// Whether `pid` is in a different namespace of `kind` than this process.
pub fn namespace_differs(pid: i32, kind: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ours = std::fs::metadata(format!("/proc/self/ns/{kind}"));
    let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{kind}"));
    match (ours, theirs) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) != (b.dev(), b.ino()),
        _ => false,
    }
}

/// The namespaces of `pid` that this process is not in, in join order.
pub fn namespaces_of(pid: i32) -> Vec<JoinNamespace> {
    crate::plan::JOIN_ORDER
        .iter()
        .filter(|f| namespace_differs(pid, ns_file_name(**f)))
        .map(|f| JoinNamespace {
            flag: *f,
            path: PathBuf::from(format!("/proc/{pid}/ns/{}", ns_file_name(*f))),
        })
        .collect()
}

/// Whether the process `pid` is alive (not a zombie).
pub fn alive(pid: i32) -> bool {
    crate::state::start_time(pid).is_some()
        && nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok()
}
