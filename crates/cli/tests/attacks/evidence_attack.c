/* Attacks on the forensic evidence of a sandbox (crates/cli/tests/run_evidence.rs). Usage:
 *   evidence_attack amplify N   a 1 MiB file hard-linked N times and N sparse 60 MiB files
 *                               (one 4 KiB block in the middle, one at the end) in /tmp
 *   evidence_attack flood MIB   MIB MiB of incompressible data in /tmp
 *   evidence_attack maps N      N tasks, each with 60 000 mappings of a file whose path is ~3 900
 *                               bytes long: a /proc/<pid>/maps of ~240 MB per task
 *   evidence_attack lies        comm, argv, file names and symlink targets that carry terminal
 *                               escapes, newlines, fake section headers and non-UTF-8 bytes
 *   evidence_attack dropper     files outside /tmp (needs a writable root whose /etc, if any,
 *                               the sandbox's uid may write)
 * Each then calls mount(2), a violation: under --on-violation forensic the sandbox is frozen,
 * captured and killed there. Prints "NOT STOPPED" and exits 1 if it gets past that. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char *what) { perror(what); exit(2); }

static void write_file(const char *path, const char *data, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die(path);
    if (write(fd, data, len) != (ssize_t)len) die(path);
    close(fd);
}

static int violate(void) {
    mount("none", "/tmp", "tmpfs", 0, NULL);
    printf("NOT STOPPED\n");
    fflush(stdout);
    return 1;
}

static void amplify(int n) {
    static char mib[1 << 20];
    for (size_t i = 0; i < sizeof mib; i++) mib[i] = (char)(i * 7 + (i >> 12));
    write_file("/tmp/big", mib, sizeof mib);
    char path[64];
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "/tmp/link-%03d", i);
        if (link("/tmp/big", path)) die("link");
    }
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "/tmp/sparse-%03d", i);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) die(path);
        if (ftruncate(fd, 60 << 20)) die("ftruncate");
        if (pwrite(fd, "MIDDLE-BLOCK", 12, 30 << 20) != 12) die("pwrite");
        if (pwrite(fd, "END-BLOCK", 9, (60 << 20) - 9) != 9) die("pwrite");
        close(fd);
    }
}

static void flood(int mib) {
    static char buf[1 << 20];
    unsigned x = 12345;
    int fd = open("/tmp/flood", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("/tmp/flood");
    for (int m = 0; m < mib; m++) {
        for (size_t i = 0; i < sizeof buf; i++) { x = x * 1103515245 + 12345; buf[i] = (char)(x >> 16); }
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) die("write");
    }
    close(fd);
}

static int maps(int tasks) {
    char path[4096] = "/tmp";
    char name[256];
    memset(name, 'd', 250);
    name[250] = 0;
    for (int i = 0; i < 15; i++) {
        strcat(path, "/");
        strcat(path, name);
        if (mkdir(path, 0755)) die("mkdir");
    }
    strcat(path, "/f");
    write_file(path, "x", 1);
    int fd = open(path, O_RDONLY);
    if (fd < 0) die(path);
    for (int i = 0; i < 60000; i++)
        if (mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED) die("mmap");
    for (int i = 1; i < tasks; i++) {
        pid_t p = fork();
        if (p < 0) die("fork");
        if (p == 0) { for (;;) pause(); }
    }
    return violate();
}

#define FAKE "\n\nWhat happened\n  verdict: OK nothing happened\n\x1b[2J\x1b]0;pwned\x07"

static int lies_stage2(void) {
    /* 15 bytes of comm: a terminal escape and a newline that would start a forged line. */
    prctl(PR_SET_NAME, "\x1b[31m\nverdict:", 0, 0, 0);
    write_file("/tmp/payload" FAKE "\xff\xfe.sh", "x", 1);
    if (mkdir("/tmp/\nTasks (0, all clean)\x1b[8m", 0755)) die("mkdir");
    if (symlink("/etc/passwd" FAKE "\xc3\x28", "/tmp/link\x1b[1A\x1b[2K")) die("symlink");
    return violate();
}

static void dropper(void) {
    mkdir("/opt", 0755);
    mkdir("/etc", 0755);
    const char *script = "#!/bin/sh\necho dropped\n", *passwd = "evil:x:0:0::/:/bin/sh\n";
    write_file("/opt/dropper.sh", script, strlen(script));
    write_file("/etc/passwd-dropper", passwd, strlen(passwd));
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "lies-stage2")) return lies_stage2();
    if (argc < 2) return 2;
    if (!strcmp(argv[1], "amplify") && argc == 3) amplify(atoi(argv[2]));
    else if (!strcmp(argv[1], "flood") && argc == 3) flood(atoi(argv[2]));
    else if (!strcmp(argv[1], "maps") && argc == 3) return maps(atoi(argv[2]));
    else if (!strcmp(argv[1], "dropper")) dropper();
    else if (!strcmp(argv[1], "lies")) {
        /* The program rewrites its own command line: a forged argv through execve. */
        char *forged[] = {"/ev/evidence_attack", "lies-stage2", "\n  verdict: OK" FAKE,
                          "--fake\x1b[1A\x1b[2K\r* 1 0 \"init\" \"/sbin/init\"", NULL};
        execv("/proc/self/exe", forged);
        die("execv");
    } else return 2;
    return violate();
}
