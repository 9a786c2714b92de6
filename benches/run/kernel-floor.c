// The kernel's share of a sandbox start: the system calls watertight's default profile makes the
// kernel do (user/pid/mount/net/uts/ipc namespaces, id maps, the mount tree of the host-root
// default, memory/pids/device cgroups, the default seccomp filter, a posix_spawn-like start of
// the program), issued back to back by a small C program with nothing else in the way. No
// implementation of that isolation can start faster on the same kernel, so its ratio to the
// `unshare` floor bounds what any implementation can reach; startup.sh prints it beside
// watertight's. Keep the mount list in step with the built-in profile (profile.rs).
//
// Usage: kernel-floor FILTER.bpf [--no-cgroups] [--no-mounts] [--no-seccomp] [--repeat N]
//   --repeat N: N sandboxes one after another in this process (benches/batch/jobs.sh: the
//   kernel's share of a batch of jobs, without a process start per job).
//   FILTER.bpf: the built-in profile's seccomp program, raw
//   (cargo run --release -p watertight-sandbox --example default_filter > FILTER.bpf).
// Root only; cgroup v1 (memory, pids, devices) or v2 (memory, pids). Exits 0 when /bin/true ran.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define CK(x) do { if ((x) < 0) { fprintf(stderr, "kernel-floor: %s: %s\n", #x, strerror(errno)); _exit(99); } } while (0)

static const char *STAGE = "/run/watertight/stage";
static char path_buf[512];

static const char *at(const char *rel) {
  snprintf(path_buf, sizeof path_buf, "%s/%s", STAGE, rel);
  return path_buf;
}

static void write_file(const char *path, const char *s) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  CK(fd);
  CK(write(fd, s, strlen(s)));
  close(fd);
}

static int exists(const char *p) { return access(p, F_OK) == 0; }

static void bind_ro(const char *src, const char *rel) {
  CK(mount(src, at(rel), NULL, MS_BIND | MS_REC, NULL));
  CK(mount(NULL, at(rel), NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL));
}

// Hidden directories share one empty read-only tmpfs (the first one's), as watertight's DirMasks do.
static void hide_dir(const char *rel, char first_dir[512]) {
  if (!exists(at(rel))) return;
  if (!*first_dir) {
    CK(mount("tmpfs", at(rel), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4096,mode=555"));
    snprintf(first_dir, 512, "%s", at(rel));
  } else {
    CK(mount(first_dir, at(rel), NULL, MS_BIND, NULL));
  }
}

static char spawn_stack[64 << 10];
static int program(void *arg) {
  (void)arg;
  char *argv[] = {"/bin/true", NULL}, *envp[] = {"PATH=/usr/bin:/bin", NULL};
  setsid();
  execve(argv[0], argv, envp);
  _exit(127);
}

// The sandbox's pid 1: the mount tree, hostname, loopback, then the last layers and the program.
static void sandbox(int go, int mounts, int cgroups, struct sock_fprog *filter) {
  char b;
  if (read(go, &b, 1) != 1) _exit(98);
  CK(setresgid(0, 0, 0));
  CK(setresuid(0, 0, 0));
  CK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
  if (!mounts) {
    CK(mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
  } else {
    const char *dirs[] = {"usr", "etc", "proc", "dev", "tmp", "run"};
    const char *links[][2] = {{"usr/bin", "bin"}, {"usr/sbin", "sbin"}, {"usr/lib", "lib"},
                              {"usr/lib32", "lib32"}, {"usr/lib64", "lib64"}};
    const char *hidden_files[] = {"etc/shadow", "etc/shadow-", "etc/gshadow", "etc/gshadow-",
                                  "etc/security/opasswd", "etc/machine-id"};
    const char *hidden_dirs[] = {"etc/ssh", "etc/ssl/private"};
    const char *proc_files[] = {"proc/keys", "proc/timer_list", "proc/kmsg", "proc/kallsyms",
                                "proc/kpagecount", "proc/kpageflags", "proc/kpagecgroup",
                                "proc/vmallocinfo"};
    const char *proc_dirs[] = {"proc/acpi", "proc/sysvipc"};
    const char *proc_ro[] = {"proc/bus", "proc/fs", "proc/irq", "proc/sys"};
    const char *devices[] = {"null", "zero", "full", "random", "urandom", "tty"};
    char src[512], first_dir[512] = "";
    CK(mount("tmpfs", STAGE, "tmpfs", MS_NOSUID | MS_NODEV, "size=1048576,mode=755"));
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) CK(mkdir(at(dirs[i]), 0755));
    bind_ro("/usr", "usr");
    for (size_t i = 0; i < sizeof links / sizeof *links; i++) {
      snprintf(src, sizeof src, "/%s", links[i][1]);
      if (exists(src)) CK(symlink(links[i][0], at(links[i][1])));
    }
    bind_ro("/etc", "etc");
    for (size_t i = 0; i < sizeof hidden_files / sizeof *hidden_files; i++)
      if (exists(at(hidden_files[i]))) CK(mount("/dev/null", at(hidden_files[i]), NULL, MS_BIND, NULL));
    for (size_t i = 0; i < sizeof hidden_dirs / sizeof *hidden_dirs; i++) hide_dir(hidden_dirs[i], first_dir);
    CK(mount("proc", at("proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
    for (size_t i = 0; i < sizeof proc_dirs / sizeof *proc_dirs; i++) hide_dir(proc_dirs[i], first_dir);
    for (size_t i = 0; i < sizeof proc_files / sizeof *proc_files; i++)
      if (exists(at(proc_files[i]))) CK(mount("/dev/null", at(proc_files[i]), NULL, MS_BIND, NULL));
    for (size_t i = 0; i < sizeof proc_ro / sizeof *proc_ro; i++) {
      if (!exists(at(proc_ro[i]))) continue;
      snprintf(src, sizeof src, "%s", at(proc_ro[i]));
      bind_ro(src, proc_ro[i]);
    }
    CK(mount("tmpfs", at("dev"), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=65536,mode=755"));
    for (size_t i = 0; i < sizeof devices / sizeof *devices; i++) {
      char rel[64];
      snprintf(src, sizeof src, "/dev/%s", devices[i]);
      snprintf(rel, sizeof rel, "dev/%s", devices[i]);
      int fd = open(at(rel), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
      CK(fd);
      close(fd);
      CK(mount(src, at(rel), NULL, MS_BIND, NULL));
    }
    CK(mkdir(at("dev/pts"), 0755));
    CK(mount("devpts", at("dev/pts"), "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"));
    CK(symlink("pts/ptmx", at("dev/ptmx")));
    CK(mkdir(at("dev/shm"), 01777));
    CK(mount("tmpfs", at("dev/shm"), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=16777216,mode=1777"));
    CK(symlink("/proc/self/fd", at("dev/fd")));
    CK(symlink("/proc/self/fd/0", at("dev/stdin")));
    CK(symlink("/proc/self/fd/1", at("dev/stdout")));
    CK(symlink("/proc/self/fd/2", at("dev/stderr")));
    CK(mount(NULL, at("dev"), NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
    CK(mount("tmpfs", at("tmp"), "tmpfs", MS_NOSUID | MS_NODEV, "size=67108864,mode=1777"));
    CK(mount(NULL, STAGE, NULL, MS_REC | MS_PRIVATE, NULL));
    CK(chdir(STAGE));
    CK(syscall(SYS_pivot_root, ".", "."));
    CK(umount2(".", MNT_DETACH));
    CK(mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL));
    CK(chdir("/tmp"));
  }
  CK(sethostname("sandbox", 7));
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr = {0};
  strcpy(ifr.ifr_name, "lo");
  ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
  CK(ioctl(s, SIOCSIFFLAGS, &ifr));
  close(s);
  if (read(go, &b, 1) != 1) _exit(98);
  if (cgroups) CK(unshare(CLONE_NEWCGROUP));
  for (int c = 0; c <= 63; c++) prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
  struct { unsigned version; int pid; } hdr = {0x20080522, 0};
  unsigned data[6] = {0};
  CK(syscall(SYS_capset, &hdr, data));
  CK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  if (filter) CK(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, filter));
  prctl(PR_SET_DUMPABLE, 0);
  int child = clone(program, spawn_stack + sizeof spawn_stack, CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
  CK(child);
  int status;
  CK(waitpid(child, &status, 0));
  _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

// One sandbox, start to end: clone, id maps, cgroups, run, accounting, cgroups removed.
static int one_sandbox(int mounts, int cgroups, struct sock_fprog *filter, int v2, char dirs[3][128], int ndirs) {
  int go[2];
  CK(pipe2(go, O_CLOEXEC));
  long pid = syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD, 0, 0, 0, 0);
  CK(pid);
  if (pid == 0) {
    close(go[1]);
    sandbox(go[0], mounts, cgroups, filter);
  }
  close(go[0]);
  char p[128], m[64];
  snprintf(m, sizeof m, "0 %d 1\n", 1879048192 - 1);
  snprintf(p, sizeof p, "/proc/%ld/uid_map", pid);
  write_file(p, m);
  snprintf(p, sizeof p, "/proc/%ld/gid_map", pid);
  write_file(p, m);
  CK(write(go[1], "m", 1));
  char f[512], pidstr[32];
  if (cgroups) {
    for (int i = 0; i < ndirs; i++) CK(mkdir(dirs[i], 0755));
    if (v2) {
      snprintf(f, sizeof f, "%s/memory.max", dirs[0]); write_file(f, "536870912");
      snprintf(f, sizeof f, "%s/memory.swap.max", dirs[0]); write_file(f, "0");
      snprintf(f, sizeof f, "%s/pids.max", dirs[0]); write_file(f, "128");
    } else {
      snprintf(f, sizeof f, "%s/memory.limit_in_bytes", dirs[0]); write_file(f, "536870912");
      snprintf(f, sizeof f, "%s/memory.memsw.limit_in_bytes", dirs[0]);
      if (exists(f)) write_file(f, "536870912");
      snprintf(f, sizeof f, "%s/pids.max", dirs[1]); write_file(f, "128");
      snprintf(f, sizeof f, "%s/devices.deny", dirs[2]); write_file(f, "a");
      snprintf(f, sizeof f, "%s/devices.allow", dirs[2]);
      const char *rules[] = {"c 1:3 rw", "c 1:5 rw", "c 1:7 rw", "c 1:8 rw", "c 1:9 rw", "c 5:0 rw", "c 5:2 rw", "c 136:* rw"};
      int fd = open(f, O_WRONLY | O_CLOEXEC);
      CK(fd);
      for (size_t i = 0; i < sizeof rules / sizeof *rules; i++) CK(write(fd, rules[i], strlen(rules[i])));
      close(fd);
    }
    snprintf(pidstr, sizeof pidstr, "%ld", pid);
    for (int i = 0; i < ndirs; i++) {
      snprintf(f, sizeof f, "%s/cgroup.procs", dirs[i]);
      write_file(f, pidstr);
    }
  }
  CK(write(go[1], "g", 1));
  int status;
  CK(waitpid(pid, &status, 0));
  close(go[1]);
  if (cgroups) {
    // The accounting a verdict reads, then the cgroups go.
    char buf[4096];
    snprintf(f, sizeof f, v2 ? "%s/memory.peak" : "%s/memory.max_usage_in_bytes", dirs[0]);
    int fd = open(f, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) { CK(read(fd, buf, sizeof buf)); close(fd); }
    snprintf(f, sizeof f, "%s/pids.events", dirs[v2 ? 0 : 1]);
    fd = open(f, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) { CK(read(fd, buf, sizeof buf)); close(fd); }
    for (int i = 0; i < ndirs; i++) CK(rmdir(dirs[i]));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv) {
  int mounts = 1, cgroups = 1, seccomp = 1;
  long repeat = 1;
  const char *filter_path = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--no-mounts")) mounts = 0;
    else if (!strcmp(argv[i], "--no-cgroups")) cgroups = 0;
    else if (!strcmp(argv[i], "--no-seccomp")) seccomp = 0;
    else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = atol(argv[++i]);
    else filter_path = argv[i];
  }
  static struct sock_filter insns[4096];
  struct sock_fprog filter = {0, insns};
  if (seccomp) {
    int fd = filter_path ? open(filter_path, O_RDONLY | O_CLOEXEC) : -1;
    ssize_t n = fd < 0 ? -1 : read(fd, insns, sizeof insns);
    if (fd >= 0) close(fd);
    if (n <= 0 || n % 8) {
      fprintf(stderr, "kernel-floor: give the default filter: cargo run --release -p watertight-sandbox --example default_filter > FILTER.bpf\n");
      return 2;
    }
    filter.len = (unsigned short)(n / 8);
  }
  int v2 = !exists("/sys/fs/cgroup/memory");
  char dirs[3][128];
  const char *v1[3] = {"memory", "pids", "devices"};
  int ndirs = v2 ? 1 : 3;
  for (int i = 0; i < ndirs; i++) {
    if (v2) snprintf(dirs[i], sizeof dirs[i], "/sys/fs/cgroup/kernel-floor-%d", getpid());
    else snprintf(dirs[i], sizeof dirs[i], "/sys/fs/cgroup/%s/kernel-floor-%d", v1[i], getpid());
  }

  for (long r = 0; r < repeat; r++) {
    int rc = one_sandbox(mounts, cgroups, seccomp ? &filter : NULL, v2, dirs, ndirs);
    if (rc) return rc;
  }
  return 0;
}
