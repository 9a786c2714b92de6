/* Routes around exec-time integrity: running code that is in no verified file. Usage:
 * integrity_bypass NAME [ARG]. Prints one line: "ALLOWED ..." (exit 1) when code written at run
 * time ran, "DENIED ..." (exit 0) when a step was refused. A step the sandbox kills prints nothing.
 * Built statically by crates/cli/tests/run_integrity_bypass.rs and placed in a signed rootfs.
 *
 *   alias-anon      shared anonymous memory mapped read+exec, a second view made with
 *                   mremap(old, 0, ...), that view made writable, code written through it
 *   alias-devzero   the same with a MAP_SHARED mapping of /dev/zero
 *   alias-memfd     a memfd mapped writable and, a second time, read+exec
 *   alias-shm       a SysV segment attached read+exec (SHM_EXEC) and attached again writable
 *   mremap-zero     a second view of writable shared memory made with mremap(old, 0, ...)
 *   read-implies-exec  personality(READ_IMPLIES_EXEC): PROT_READ alone then maps executable
 *   ptrace          PTRACE_TRACEME (a tracer pokes code with FOLL_FORCE)
 *   userfaultfd     userfaultfd() (UFFDIO_COPY fills pages of a read+exec mapping)
 *   procmem-self    code of this verified binary patched through /proc/self/mem
 *   procmem-parent  a child patches its parent's code through /proc/<ppid>/mem
 *   wait-exec DIR PATH  writes DIR/ready, waits (bounded) for DIR/go, then execs PATH
 *   writes          writes /tmp/f, /dev/shm/f and /dev/null: prints "WROTE" when all worked
 *   hello           prints "HELLO <tag>" (the tag differs between the verified and the tampered
 *                   build, see -DTAG)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef TAG
#define TAG "verified"
#endif

/* mov eax, 42; ret */
static const unsigned char RET42[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3};
#define PAGE 4096

static int denied(const char *what) {
    printf("DENIED %s: %s\n", what, strerror(errno));
    fflush(stdout);
    return 0;
}

/* Writes RET42 through `rw` and calls it through `rx`: the two views of the same page. */
static int run_through(void *rw, void *rx, const char *route) {
    memcpy(rw, RET42, sizeof RET42);
    int (*f)(void) = (int (*)(void))rx;
    int r = f();
    if (r == 42) {
        printf("ALLOWED %s: ran code written at run time\n", route);
        fflush(stdout);
        return 1;
    }
    printf("DENIED %s: the code did not run (%d)\n", route, r);
    return 0;
}

static int alias_of(void *rx, const char *route) {
    void *rw = mremap(rx, 0, PAGE, MREMAP_MAYMOVE);
    if (rw == MAP_FAILED)
        return denied("mremap(old_size 0)");
    if (mprotect(rw, PAGE, PROT_READ | PROT_WRITE) != 0)
        return denied("mprotect(alias, PROT_WRITE)");
    return run_through(rw, rx, route);
}

static int alias_anon(void) {
    void *rx = mmap(NULL, PAGE, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (rx == MAP_FAILED)
        return denied("mmap(MAP_SHARED|MAP_ANONYMOUS, PROT_EXEC)");
    return alias_of(rx, "alias-anon");
}

static int alias_devzero(void) {
    int fd = open("/dev/zero", O_RDWR);
    if (fd < 0)
        return denied("open /dev/zero");
    void *rx = mmap(NULL, PAGE, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
    if (rx == MAP_FAILED)
        return denied("mmap(/dev/zero, MAP_SHARED, PROT_EXEC)");
    return alias_of(rx, "alias-devzero");
}

static int alias_memfd(void) {
    int fd = memfd_create("code", 0);
    if (fd < 0)
        return denied("memfd_create");
    if (ftruncate(fd, PAGE) != 0)
        return denied("ftruncate memfd");
    void *rw = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (rw == MAP_FAILED)
        return denied("mmap(memfd, PROT_WRITE)");
    void *rx = mmap(NULL, PAGE, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
    if (rx == MAP_FAILED) {
        /* A private read+exec view also follows the writes until it is written itself. */
        rx = mmap(NULL, PAGE, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
        if (rx == MAP_FAILED)
            return denied("mmap(memfd, PROT_EXEC)");
    }
    return run_through(rw, rx, "alias-memfd");
}

static int alias_shm(void) {
    int id = shmget(IPC_PRIVATE, PAGE, IPC_CREAT | 0600);
    if (id < 0)
        return denied("shmget");
    void *rx = shmat(id, NULL, SHM_EXEC | SHM_RDONLY);
    shmctl(id, IPC_RMID, NULL);
    if (rx == (void *)-1)
        return denied("shmat(SHM_EXEC)");
    void *rw = shmat(id, NULL, 0);
    if (rw == (void *)-1)
        return denied("shmat(writable)");
    return run_through(rw, rx, "alias-shm");
}

static int mremap_zero(void) {
    void *rw = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (rw == MAP_FAILED)
        return denied("mmap(MAP_SHARED|MAP_ANONYMOUS)");
    void *alias = mremap(rw, 0, PAGE, MREMAP_MAYMOVE);
    if (alias == MAP_FAILED)
        return denied("mremap(old_size 0)");
    printf("ALLOWED mremap-zero: a second view of shared memory\n");
    return 1;
}

static int read_implies_exec(void) {
    if (personality(READ_IMPLIES_EXEC) == -1)
        return denied("personality(READ_IMPLIES_EXEC)");
    printf("ALLOWED read-implies-exec: PROT_READ now maps executable\n");
    return 1;
}

static int trace_me(void) {
    if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) == -1)
        return denied("ptrace(PTRACE_TRACEME)");
    printf("ALLOWED ptrace: traceable by the parent\n");
    return 1;
}

static int uffd(void) {
    long fd = syscall(SYS_userfaultfd, 0);
    if (fd < 0)
        return denied("userfaultfd");
    printf("ALLOWED userfaultfd\n");
    return 1;
}

/* The verified code both /proc/<pid>/mem attacks patch. noinline + a volatile pointer: the call
 * really goes to this function's bytes. */
__attribute__((noinline)) static int victim(void) { return 1; }
static int (*volatile victim_ptr)(void) = victim;

/* Writes RET42 over victim() in process `pid` through /proc/<pid>/mem. 0 written, else errno. */
static int patch(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", (int)pid);
    int fd = open(path, O_RDWR);
    if (fd < 0)
        return errno;
    ssize_t n = pwrite(fd, RET42, sizeof RET42, (off_t)(uintptr_t)victim);
    int err = errno;
    close(fd);
    return n == (ssize_t)sizeof RET42 ? 0 : (err ? err : EIO);
}

static int patched_result(const char *route) {
    if (victim_ptr() == 42) {
        printf("ALLOWED %s: verified code patched at run time\n", route);
        return 1;
    }
    printf("DENIED %s: the code is unchanged\n", route);
    return 0;
}

static int procmem_self(void) {
    int err = patch(getpid());
    if (err) {
        errno = err;
        return denied("write /proc/self/mem");
    }
    return patched_result("procmem-self");
}

static int procmem_parent(void) {
    pid_t parent = getpid();
    fflush(stdout);
    pid_t child = fork();
    if (child < 0)
        return denied("fork");
    if (child == 0)
        _exit(patch(parent));
    int status = 0;
    waitpid(child, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        errno = WEXITSTATUS(status);
        return denied("write /proc/<parent>/mem");
    }
    return patched_result("procmem-parent");
}

static int wait_exec(const char *dir, const char *path) {
    char ready[512], go[512];
    snprintf(ready, sizeof ready, "%s/ready", dir);
    snprintf(go, sizeof go, "%s/go", dir);
    int fd = open(ready, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return denied("create ready file");
    close(fd);
    /* Bounded: 60 s at most, then exec anyway (the test fails on its own assertions). */
    for (int i = 0; i < 6000 && access(go, F_OK) != 0; i++)
        usleep(10000);
    char *argv[] = {(char *)path, "hello", NULL};
    execv(path, argv);
    return denied("execv");
}

static int writes(void) {
    const char *paths[] = {"/tmp/f", "/dev/shm/f", "/dev/null"};
    for (unsigned i = 0; i < sizeof paths / sizeof *paths; i++) {
        int fd = open(paths[i], O_WRONLY | O_CREAT, 0600);
        if (fd < 0 || write(fd, "x", 1) != 1) {
            printf("FAILED write %s: %s\n", paths[i], strerror(errno));
            return 1;
        }
        close(fd);
    }
    printf("WROTE\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: integrity_bypass NAME [ARG]\n");
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "alias-anon"))
        return alias_anon();
    if (!strcmp(name, "alias-devzero"))
        return alias_devzero();
    if (!strcmp(name, "alias-memfd"))
        return alias_memfd();
    if (!strcmp(name, "alias-shm"))
        return alias_shm();
    if (!strcmp(name, "mremap-zero"))
        return mremap_zero();
    if (!strcmp(name, "read-implies-exec"))
        return read_implies_exec();
    if (!strcmp(name, "ptrace"))
        return trace_me();
    if (!strcmp(name, "userfaultfd"))
        return uffd();
    if (!strcmp(name, "procmem-self"))
        return procmem_self();
    if (!strcmp(name, "procmem-parent"))
        return procmem_parent();
    if (!strcmp(name, "wait-exec") && argc == 4)
        return wait_exec(argv[2], argv[3]);
    if (!strcmp(name, "writes"))
        return writes();
    if (!strcmp(name, "hello")) {
        printf("HELLO %s\n", TAG);
        return 0;
    }
    fprintf(stderr, "unknown attack %s\n", name);
    return 2;
}
