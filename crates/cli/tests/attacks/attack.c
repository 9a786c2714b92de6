/* Attacks a sandboxed program might try. Usage: attack NAME [ARG]. Prints one line and exits 0
 * when the attack was stopped ("DENIED ..."), 1 when it succeeded ("ALLOWED ..."), 2 on misuse.
 * Built by the integration tests with the system C compiler and run inside `watertight run`. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>
#include <dirent.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <time.h>
#include <mqueue.h>
#include <sys/inotify.h>

static int denied(const char *what, int err);
static int allowed(const char *what);

/* --- The seccomp user-notification race (issue: a stacked listener answering CONTINUE). --- */
static volatile int race_stop;
static pid_t race_tid;
static void race_handler(int s) { (void)s; }
static void *race_interrupter(void *a) {
    (void)a;
    while (!race_stop) { syscall(SYS_tgkill, getpid(), race_tid, SIGUSR1); sched_yield(); }
    return NULL;
}
static double now_s(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}
/* Stacks a filter of our own that sends unshare to a listener we hold, then lets a child call
 * unshare(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWNET) and answers CONTINUE. 1: the child got the new
 * namespaces (escape); otherwise -errno of the seccomp() call or 0. */
static int stacked_listener_escape(void) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_unshare, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = 4, .filter = f };
    long l = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    if (l < 0) return -errno;
    pid_t c = fork();
    if (c == 0) _exit(unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET) == 0 ? 0 : 3);
    struct seccomp_notif req;
    memset(&req, 0, sizeof req);
    if (ioctl((int)l, SECCOMP_IOCTL_NOTIF_RECV, &req) == 0) {
        struct seccomp_notif_resp resp = { .id = req.id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE };
        ioctl((int)l, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
    int st = 0;
    waitpid(c, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}
/* For ARG seconds: call unshare (a violation) while another thread interrupts it with signals,
 * so that notifications vanish between the supervisor's poll and its receive. When the calls
 * start failing with ENOSYS (no listener left), stack a listener of our own. */
static int notify_race(const char *arg) {
    double secs = *arg ? atof(arg) : 3.0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = race_handler; /* no SA_RESTART: an interrupted call returns EINTR */
    sigaction(SIGUSR1, &sa, NULL);
    race_tid = (pid_t)syscall(SYS_gettid);
    pthread_t t;
    pthread_create(&t, NULL, race_interrupter, NULL);
    long tries = 0, eperm = 0, eintr = 0, enosys = 0, other = 0;
    double end = now_s() + secs;
    while (now_s() < end) {
        tries++;
        if (unshare(CLONE_NEWUSER) == 0) { race_stop = 1; return allowed("unshare during the race"); }
        if (errno == EPERM) eperm++;
        else if (errno == EINTR) {
            /* Let the supervisor find nothing pending right after its receive failed. */
            eintr++;
            double until = now_s() + 200e-6;
            while (now_s() < until) {}
        }
        else if (errno == ENOSYS) { enosys++; break; }
        else other++;
    }
    race_stop = 1;
    pthread_join(t, NULL);
    int esc = stacked_listener_escape();
    if (esc == 1) {
        printf("ALLOWED stacked listener answered CONTINUE (unshare user+mount+net) after %ld tries, %ld ENOSYS\n", tries, enosys);
        return 1;
    }
    printf("DENIED notify_race: %ld tries, %ld EPERM, %ld EINTR, %ld ENOSYS, %ld other; stacking a listener: %s\n",
           tries, eperm, eintr, enosys, other, esc < 0 ? strerror(-esc) : "no escape");
    return 0;
}

static int denied(const char *what, int err) {
    printf("DENIED %s: %s\n", what, strerror(err));
    return 0;
}
static int allowed(const char *what) {
    printf("ALLOWED %s\n", what);
    return 1;
}
/* A raw syscall result: -1 with errno means denied. */
static int check(const char *what, long r) {
    if (r < 0) return denied(what, errno);
    return allowed(what);
}

#ifndef N_NULL
#define N_NULL 27
#endif
/* For ARG seconds (default 3): four threads call mount() (a violation) in a loop, as fast as
 * the supervisor answers, with long strings (200 bytes each: the supervisor reads them into its
 * events). Prints how many calls failed with EPERM, to compare with the supervisor's count. */
static double flood_end;
static char flood_src[201], flood_dst[201], flood_fstype[201];
struct flood_count { long calls, eperm, other; };
static void *flood_thread(void *a) {
    struct flood_count *c = a;
    while (now_s() < flood_end) {
        c->calls++;
        if (mount(flood_src, flood_dst, flood_fstype, 0, NULL) == 0) {
            allowed("mount during the flood");
            fflush(stdout);
            _exit(1);
        }
        if (errno == EPERM) c->eperm++;
        else c->other++;
    }
    return NULL;
}
static int flood(const char *arg) {
    double secs = *arg ? atof(arg) : 3.0;
    memset(flood_src, 's', 200); memset(flood_dst, 'd', 200); memset(flood_fstype, 't', 200);
    flood_dst[0] = '/';
    flood_end = now_s() + secs;
    enum { THREADS = 4 };
    pthread_t t[THREADS];
    struct flood_count c[THREADS];
    memset(c, 0, sizeof c);
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, flood_thread, &c[i]);
    long calls = 0, eperm = 0, other = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        calls += c[i].calls; eperm += c[i].eperm; other += c[i].other;
    }
    printf("DENIED flood: %ld calls, %ld EPERM, %ld other\n", calls, eperm, other);
    return 0;
}

static int attack(const char *name, const char *arg) {
    if (!strcmp(name, "flood")) return flood(arg);
    if (!strcmp(name, "notify_race")) return notify_race(arg);
    if (!strcmp(name, "pipefill")) { /* fill pipe buffers (kernel memory charged to the cgroup) until refused */
        long pipes = 0;
        static char chunk[65536];
        for (;;) {
            int p[2];
            if (pipe2(p, O_NONBLOCK) != 0) break;
            fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
            while (write(p[1], chunk, sizeof chunk) > 0) {}
            pipes++;
        }
        printf("DENIED pipefill: stopped after %ld pipes: %s\n", pipes, strerror(errno));
        return 0;
    }
    if (!strcmp(name, "raise")) { /* die of signal ARG sent to itself */
        fflush(stdout);
        signal(atoi(arg), SIG_DFL);
        raise(atoi(arg));
        return 2;
    }
    if (!strcmp(name, "exit")) { fflush(stdout); _exit(atoi(arg)); }
    if (!strcmp(name, "ptys")) { /* open pseudo-terminals until refused; ARG: more than this is an attack */
        long n = 0;
        while (open("/dev/ptmx", O_RDWR | O_NOCTTY) >= 0) n++;
        int err = errno;
        if (n > atol(arg)) { printf("ALLOWED ptys: %ld opened\n", n); return 1; }
        printf("DENIED ptys: %ld opened, then %s\n", n, strerror(err));
        return 0;
    }
    if (!strcmp(name, "unix")) { /* connect to the pathname unix socket ARG, after ARG2 ms */
        const char *delay = strchr(arg, ',');
        char path[108] = {0};
        strncpy(path, arg, delay ? (size_t)(delay - arg) : sizeof path - 1);
        if (delay) usleep(atoi(delay + 1) * 1000);
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        strncpy(a.sun_path, path, sizeof a.sun_path - 1);
        return check(name, connect(s, (struct sockaddr *)&a, sizeof a));
    }
    if (!strcmp(name, "hold") || !strcmp(name, "grab")) {
        /* hold: take every unit of per-user kernel resource ARG (inotify, mqueue, sigpending),
         * say HOLDING N, keep them 5 s. grab: take one, DENIED/ALLOWED. */
        int hold = !strcmp(name, "hold");
        long n = 0;
        int err = 0;
        if (!strcmp(arg, "sigpending")) {
            sigset_t set; sigemptyset(&set); sigaddset(&set, SIGRTMIN);
            sigprocmask(SIG_BLOCK, &set, NULL);
        }
        for (;;) {
            int r;
            if (!strcmp(arg, "inotify")) r = inotify_init1(IN_CLOEXEC);
            else if (!strcmp(arg, "mqueue")) {
                char qn[64]; snprintf(qn, sizeof qn, "/wt-%d-%ld", getpid(), n);
                struct mq_attr a = {.mq_maxmsg = 10, .mq_msgsize = 8192};
                r = mq_open(qn, O_CREAT | O_RDWR, 0600, &a);
                if (r >= 0) mq_unlink(qn); /* charged while open; gone with the process */
            } else if (!strcmp(arg, "sigpending")) {
                union sigval v = {0};
                r = sigqueue(getpid(), SIGRTMIN, v);
            } else return 2;
            if (r < 0) { err = errno; break; }
            n++;
            if (!hold) break;
        }
        if (!hold) return n ? allowed(arg) : denied(arg, err);
        printf("HOLDING %ld %s (then %s)\n", n, arg, strerror(err));
        fflush(stdout);
        sleep(5);
        return 0;
    }
    if (!strcmp(name, "io_setup")) { /* an AIO context: counts against the host-wide fs.aio-max-nr */
        unsigned long ctx = 0;
        return check(name, syscall(SYS_io_setup, 1, &ctx));
    }
    if (!strcmp(name, "stack_listener")) { /* stack a listener without any race */
        int esc = stacked_listener_escape();
        return esc == 1 ? allowed("stacked listener answered CONTINUE") : denied("stacking a listener", esc < 0 ? -esc : EPERM);
    }
    if (!strcmp(name, "tty")) { /* do to the terminal on stdin what wrecks an operator's */
        struct winsize ws = {0};
        ioctl(0, TIOCGWINSZ, &ws);
        printf("size=%dx%d\n", ws.ws_row, ws.ws_col);
        /* OSC 52 (clipboard write), OSC 0 (title), and a colour. */
        printf("\033]52;c;T1dORUQ=\007\033]0;owned-title\007\033[31mcolour\033[0m\n");
        fflush(stdout);
        struct termios t;
        if (tcgetattr(0, &t)) return denied("tcgetattr", errno);
        cfmakeraw(&t);
        if (tcsetattr(0, TCSANOW, &t)) return denied("tcsetattr raw", errno);
        struct winsize tiny = {.ws_row = 1, .ws_col = 1};
        if (ioctl(0, TIOCSWINSZ, &tiny)) return denied("TIOCSWINSZ", errno);
        printf("tty-attack-ran\n");
        fflush(stdout);
        int ldisc = N_NULL; /* after this nothing written to the terminal is shown */
        if (ioctl(0, TIOCSETD, &ldisc)) return denied("TIOCSETD N_NULL", errno);
        return 1; /* no line: it would go nowhere */
    }
    if (!strcmp(name, "mount")) return check(name, mount("none", "/tmp", "tmpfs", 0, NULL));
    if (!strcmp(name, "umount")) return check(name, umount2("/proc", MNT_DETACH));
    if (!strcmp(name, "pivot_root")) return check(name, syscall(SYS_pivot_root, "/tmp", "/tmp"));
    if (!strcmp(name, "chroot")) return check(name, chroot("/tmp"));
    if (!strcmp(name, "unshare")) return check(name, unshare(CLONE_NEWUSER | CLONE_NEWNET));
    if (!strcmp(name, "unshare_mount")) return check(name, unshare(CLONE_NEWNS));
    if (!strcmp(name, "setns")) {
        int fd = open("/proc/self/ns/net", O_RDONLY);
        if (fd < 0) return denied("setns (open ns)", errno);
        return check(name, setns(fd, CLONE_NEWNET));
    }
    if (!strcmp(name, "clone_newuser")) {
        long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
        if (r == 0) _exit(0);
        if (r > 0) { waitpid(r, NULL, 0); return allowed(name); }
        return denied(name, errno);
    }
    if (!strcmp(name, "clone3")) {
        uint64_t args[11] = {0};
        args[0] = CLONE_NEWNET; /* flags */
        args[4] = SIGCHLD;      /* exit_signal */
        long r = syscall(SYS_clone3, args, sizeof(args));
        if (r == 0) _exit(0);
        if (r > 0) { waitpid(r, NULL, 0); return allowed(name); }
        return denied(name, errno);
    }
    if (!strcmp(name, "ptrace")) return check(name, ptrace(PTRACE_ATTACH, 1, 0, 0));
    if (!strcmp(name, "ptrace_traceme")) return check(name, ptrace(PTRACE_TRACEME, 0, 0, 0));
    if (!strcmp(name, "process_vm_readv")) {
        char buf[8];
        struct iovec l = {buf, 8}, r = {buf, 8};
        return check(name, syscall(SYS_process_vm_readv, getppid(), &l, 1, &r, 1, 0));
    }
    if (!strcmp(name, "kexec_load")) return check(name, syscall(SYS_kexec_load, 0, 0, 0, 0));
    if (!strcmp(name, "kexec_file_load")) return check(name, syscall(SYS_kexec_file_load, -1, -1, 0, "", 0));
    if (!strcmp(name, "bpf")) {
        union bpf_attr a;
        memset(&a, 0, sizeof(a));
        a.map_type = BPF_MAP_TYPE_ARRAY; a.key_size = 4; a.value_size = 4; a.max_entries = 1;
        return check(name, syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof(a)));
    }
    if (!strcmp(name, "keyctl")) return check(name, syscall(SYS_keyctl, 0 /*GET_KEYRING_ID*/, -3, 0));
    if (!strcmp(name, "add_key")) return check(name, syscall(SYS_add_key, "user", "wt", "x", 1, -3));
    if (!strcmp(name, "request_key")) return check(name, syscall(SYS_request_key, "user", "wt", NULL, 0));
    if (!strcmp(name, "io_uring")) {
        char params[120];
        memset(params, 0, sizeof(params));
        return check(name, syscall(SYS_io_uring_setup, 1, params));
    }
    if (!strcmp(name, "userfaultfd")) return check(name, syscall(SYS_userfaultfd, 0));
    if (!strcmp(name, "perf_event_open")) {
        char attr[128];
        memset(attr, 0, sizeof(attr));
        *(uint32_t *)(attr + 4) = sizeof(attr); /* size */
        return check(name, syscall(SYS_perf_event_open, attr, 0, -1, -1, 0));
    }
    if (!strcmp(name, "open_by_handle_at")) {
        char h[64];
        memset(h, 0, sizeof(h));
        *(unsigned *)h = 8;
        return check(name, syscall(SYS_open_by_handle_at, AT_FDCWD, h, O_RDONLY));
    }
    if (!strcmp(name, "fsopen")) return check(name, syscall(SYS_fsopen, "tmpfs", 0));
    if (!strcmp(name, "open_tree")) return check(name, syscall(SYS_open_tree, AT_FDCWD, "/tmp", 1 /*OPEN_TREE_CLONE*/));
    if (!strcmp(name, "move_mount")) return check(name, syscall(SYS_move_mount, AT_FDCWD, "/tmp", AT_FDCWD, "/usr", 0));
    if (!strcmp(name, "fsmount")) return check(name, syscall(SYS_fsmount, -1, 0, 0));
    if (!strcmp(name, "init_module")) return check(name, syscall(SYS_init_module, "", 0, ""));
    if (!strcmp(name, "finit_module")) return check(name, syscall(SYS_finit_module, 0, "", 0));
    if (!strcmp(name, "delete_module")) return check(name, syscall(SYS_delete_module, "loop", 0));
    if (!strcmp(name, "reboot")) return check(name, syscall(SYS_reboot, 0xfee1dead, 672274793, 0x4321fedc, 0));
    if (!strcmp(name, "iopl")) return check(name, syscall(SYS_iopl, 3));
    if (!strcmp(name, "ioperm")) return check(name, syscall(SYS_ioperm, 0x80, 1, 1));
    if (!strcmp(name, "personality")) return check(name, personality(READ_IMPLIES_EXEC) == -1 ? -1 : (personality(0xffffffff) & READ_IMPLIES_EXEC ? 0 : -1));
    if (!strcmp(name, "af_packet")) return check(name, socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)));
    if (!strcmp(name, "af_vsock")) return check(name, socket(40 /*AF_VSOCK*/, SOCK_STREAM, 0));
    if (!strcmp(name, "af_alg")) return check(name, socket(38 /*AF_ALG*/, SOCK_SEQPACKET, 0));
    if (!strcmp(name, "mknod_block")) {
        if (mknod("/tmp/wt-sda", S_IFBLK | 0600, makedev(8, 0)) < 0) return denied("mknod block device", errno);
        int fd = open("/tmp/wt-sda", O_RDONLY);
        if (fd < 0) return denied("open mknod'ed block device", errno);
        return allowed(name);
    }
    if (!strcmp(name, "open")) { /* open ARG for reading and read a byte */
        int fd = open(arg, O_RDONLY);
        if (fd < 0) return denied(arg, errno);
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0) return denied(arg, errno);
        if (n == 0) { printf("DENIED %s: empty\n", arg); return 0; }
        return allowed(arg);
    }
    if (!strcmp(name, "write")) { /* write to ARG */
        int fd = open(arg, O_WRONLY | O_CREAT, 0644);
        if (fd < 0) return denied(arg, errno);
        if (write(fd, "c", 1) < 0) return denied(arg, errno);
        return allowed(arg);
    }
    if (!strcmp(name, "syslog")) return check(name, syscall(SYS_syslog, 3 /*READ_ALL*/, malloc(4096), 4096));
    if (!strcmp(name, "tcp")) { /* connect to 127.0.0.1:ARG */
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0) return denied("tcp socket", errno);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(arg)), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        return check(name, connect(s, (struct sockaddr *)&a, sizeof(a)));
    }
    if (!strcmp(name, "abstract")) { /* connect to abstract unix socket @ARG */
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        if (s < 0) return denied("unix socket", errno);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        strncpy(a.sun_path + 1, arg, sizeof(a.sun_path) - 2);
        return check(name, connect(s, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 1 + strlen(arg)));
    }
    if (!strcmp(name, "fd")) { /* is descriptor ARG open? */
        struct stat st;
        return check(name, fstat(atoi(arg), &st));
    }
    if (!strcmp(name, "processes")) { /* may see no more than ARG processes */
        DIR *d = opendir("/proc");
        if (!d) return denied("opendir /proc", errno);
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d))) if (e->d_name[0] >= '0' && e->d_name[0] <= '9') n++;
        printf("%s %d processes visible\n", n <= atoi(arg) ? "DENIED" : "ALLOWED", n);
        return n > atoi(arg);
    }
    if (!strcmp(name, "forkbomb")) { /* fork until refused; report how many, then clean up */
        static pid_t kids[100001];
        int n = 0;
        for (;;) {
            pid_t p = fork();
            if (p == 0) { pause(); _exit(0); }
            if (p < 0) break;
            kids[n++] = p;
            if (n > 100000) return allowed(name);
        }
        int err = errno;
        for (int i = 0; i < n; i++) kill(kids[i], SIGKILL);
        while (wait(NULL) > 0) {}
        printf("DENIED fork after %d children: %s\n", n, strerror(err));
        return 0;
    }
    if (!strcmp(name, "hog")) { /* touch ARG MiB */
        size_t n = (size_t)atoi(arg) << 20;
        char *p = malloc(n);
        if (!p) return denied("malloc", errno);
        for (size_t i = 0; i < n; i += 4096) p[i] = 1;
        return allowed(name);
    }
    if (!strcmp(name, "spin")) { for (volatile unsigned long i = 0;; i++) {} }
    if (!strcmp(name, "exe")) return check(name, open("/proc/self/exe", O_WRONLY));
    if (!strcmp(name, "exec")) { /* execute ARG */
        char *args[] = {(char *)arg, "fd", "0", NULL};
        execv(arg, args);
        return denied(arg, errno);
    }
    if (!strcmp(name, "copyexec")) { /* copy this binary to ARG (a writable place) and run it */
        int in = open("/proc/self/exe", O_RDONLY), out = open(arg, O_WRONLY | O_CREAT | O_TRUNC, 0755);
        if (in < 0 || out < 0) return denied("copy", errno);
        char buf[65536];
        ssize_t n;
        while ((n = read(in, buf, sizeof buf)) > 0) if (write(out, buf, n) != n) return denied("copy", errno);
        close(out);
        char *args[] = {(char *)arg, "fd", "0", NULL};
        execv(arg, args);
        return denied("exec of the copy", errno);
    }
    if (!strcmp(name, "ldso")) { /* run ARG through the dynamic loader (mmap PROT_EXEC, no execve of ARG) */
        char *args[] = {"/lib64/ld-linux-x86-64.so.2", (char *)arg, "fd", "0", NULL};
        execv(args[0], args);
        return denied("exec of the loader", errno);
    }
    if (!strcmp(name, "memfd")) { /* copy this binary into a memfd and execute it */
        int fd = syscall(SYS_memfd_create, "wt", 0);
        if (fd < 0) return denied("memfd_create", errno);
        int in = open("/proc/self/exe", O_RDONLY);
        char buf[65536];
        ssize_t n;
        while ((n = read(in, buf, sizeof buf)) > 0) if (write(fd, buf, n) != n) return denied("memfd write", errno);
        char *args[] = {"memfd", "fd", "0", NULL};
        char *env[] = {NULL};
        syscall(SYS_execveat, fd, "", args, env, AT_EMPTY_PATH);
        return denied("execveat of the memfd", errno);
    }
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: attack NAME [ARG]\n"); return 2; }
    int r = attack(argv[1], argc > 2 ? argv[2] : "");
    fflush(stdout);
    if (r == 2) fprintf(stderr, "attack: unknown attack %s\n", argv[1]);
    return r;
}
