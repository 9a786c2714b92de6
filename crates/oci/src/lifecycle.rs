//! The commands, runc's model: `create` validates (the plan), then acts (state dir, fifo,
//! cgroup, the container's processes) and undoes everything it made when a later step fails;
//! the others lock the container's directory and act on the recorded state.

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde_json::Value;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cgroup::ContainerCgroup;
use crate::init::{intermediate, Channel, Role};
use crate::plan::{ContainerPlan, CreateOptions, ProcessPlan};
use crate::state::{ContainerDir, Record, Status};
use crate::Error;

fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

fn write_pid_file(path: &Path, pid: i32) -> Result<(), Error> {
    // Written through: the caller may hand a path it watches.
    std::fs::write(path, pid.to_string()).map_err(|e| Error::state(path, e))
}

fn connect_console(path: &Path) -> Result<UnixStream, Error> {
    UnixStream::connect(path).map_err(|e| Error::Console {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// The namespaces the container's process enters: joined by path, created, and the maps of a
/// new user namespace.
struct Entry<'a> {
    join: &'a [crate::plan::JoinNamespace],
    unshare: nix::sched::CloneFlags,
    id_maps: Option<&'a (String, String)>,
}

/// Whose seccomp listener the init handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listener {
    /// The hardening floor's filter: the violation monitor holds it.
    Violations,
    /// The container's own filter: sent on to linux.seccomp.listenerPath.
    Agent,
}

/// runc's seccomp agent protocol: one message on a fresh connection to `agent.path`, the OCI
/// ContainerProcessState JSON (the container's state, `status` "creating" at create as runc
/// sends it; `pid` the process whose filter it is) with the filter's notify fd attached
/// (SCM_RIGHTS), named in `fds` as "seccompFd".
fn send_to_seccomp_agent(
    agent: &crate::plan::SeccompListener,
    record: &Record,
    status: oci_spec::runtime::ContainerState,
    process_pid: i32,
    listener: OwnedFd,
) -> Result<(), Error> {
    use oci_spec::runtime::{ContainerProcessStateBuilder, StateBuilder};
    let fail = |reason: String| Error::SeccompAgent {
        path: agent.path.clone(),
        reason,
    };
    let annotations: std::collections::HashMap<String, String> = record
        .annotations
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect();
    let state = StateBuilder::default()
        .version(crate::OCI_VERSION)
        .id(record.id.clone())
        .status(status)
        .pid(record.pid)
        .bundle(record.bundle.clone())
        .annotations(annotations)
        .build()
        .map_err(|e| fail(format!("building the state: {e}")))?;
    let message = ContainerProcessStateBuilder::default()
        .version(crate::OCI_VERSION)
        .fds(vec![oci_spec::runtime::SECCOMP_FD_NAME.to_owned()])
        .pid(process_pid)
        .metadata(agent.metadata.clone())
        .state(state)
        .build()
        .map_err(|e| fail(format!("building the process state: {e}")))?;
    let json = serde_json::to_vec(&message).map_err(|e| fail(e.to_string()))?;
    let sock = UnixStream::connect(&agent.path).map_err(|e| {
        fail(format!(
            "connecting: {e} (start the seccomp agent that listens there)"
        ))
    })?;
    use std::os::fd::AsFd;
    watertight_sys::fdpass::send_data_with_fd(sock.as_fd(), &json, listener.as_fd())
        .map_err(|e| fail(format!("sending the state and the notify fd: {e}")))
}

/// Forks the intermediate process and drives the conversation until the container process
/// reports "created" (or, for exec, until it executes: EOF). `on_hooks` answers the init's
/// `hooks` request, `on_listener` takes a seccomp listener: the floor filter's violation
/// listener ([`Listener::Violations`]) or the container filter's ([`Listener::Agent`]).
fn spawn(
    entry: Entry<'_>,
    cgroup: &ContainerCgroup,
    role: Role<'_>,
    dir: Option<&mut ContainerDir>,
    mut on_hooks: impl FnMut(i32) -> Result<Value, Error>,
    mut on_listener: impl FnMut(Listener, i32, OwnedFd) -> Result<(), Error>,
) -> Result<i32, Error> {
    let (mut parent, child) = Channel::pair().map_err(|e| Error::process("socketpair", e))?;
    let forked = watertight_sys::process::fork().map_err(|e| Error::process("fork", e))?;
    let intermediate_pid = match forked {
        watertight_sys::process::Forked::Child => {
            drop(parent);
            if let Some(dir) = dir {
                dir.forget_lock_in_child();
            }
            intermediate(child, entry.join, entry.unshare, role)
        }
        watertight_sys::process::Forked::Parent { pid, .. } => pid,
    };
    drop(child);
    drop(role);
    let mut container_pid = None;
    let result = (|| -> Result<i32, Error> {
        cgroup.add(intermediate_pid)?;
        parent
            .send("go")
            .map_err(|e| Error::process("talking to the container", e))?;
        loop {
            let msg = parent
                .recv()
                .map_err(|e| Error::process("talking to the container", e))?;
            let Some(msg) = msg else {
                return container_pid.ok_or_else(|| {
                    Error::Init("the container's process exited during setup".into())
                });
            };
            let (word, rest) = msg.split_once(' ').unwrap_or((msg.as_str(), ""));
            match word {
                "userns" => {
                    let (uid_map, gid_map) = entry
                        .id_maps
                        .ok_or_else(|| Error::Init("unexpected user namespace".into()))?;
                    for (file, text) in [("uid_map", uid_map), ("gid_map", gid_map)] {
                        let path = format!("/proc/{intermediate_pid}/{file}");
                        std::fs::write(&path, text).map_err(|e| {
                            Error::invalid(
                                if file == "uid_map" {
                                    "linux.uidMappings"
                                } else {
                                    "linux.gidMappings"
                                },
                                format!("writing {path}: {e}"),
                            )
                        })?;
                    }
                    parent
                        .send("maps")
                        .map_err(|e| Error::process("talking to the container", e))?;
                }
                "pid" => {
                    let pid: i32 = rest
                        .parse()
                        .map_err(|_| Error::Init(format!("bad pid message {rest:?}")))?;
                    container_pid = Some(pid);
                    let _ = watertight_sys::process::wait4(intermediate_pid, false);
                    parent
                        .send("start")
                        .map_err(|e| Error::process("talking to the container", e))?;
                }
                "hooks" => {
                    let state = on_hooks(container_pid.unwrap_or(0))?;
                    parent
                        .send(&format!("ok {state}"))
                        .map_err(|e| Error::process("talking to the container", e))?;
                }
                "listener" | "seccomp-listener" => {
                    let kind = if word == "listener" {
                        Listener::Violations
                    } else {
                        Listener::Agent
                    };
                    let fd = parent
                        .recv_fd()
                        .map_err(|e| Error::process("receiving a seccomp listener", e))?
                        .ok_or_else(|| {
                            Error::Init(format!("no seccomp listener came with {word:?}"))
                        })?;
                    on_listener(kind, container_pid.unwrap_or(0), fd)?;
                }
                "created" => {
                    return container_pid
                        .ok_or_else(|| Error::Init("created before its pid".into()))
                }
                "error" => return Err(Error::Init(rest.to_owned())),
                other => return Err(Error::Init(format!("unexpected message {other:?}"))),
            }
        }
    })();
    if result.is_err() {
        if let Some(pid) = container_pid {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = nix::sys::signal::kill(Pid::from_raw(intermediate_pid), Signal::SIGKILL);
        let _ = watertight_sys::process::wait4(intermediate_pid, false);
    }
    result
}

/// `create`: validate, then make the state directory, fifo, cgroup and container init; on any
/// failure everything made is removed. Returns the init's pid. `harden` runs between loading
/// config.json and planning (the hardening floor's slot).
pub fn create(root: &Path, opts: &CreateOptions) -> Result<i32, Error> {
    crate::plan::validate_id(&opts.id)?;
    let bundle = std::path::absolute(&opts.bundle).map_err(|e| Error::state(&opts.bundle, e))?;
    // The hardening floor's slot: between loading config.json and planning.
    let (spec, raw, hardening) = crate::plan::load_hardened(&bundle, opts.floor_config.as_deref())?;
    let mut opts = opts.clone();
    // LISTEN_FDS passthrough (socket activation): those fds are preserved and announced.
    let listen_fds: u32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    opts.preserve_fds += listen_fds;
    let mut plan = ContainerPlan::from_spec(&opts, bundle, spec, raw)?;
    plan.process.floor_seccomp = crate::plan::floor_filter(&hardening)?;
    plan.hardening = Some(hardening);
    if listen_fds > 0 {
        plan.process.env.push(format!("LISTEN_FDS={listen_fds}"));
        plan.process.env.push("LISTEN_PID=1".into());
    }
    create_planned(root, &opts, &plan)
}

/// `create` of a validated plan.
pub fn create_planned(
    root: &Path,
    opts: &CreateOptions,
    plan: &ContainerPlan,
) -> Result<i32, Error> {
    let mut dir = ContainerDir::create(root, &plan.id)?;
    let mut cgroup_made: Option<ContainerCgroup> = None;
    let result = (|| -> Result<i32, Error> {
        let fifo_path = dir.fifo();
        nix::unistd::mkfifo(&fifo_path, nix::sys::stat::Mode::from_bits_truncate(0o622))
            .map_err(|e| Error::state(&fifo_path, e.into()))?;
        // mkfifo's mode is cut by the umask; the container's user must be able to write it.
        std::fs::set_permissions(
            &fifo_path,
            std::os::unix::fs::PermissionsExt::from_mode(0o622),
        )
        .map_err(|e| Error::state(&fifo_path, e))?;
        let fifo: OwnedFd = nix::fcntl::open(
            &fifo_path,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::state(&fifo_path, e.into()))?;
        let cgroup = ContainerCgroup::create(&plan.cgroup, None)?;
        cgroup_made = Some(cgroup.clone());
        let console = opts
            .console_socket
            .as_deref()
            .map(connect_console)
            .transpose()?;
        let created = now_rfc3339();
        let hooks = plan.raw.get("hooks").cloned().unwrap_or(Value::Null);
        let annotations = plan.raw.get("annotations").cloned().unwrap_or(Value::Null);
        let make_record = |pid: i32| Record {
            id: plan.id.clone(),
            pid,
            start_time: crate::state::start_time(pid).unwrap_or(0),
            bundle: plan.bundle.clone(),
            rootfs: plan.rootfs.clone(),
            created: created.clone(),
            annotations: annotations.clone(),
            hooks: hooks.clone(),
            cgroup: cgroup.clone(),
            own_pid_namespace: plan.unshare.contains(nix::sched::CloneFlags::CLONE_NEWPID),
            owner: String::new(),
        };
        let state_dir = dir.path.clone();
        let role = Role::Init {
            plan,
            fifo,
            console,
            cgroup: &cgroup,
        };
        let pid = spawn(
            Entry {
                join: &plan.join,
                unshare: plan.unshare,
                id_maps: plan.id_maps.as_ref(),
            },
            &cgroup,
            role,
            Some(&mut dir),
            |pid| {
                let record = make_record(pid);
                // The spec's hooks see the container as created (its namespaces exist).
                let state = record.oci_state(Status::Created);
                crate::hooks::run("prestart", &hooks, &state)?;
                crate::hooks::run("createRuntime", &hooks, &state)?;
                Ok(record.oci_state(Status::Created))
            },
            |kind, pid, listener| {
                if kind == Listener::Agent {
                    let agent = plan.process.seccomp_listener.as_ref().ok_or_else(|| {
                        Error::Init("a seccomp listener without linux.seccomp.listenerPath".into())
                    })?;
                    return send_to_seccomp_agent(
                        agent,
                        &make_record(pid),
                        oci_spec::runtime::ContainerState::Creating,
                        pid,
                        listener,
                    );
                }
                let hardening = plan.hardening.as_ref();
                let monitor = crate::monitor::Monitor {
                    id: plan.id.clone(),
                    init_pid: pid,
                    log: state_dir.join("violations.jsonl"),
                    cgroup: cgroup.clone(),
                    kill: hardening
                        .is_some_and(|h| h.on_violation != watertight_floor::OnViolation::Deny),
                    evidence: hardening
                        .filter(|h| h.on_violation == watertight_floor::OnViolation::Forensic)
                        .map(|h| h.evidence.clone()),
                    trail: hardening.and_then(|h| h.audit_trail.clone()),
                };
                crate::monitor::spawn(monitor, listener)
                    .map_err(|e| Error::process("starting the violation monitor", e))
            },
        )?;
        let record = make_record(pid);
        dir.write(&record)?;
        // The published entry `watertight audit host` compares with what /proc shows.
        if let Some(h) = &plan.hardening {
            let entry = h.running_container(
                &plan.id,
                pid as u32,
                &plan.bundle,
                &plan.spec,
                Some(watertight_floor::plan_digest(&plan.spec)),
            )?;
            watertight_floor::publish(&entry)?;
        }
        if let Some(path) = &opts.pid_file {
            write_pid_file(path, pid)?;
        }
        Ok(pid)
    })();
    if result.is_err() {
        let _ = watertight_floor::unpublish(&plan.id);
        if let Some(cg) = &cgroup_made {
            let _ = cg.signal_all(Signal::SIGKILL);
            cg.remove();
        }
        let _ = dir.remove();
    }
    result
}

/// The container's record and status, under its lock.
pub fn load(root: &Path, id: &str) -> Result<(ContainerDir, Record, Status), Error> {
    let dir = ContainerDir::open(root, id)?;
    let record = dir.read()?;
    let status = record.status(&dir.path);
    Ok((dir, record, status))
}

fn wrong(id: &str, status: Status, what: &str) -> Error {
    Error::WrongStatus {
        id: id.to_owned(),
        status: status.to_string(),
        what: what.to_owned(),
    }
}

/// `start`: opens the exec fifo for reading (init then runs the process), runs poststart.
pub fn start(root: &Path, id: &str) -> Result<(), Error> {
    let (dir, record, status) = load(root, id)?;
    if status != Status::Created {
        return Err(wrong(id, status, "only a created container can be started"));
    }
    let fifo_path = dir.fifo();
    let mut fifo = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo_path)
        .map_err(|e| Error::state(&fifo_path, e))?;
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut byte = [0u8; 1];
    loop {
        match fifo.read(&mut byte) {
            Ok(1) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(Error::state(&fifo_path, e)),
        }
        if !crate::init::alive(record.pid) {
            return Err(Error::Init(format!(
                "container {id:?}: its init exited before start"
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = std::fs::remove_file(&fifo_path);
    let state = record.oci_state(Status::Running);
    if let Err(e) = crate::hooks::run("poststart", &record.hooks, &state) {
        // The spec: a failed poststart hook is logged and the lifecycle continues... runc
        // fails the start and kills the container; so does this runtime.
        let _ = record.cgroup.signal_all(Signal::SIGKILL);
        return Err(e);
    }
    drop(dir);
    Ok(())
}

/// `state`: the OCI state document.
pub fn state(root: &Path, id: &str) -> Result<Value, Error> {
    let (_dir, record, status) = load(root, id)?;
    Ok(record.oci_state(status))
}

/// `kill`: `signal` to the init, or with `all` to every process of the cgroup.
pub fn kill(root: &Path, id: &str, signal: Signal, all: bool) -> Result<(), Error> {
    let (_dir, record, status) = load(root, id)?;
    if all {
        if status == Status::Paused {
            record.cgroup.signal_all(signal)?;
            // Signals reach frozen tasks only after they thaw (v1).
            if signal == Signal::SIGKILL {
                let _ = record.cgroup.freeze(false);
            }
            return Ok(());
        }
        return record.cgroup.signal_all(signal);
    }
    if status == Status::Stopped {
        return Err(wrong(id, status, "there is no process to signal"));
    }
    nix::sys::signal::kill(Pid::from_raw(record.pid), signal)
        .map_err(|e| Error::process("kill", e))?;
    Ok(())
}

fn wait_gone(pid: i32) {
    for _ in 0..10_000 {
        if !crate::init::alive(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `delete`: a created or stopped container (any, with `force`: killed first) loses its
/// processes, cgroup and state; poststop hooks run.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<(), Error> {
    let (dir, record, status) = match load(root, id) {
        Err(Error::NotFound(_)) if force => return Ok(()),
        r => r?,
    };
    match status {
        Status::Created | Status::Running | Status::Paused if !force => {
            return Err(wrong(id, status, "stop it first or use delete --force"))
        }
        _ => {}
    }
    if status != Status::Stopped {
        let _ = record.cgroup.signal_all(Signal::SIGKILL);
        let _ = nix::sys::signal::kill(Pid::from_raw(record.pid), Signal::SIGKILL);
        if status == Status::Paused {
            let _ = record.cgroup.freeze(false);
        }
        wait_gone(record.pid);
    }
    // Whatever the init left (without a pid namespace its children outlive it).
    if let Ok(pids) = record.cgroup.pids() {
        if !pids.is_empty() {
            let _ = record.cgroup.signal_all(Signal::SIGKILL);
            for p in pids {
                wait_gone(p);
            }
        }
    }
    record.cgroup.remove();
    let _ = watertight_floor::unpublish(id);
    let state = record.oci_state(Status::Stopped);
    let hooks = record.hooks.clone();
    dir.remove()?;
    // poststop failures are warnings: the container is gone either way.
    if let Err(e) = crate::hooks::run("poststop", &hooks, &state) {
        eprintln!("watertight-runc: warning: {e}");
    }
    Ok(())
}

/// `pause` / `resume`.
pub fn pause(root: &Path, id: &str, frozen: bool) -> Result<(), Error> {
    let (_dir, record, status) = load(root, id)?;
    match (frozen, status) {
        (true, Status::Running) | (false, Status::Paused) => record.cgroup.freeze(frozen),
        (true, s) => Err(wrong(id, s, "only a running container can be paused")),
        (false, s) => Err(wrong(id, s, "only a paused container can be resumed")),
    }
}

/// `ps`: the pids of the container's cgroup.
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>, Error> {
    let (_dir, record, _) = load(root, id)?;
    record.cgroup.pids()
}

/// `update`: new resources written to the cgroup.
pub fn update(root: &Path, id: &str, resources: &Value) -> Result<(), Error> {
    let (_dir, record, status) = load(root, id)?;
    if status == Status::Stopped {
        return Err(wrong(id, status, "a stopped container cannot be updated"));
    }
    let settings = crate::cgroup::settings_of(resources)?;
    record.cgroup.apply(&settings)
}

/// `events --stats`: one stats event.
pub fn stats(root: &Path, id: &str) -> Result<Value, Error> {
    let (_dir, record, status) = load(root, id)?;
    if status == Status::Stopped {
        return Err(wrong(id, status, "no stats for a stopped container"));
    }
    Ok(serde_json::json!({"type": "stats", "id": id, "data": record.cgroup.stats()}))
}

/// What `exec` runs.
#[derive(Debug)]
pub struct ExecOptions {
    /// The process (already merged from --process or the flags over config.json's).
    pub process: ProcessPlan,
    /// The console socket for a tty.
    pub console_socket: Option<PathBuf>,
    /// Write the process's pid here.
    pub pid_file: Option<PathBuf>,
    /// Return once it runs instead of waiting for it.
    pub detach: bool,
}

/// `exec`: a new process in a created or running container; returns its exit code (0 with
/// `detach`).
pub fn exec(root: &Path, id: &str, opts: ExecOptions) -> Result<i32, Error> {
    let (dir, record, status) = load(root, id)?;
    if !matches!(status, Status::Running | Status::Created) {
        return Err(wrong(id, status, "exec needs a running container"));
    }
    // The exec'd process is reparented to this one when the intermediate exits.
    if !opts.detach {
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| Error::process("PR_SET_CHILD_SUBREAPER", e))?;
    }
    let join = crate::init::namespaces_of(record.pid);
    let console = opts
        .console_socket
        .as_deref()
        .map(connect_console)
        .transpose()?;
    drop(dir);
    let role = Role::Exec {
        process: &opts.process,
        console,
    };
    let pid = spawn(
        Entry {
            join: &join,
            unshare: nix::sched::CloneFlags::empty(),
            id_maps: None,
        },
        &record.cgroup,
        role,
        None,
        |_| Ok(Value::Null),
        // The exec'd process installs the filters itself; only the container's own filter
        // hands over a listener (linux.seccomp.listenerPath): it goes to the agent, as runc's
        // exec sends it, with the container's state as it is now.
        |kind, pid, listener| match (kind, &opts.process.seccomp_listener) {
            (Listener::Agent, Some(agent)) => {
                // exec runs only in a created or running container (checked above).
                let now = if status == Status::Created {
                    oci_spec::runtime::ContainerState::Created
                } else {
                    oci_spec::runtime::ContainerState::Running
                };
                send_to_seccomp_agent(agent, &record, now, pid, listener)
            }
            _ => Ok(()),
        },
    )?;
    if let Some(path) = &opts.pid_file {
        write_pid_file(path, pid)?;
    }
    if opts.detach {
        return Ok(0);
    }
    wait_exit(pid)
}

/// Waits for `pid` (a child or reparented descendant) and maps its end to an exit code.
pub fn wait_exit(pid: i32) -> Result<i32, Error> {
    loop {
        match watertight_sys::process::wait4(pid, false) {
            Ok(Some(r)) => {
                return Ok(r
                    .exit_code()
                    .unwrap_or_else(|| 128 + r.signal().unwrap_or(0)));
            }
            Ok(None) => continue,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => return Err(Error::process("waiting for the process", e)),
        }
    }
}

/// `run`: create, start, wait, delete (unless `detach`). Returns the exit code.
pub fn run(root: &Path, opts: &CreateOptions, detach: bool) -> Result<i32, Error> {
    if !detach {
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| Error::process("PR_SET_CHILD_SUBREAPER", e))?;
    }
    let pid = create(root, opts)?;
    if let Err(e) = start(root, &opts.id) {
        let _ = delete(root, &opts.id, true);
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    let code = wait_exit(pid)?;
    delete(root, &opts.id, true)?;
    Ok(code)
}
