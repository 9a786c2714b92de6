//! Job N leaves everything it can; job N+1 sees none of it (issue #15 item 3).
//!
//! `leave` (job N) makes files in /tmp, in its box and in /dev/shm, System V shared memory, a
//! semaphore set and a message queue (with a message), a POSIX message queue, a daemon (setsid
//! and a double fork) that keeps an abstract unix socket bound, a hostname, and tries a keyring
//! key (session and user keyring), a cgroup limit (pids.max through /sys/fs/cgroup and a cgroup
//! file system mounted by itself). Each attempt prints `LEFT what` or `REFUSED what error`.
//! `seek` (job N+1) looks for each of those and prints `SEEN what` or `clean what`; it exits 1
//! when it saw anything. Both run as the same slot (the same host uid): `--parallel 1` in a
//! batch, and two consecutive `watertight run`s, the worst case for state kept per uid.
//! The host is checked too: no process of the daemon's name alive, no work directory left.

mod common;
use common::*;
use watertight_testkit::{compile_c, this_test};

use std::path::{Path, PathBuf};

const COMMON: &str = r#"
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <mqueue.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#define IPC_KEY 0x57544c46
#define NAME "wt-leftover"
#define DAEMON "wtleftd"
static socklen_t abstract(struct sockaddr_un *u) {
    memset(u, 0, sizeof *u);
    u->sun_family = AF_UNIX;
    memcpy(u->sun_path + 1, NAME, strlen(NAME));
    return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(NAME);
}
"#;

const LEAVE: &str = r#"
static void left(const char *what, int ok) {
    if (ok) printf("LEFT %s\n", what);
    else printf("REFUSED %s %s\n", what, strerror(errno));
    fflush(stdout);
}
static int write_file(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) return 0;
    int ok = write(fd, "job N was here\n", 15) == 15;
    close(fd);
    return ok;
}
int main(void) {
    left("tmp", write_file("/tmp/" NAME));
    left("box", write_file(NAME));
    left("dev_shm", write_file("/dev/shm/" NAME "-file"));
    int shm = shmget(IPC_KEY, 4096, IPC_CREAT | 0666);
    left("sysv_shm", shm >= 0);
    left("sysv_sem", semget(IPC_KEY, 1, IPC_CREAT | 0666) >= 0);
    int q = msgget(IPC_KEY, IPC_CREAT | 0666);
    struct { long type; char text[8]; } m = { 1, "secret" };
    left("sysv_msg", q >= 0 && msgsnd(q, &m, sizeof m.text, 0) == 0);
    int ps = shm_open("/" NAME, O_CREAT | O_RDWR, 0666);
    left("posix_shm", ps >= 0 && ftruncate(ps, 4096) == 0);
    struct mq_attr qa = { .mq_maxmsg = 4, .mq_msgsize = 16 };
    mqd_t mq = mq_open("/" NAME, O_CREAT | O_RDWR, 0666, &qa);
    left("posix_mq", mq != (mqd_t)-1 && mq_send(mq, "secret", 6, 0) == 0);
    left("hostname", sethostname(NAME, strlen(NAME)) == 0);

    /* A daemon: setsid, double fork, all signals it can ignore ignored, an abstract socket
       bound and listening; it reports on the pipe once the socket is bound. */
    int p[2];
    if (pipe(p) != 0) return 2;
    pid_t a = fork();
    if (a == 0) {
        setsid();
        if (fork() != 0) _exit(0);
        prctl(PR_SET_NAME, DAEMON);
        for (int s = 1; s < 32; s++) signal(s, SIG_IGN);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0); dup2(null, 1); dup2(null, 2);
        struct sockaddr_un u;
        socklen_t len = abstract(&u);
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        char ok = (s >= 0 && bind(s, (struct sockaddr *)&u, len) == 0 && listen(s, 8) == 0) ? 'y' : 'n';
        (void)!write(p[1], &ok, 1);
        for (;;) pause();
    }
    close(p[1]);
    waitpid(a, NULL, 0);
    char ok = 0;
    int got = read(p[0], &ok, 1);
    left("daemon", got == 1);
    left("abstract_socket", got == 1 && ok == 'y');

    long k = syscall(SYS_add_key, "user", NAME, "secret", 6, KEY_SPEC_SESSION_KEYRING);
    left("key_session", k >= 0);
    k = syscall(SYS_add_key, "user", NAME, "secret", 6, KEY_SPEC_USER_KEYRING);
    left("key_user", k >= 0);

    /* A cgroup limit: the host's cgroup files, then a cgroup file system of its own. */
    left("cgroup_file", write_file("/sys/fs/cgroup/pids.max") || write_file("/sys/fs/cgroup/pids/pids.max"));
    mkdir("/tmp/cg", 0755);
    int mounted = mount("cgroup2", "/tmp/cg", "cgroup2", 0, NULL) == 0
        || mount("cgroup", "/tmp/cg", "cgroup", 0, "pids") == 0;
    left("cgroup_mount", mounted);
    if (mounted) {
        int fd = open("/tmp/cg/pids.max", O_WRONLY);
        left("cgroup_pids_max", fd >= 0 && write(fd, "7", 1) == 1);
    }
    return 0;
}
"#;

const SEEK: &str = r#"
static int dirty = 0;
static void seen(const char *what, int found) {
    if (found) { printf("SEEN %s\n", what); dirty = 1; }
    else printf("clean %s\n", what);
}
int main(int argc, char **argv) {
    seen("tmp", access("/tmp/" NAME, F_OK) == 0);
    seen("box", access(NAME, F_OK) == 0);
    DIR *d = opendir("/dev/shm");
    int entries = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) if (e->d_name[0] != '.') entries++;
    if (d) closedir(d);
    seen("dev_shm", entries != 0);
    seen("sysv_shm", shmget(IPC_KEY, 0, 0) >= 0);
    seen("sysv_sem", semget(IPC_KEY, 0, 0) >= 0);
    seen("sysv_msg", msgget(IPC_KEY, 0) >= 0);
    FILE *f = fopen("/proc/sysvipc/shm", "r");
    char line[512];
    int rows = 0;
    while (f && fgets(line, sizeof line, f)) rows++;
    if (f) fclose(f);
    seen("sysv_any_shm", rows > 1);
    seen("posix_shm", shm_open("/" NAME, O_RDONLY, 0) >= 0);
    seen("posix_mq", mq_open("/" NAME, O_RDONLY) != (mqd_t)-1);
    char host[64] = {0};
    gethostname(host, sizeof host - 1);
    seen("hostname", strcmp(host, NAME) == 0);

    struct sockaddr_un u;
    socklen_t len = abstract(&u);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    seen("abstract_socket", s >= 0 && connect(s, (struct sockaddr *)&u, len) == 0);

    /* Every process this sandbox can see: itself and its pid 1, nothing of job N's. */
    int others = 0;
    d = opendir("/proc");
    while (d && (e = readdir(d))) {
        int pid = atoi(e->d_name);
        if (pid <= 1 || pid == getpid()) continue;
        char path[64], comm[64] = {0};
        snprintf(path, sizeof path, "/proc/%d/comm", pid);
        FILE *c = fopen(path, "r");
        if (c) { (void)!fgets(comm, sizeof comm, c); fclose(c); }
        printf("process %d %s", pid, comm);
        others++;
    }
    if (d) closedir(d);
    seen("processes", others != 0);

    long k = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, "user", NAME, 0);
    if (k < 0) printf("keyring search: %s\n", strerror(errno));
    seen("key_session", k >= 0);
    k = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", NAME, 0);
    seen("key_user", k >= 0);

    /* pids.max = 7 left anywhere would stop the 16th task: make 16 and hold them. */
    pid_t kids[16];
    int made = 0;
    for (int i = 0; i < 16; i++) {
        kids[i] = fork();
        if (kids[i] == 0) { pause(); _exit(0); }
        if (kids[i] > 0) made++;
    }
    for (int i = 0; i < 16; i++) if (kids[i] > 0) { kill(kids[i], SIGKILL); waitpid(kids[i], NULL, 0); }
    seen("cgroup_pids_limit", made != 16);

    for (int i = 1; i < argc; i++) {
        char what[600];
        snprintf(what, sizeof what, "host_path %s", argv[i]);
        seen(what, access(argv[i], F_OK) == 0);
    }
    return dirty;
}
"#;

/// `leave`'s whole output: what job N left (each must really be left, else the test would prove
/// nothing about it), and what was refused with which error. The keyring calls are refused by
/// the seccomp filter (add_key and keyctl are in its violation class): EPERM, never a key the
/// next job could find. A cgroup limit cannot be set: the sandbox has no cgroup file system and
/// mount is refused. The hostname is its UTS namespace's, and refused anyway.
const LEFT: &str = "LEFT tmp
LEFT box
LEFT dev_shm
LEFT sysv_shm
LEFT sysv_sem
LEFT sysv_msg
LEFT posix_shm
LEFT posix_mq
REFUSED hostname Operation not permitted
LEFT daemon
LEFT abstract_socket
REFUSED key_session Operation not permitted
REFUSED key_user Operation not permitted
REFUSED cgroup_file No such file or directory
REFUSED cgroup_mount Operation not permitted
";

/// `seek`'s whole output when it finds nothing, given the host path of job N's box file.
fn clean(left_in_box: &Path) -> String {
    format!(
        "clean tmp
clean box
clean dev_shm
clean sysv_shm
clean sysv_sem
clean sysv_msg
clean sysv_any_shm
clean posix_shm
clean posix_mq
clean hostname
clean abstract_socket
clean processes
keyring search: Operation not permitted
clean key_session
clean key_user
clean cgroup_pids_limit
clean host_path {}
",
        left_in_box.display()
    )
}

/// Builds `leave` and `seek` into `dir`.
fn build(dir: &Path) -> (PathBuf, PathBuf) {
    let bin = |name: &str, body: &str| {
        let src = dir.join(format!("{name}.c"));
        std::fs::write(&src, format!("{COMMON}{body}")).unwrap();
        compile_c(&src, &dir.join(name), &[]);
        dir.join(name)
    };
    (bin("leave", LEAVE), bin("seek", SEEK))
}

/// Host processes named like the daemon (`comm`): none may outlive its sandbox.
fn daemons_alive() -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|p| {
            std::fs::read_to_string(p.path().join("comm")).is_ok_and(|c| c.trim() == "wtleftd")
        })
        .map(|p| p.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The host's System V objects with job N's key (0x57544c46 = 1465142342), in the host's
/// IPC namespace.
fn host_ipc() -> Vec<String> {
    ["shm", "sem", "msg"]
        .iter()
        .flat_map(|kind| {
            std::fs::read_to_string(format!("/proc/sysvipc/{kind}"))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.split_whitespace().next() == Some("1465142342"))
                .map(|l| format!("{kind}: {l}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The host's abstract unix sockets named like the daemon's.
fn host_sockets() -> usize {
    std::fs::read_to_string("/proc/net/unix")
        .unwrap()
        .lines()
        .filter(|l| l.ends_with("@wt-leftover"))
        .count()
}

#[test]
fn a_job_sees_nothing_the_previous_job_of_the_batch_left() {
    if !require_root(&this_test()) || !require_tools(&this_test(), &["cc"], "gcc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (leave, seek) = build(dir.path());
    let jobs = dir.path().join("jobs.jsonl");
    let results = dir.path().join("results.jsonl");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    // job N's box, at the host path it had (job-0/box in the work directory), probed by job N+1.
    let n_box = work.join(".results.jsonl.work/job-0/box/wt-leftover");
    std::fs::write(dir.path().join("n.expected"), LEFT).unwrap();
    std::fs::write(dir.path().join("n-plus-1.expected"), clean(&n_box)).unwrap();
    let mut lines = String::new();
    for (id, bin, args) in [
        ("n", &leave, vec![]),
        ("n-plus-1", &seek, vec![n_box.display().to_string()]),
    ] {
        let mut argv = vec!["./prog".to_string()];
        argv.extend(args);
        lines.push_str(&format!(
            "{}\n",
            serde_json::json!({"id": id, "files": {"prog": bin},
                               "steps": [{"name": "run", "argv": argv,
                                          "expected": format!("{id}.expected")}]})
        ));
    }
    std::fs::write(&jobs, lines).unwrap();
    let o = watertight()
        .args(["batch", "--parallel", "1", "--work"])
        .arg(&work)
        .arg("--results")
        .arg(&results)
        .arg(&jobs)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(&results).unwrap();
    let v: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v.len(), 2, "{text}");
    assert_eq!(v[0]["id"], "n", "{text}");
    // AC: each printed exactly what is expected (the judge ignores only trailing blanks).
    assert_eq!(
        v[0]["verdict"], "AC",
        "job N did not leave all it should: {text}"
    );
    assert_eq!(v[1]["verdict"], "AC", "job N+1 saw something: {text}");
    assert_eq!(
        daemons_alive(),
        Vec::<String>::new(),
        "job N's daemon lives on"
    );
    assert_eq!(host_sockets(), 0, "job N's socket is bound on the host");
    assert_eq!(
        host_ipc(),
        Vec::<String>::new(),
        "job N's IPC objects on the host"
    );
    assert_eq!(
        std::fs::read_dir(&work).unwrap().count(),
        0,
        "the work directory is left"
    );
}

#[test]
fn a_run_sees_nothing_the_previous_run_left() {
    if !require_root(&this_test()) || !require_tools(&this_test(), &["cc"], "gcc") {
        return;
    }
    let dir = world_readable_tempdir();
    let (leave, seek) = build(dir.path());
    let boxes = dir.path().join("boxes");
    std::fs::create_dir(&boxes).unwrap();
    std::fs::set_permissions(&boxes, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let run = |bin: &Path, box_name: &str, args: &[String]| {
        let o = watertight()
            .arg("run")
            .arg(format!("--bind-ro={}:/probe", dir.path().display()))
            .arg(format!("--box={}", boxes.join(box_name).display()))
            .arg("--")
            .arg(format!(
                "/probe/{}",
                bin.file_name().unwrap().to_string_lossy()
            ))
            .args(args)
            .output()
            .unwrap();
        (o.status.code(), stdout(&o), stderr(&o))
    };
    let (code, out, err) = run(&leave, "n", &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(out, LEFT);
    let left_box = boxes.join("n/wt-leftover");
    assert!(left_box.exists(), "the box keeps what the run made");
    let (code, out, err) = run(&seek, "n-plus-1", &[left_box.display().to_string()]);
    assert_eq!(out, clean(&left_box), "{err}");
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(
        daemons_alive(),
        Vec::<String>::new(),
        "run N's daemon lives on"
    );
    assert_eq!(host_sockets(), 0, "run N's socket is bound on the host");
    assert_eq!(
        host_ipc(),
        Vec::<String>::new(),
        "run N's IPC objects on the host"
    );
}
