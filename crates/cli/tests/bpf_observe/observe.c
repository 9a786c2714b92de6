/* The workload of `watertight run --bpf-observe` tests (crates/cli/tests/run_bpf_observe.rs).
 * Raw bpf() calls only; the token fields of union bpf_attr are declared here because Debian 12's
 * uapi headers predate BPF tokens (Linux 6.9).
 *
 *   observe token                 create a token from the bpffs at $BPFFS (default /sys/fs/bpf)
 *   observe load KIND             load a program of KIND through that token
 *   observe plain                 BPF_PROG_LOAD of a tracepoint program without a token
 *   observe attach-raw-tp         load a raw_tracepoint program through the token and attach it
 *                                 to sys_enter with BPF_RAW_TRACEPOINT_OPEN
 *   observe attach-tp             perf_event_open of the tracepoint syscalls/sys_enter_getpid
 *   observe cmd N                 bpf(N) with an all-zero attribute (any command number)
 *
 * KIND: tracepoint, raw_tp, perf_event, kprobe, socket_filter, send_signal (a tracepoint program
 * calling bpf_send_signal), probe_read_kernel (one calling bpf_probe_read_kernel), map (an array
 * map created through the token), map_user (a tracepoint program looking up such a map: its
 * descriptor is in the instructions), unverifiable (exits without setting r0).
 * Prints one line "RESULT <what> ok" (a loaded program: "RESULT <what> ok id=<program id>") or
 * "RESULT <what> errno=<n> <name>" and exits 0 or 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

enum {
    CMD_MAP_CREATE = 0,
    CMD_PROG_LOAD = 5,
    CMD_OBJ_GET_INFO_BY_FD = 15,
    CMD_RAW_TRACEPOINT_OPEN = 17,
    CMD_TOKEN_CREATE = 36,
};
enum {
    PT_SOCKET_FILTER = 1,
    PT_KPROBE = 2,
    PT_TRACEPOINT = 5,
    PT_PERF_EVENT = 7,
    PT_RAW_TRACEPOINT = 17,
};
#define F_TOKEN_FD (1U << 16)
#define HELPER_SEND_SIGNAL 109
#define HELPER_PROBE_READ_KERNEL 113

struct insn { uint8_t code; uint8_t regs; int16_t off; int32_t imm; };

/* union bpf_attr as BPF_PROG_LOAD reads it in Linux 6.9+ (prog_token_fd at offset 144). */
struct prog_load_attr {
    uint32_t prog_type, insn_cnt;
    uint64_t insns, license;
    uint32_t log_level, log_size;
    uint64_t log_buf;
    uint32_t kern_version, prog_flags;
    char prog_name[16];
    uint32_t prog_ifindex, expected_attach_type;
    uint32_t prog_btf_fd, func_info_rec_size;
    uint64_t func_info;
    uint32_t func_info_cnt, line_info_rec_size;
    uint64_t line_info;
    uint32_t line_info_cnt, attach_btf_id;
    uint32_t attach_prog_fd, core_relo_cnt;
    uint64_t fd_array, core_relos;
    uint32_t core_relo_rec_size, log_true_size;
    int32_t prog_token_fd;
    uint32_t pad;
};

/* union bpf_attr as BPF_MAP_CREATE reads it (map_token_fd at offset 76). */
struct map_create_attr {
    uint32_t map_type, key_size, value_size, max_entries, map_flags, inner_map_fd, numa_node;
    char map_name[16];
    uint32_t map_ifindex, btf_fd, btf_key_type_id, btf_value_type_id, btf_vmlinux_value_type_id;
    uint64_t map_extra;
    int32_t value_type_btf_obj_fd, map_token_fd;
};

static long sys_bpf(int cmd, void *attr, unsigned size) { return syscall(SYS_bpf, cmd, attr, size); }

/* The kernel's id of program `fd` (BPF_OBJ_GET_INFO_BY_FD: bpf_prog_info starts with type, id). */
static long prog_id(long fd) {
    uint32_t info[4] = {0};
    struct { uint32_t bpf_fd, info_len; uint64_t info; } a = {
        (uint32_t)fd, sizeof info, (uint64_t)(uintptr_t)info };
    return sys_bpf(CMD_OBJ_GET_INFO_BY_FD, &a, sizeof a) < 0 ? -1 : (long)info[1];
}

static int result(const char *what, long r) {
    if (r >= 0) { printf("RESULT %s ok\n", what); return 0; }
    printf("RESULT %s errno=%d %s\n", what, errno, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
    return 1;
}

static int token(void) {
    const char *path = getenv("BPFFS") ? getenv("BPFFS") : "/sys/fs/bpf";
    int fs = open(path, O_RDONLY | O_DIRECTORY);
    if (fs < 0) { int saved = errno; fprintf(stderr, "%s: %s\n", path, strerror(saved)); errno = saved; return -1; }
    struct { uint32_t flags, bpffs_fd; } attr = { 0, (uint32_t)fs };
    long t = sys_bpf(CMD_TOKEN_CREATE, &attr, sizeof attr);
    int saved = errno;
    close(fs);
    errno = saved;
    return (int)t;
}

static long load(uint32_t type, uint32_t attach, const struct insn *p, uint32_t n, int tok, const char *name) {
    static char log[65536];
    struct prog_load_attr a;
    memset(&a, 0, sizeof a);
    a.prog_type = type;
    a.insn_cnt = n;
    a.insns = (uint64_t)(uintptr_t)p;
    a.license = (uint64_t)(uintptr_t)"GPL";
    a.expected_attach_type = attach;
    strncpy(a.prog_name, name, 15);
    if (tok >= 0) { a.prog_flags = F_TOKEN_FD; a.prog_token_fd = tok; }
    long r = sys_bpf(CMD_PROG_LOAD, &a, sizeof a);
    if (r < 0 && errno == EACCES) { /* the verifier refused: say why */
        int saved = errno;
        a.log_level = 1; a.log_size = sizeof log; a.log_buf = (uint64_t)(uintptr_t)log;
        if (sys_bpf(CMD_PROG_LOAD, &a, sizeof a) < 0) fprintf(stderr, "verifier: %s\n", log);
        errno = saved;
    }
    return r;
}

#define MOV0 {0xb7, 0x00, 0, 0}   /* r0 = 0 */
#define EXIT {0x95, 0x00, 0, 0}   /* exit */

int main(int argc, char **argv) {
    static const struct insn ret0[] = { MOV0, EXIT };
    static const struct insn send_signal[] = {
        {0xb7, 0x01, 0, 0},                    /* r1 = 0 (no signal: this program is never run) */
        {0x85, 0x00, 0, HELPER_SEND_SIGNAL},   /* call bpf_send_signal */
        MOV0, EXIT };
    static const struct insn probe_read_kernel[] = {
        {0xbf, 0xa1, 0, 0},                    /* r1 = r10 */
        {0x07, 0x01, 0, -8},                   /* r1 += -8 */
        {0xb7, 0x02, 0, 8},                    /* r2 = 8 */
        {0xb7, 0x03, 0, 0},                    /* r3 = 0 */
        {0x85, 0x00, 0, HELPER_PROBE_READ_KERNEL},
        MOV0, EXIT };
    if (argc < 2) { fprintf(stderr, "usage: observe token|load KIND|plain|attach-raw-tp|attach-tp\n"); return 2; }
    const char *cmd = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(cmd, "plain"))
        return result("plain", load(PT_TRACEPOINT, 0, ret0, 2, -1, "plain"));
    if (!strcmp(cmd, "attach-tp")) {
        char buf[32] = {0};
        int f = open("/sys/kernel/tracing/events/syscalls/sys_enter_getpid/id", O_RDONLY);
        long id = 1; /* any id: the permission check comes first */
        if (f >= 0 && read(f, buf, sizeof buf - 1) > 0) id = atol(buf);
        struct perf_event_attr pa;
        memset(&pa, 0, sizeof pa);
        pa.type = PERF_TYPE_TRACEPOINT; pa.size = sizeof pa; pa.config = id; pa.sample_period = 1;
        return result("attach-tp", syscall(SYS_perf_event_open, &pa, -1, 0, -1, 0));
    }
    if (!strcmp(cmd, "cmd") && argc == 3) {
        static char zero[128];
        char what[32];
        snprintf(what, sizeof what, "cmd %s", argv[2]);
        return result(what, sys_bpf(atoi(argv[2]), zero, sizeof zero));
    }
    int tok = token();
    if (!strcmp(cmd, "token")) return result("token", tok);
    if (tok < 0) return result("token", tok);
    if (!strcmp(cmd, "attach-raw-tp")) {
        long p = load(PT_RAW_TRACEPOINT, 0, ret0, 2, tok, "raw_tp");
        if (p < 0) return result("load raw_tp", p);
        struct { uint64_t name; uint32_t prog_fd, pad; uint64_t cookie; } a = {
            (uint64_t)(uintptr_t)"sys_enter", (uint32_t)p, 0, 0 };
        long l = sys_bpf(CMD_RAW_TRACEPOINT_OPEN, &a, sizeof a);
        if (l < 0) return result("attach-raw-tp", l);
        usleep(1000); /* it runs on every system call meanwhile */
        printf("RESULT attach-raw-tp ok id=%ld\n", prog_id(p));
        return 0;
    }
    if (!strcmp(cmd, "load") && argc == 3) {
        const char *k = argv[2];
        long r;
        if (!strcmp(k, "tracepoint")) r = load(PT_TRACEPOINT, 0, ret0, 2, tok, k);
        else if (!strcmp(k, "raw_tp")) r = load(PT_RAW_TRACEPOINT, 0, ret0, 2, tok, k);
        else if (!strcmp(k, "perf_event")) r = load(PT_PERF_EVENT, 0, ret0, 2, tok, k);
        else if (!strcmp(k, "kprobe")) r = load(PT_KPROBE, 0, ret0, 2, tok, k);
        else if (!strcmp(k, "socket_filter")) r = load(PT_SOCKET_FILTER, 0, ret0, 2, tok, k);
        else if (!strcmp(k, "send_signal")) r = load(PT_TRACEPOINT, 0, send_signal, 4, tok, k);
        else if (!strcmp(k, "probe_read_kernel")) r = load(PT_TRACEPOINT, 0, probe_read_kernel, 7, tok, k);
        else if (!strcmp(k, "unverifiable")) r = load(PT_TRACEPOINT, 0, ret0 + 1, 1, tok, k);
        else if (!strcmp(k, "map") || !strcmp(k, "map_user")) {
            struct map_create_attr m;
            memset(&m, 0, sizeof m);
            m.map_type = 2; /* BPF_MAP_TYPE_ARRAY */
            m.key_size = 4; m.value_size = 8; m.max_entries = 1;
            m.map_flags = F_TOKEN_FD; m.map_token_fd = tok;
            r = sys_bpf(CMD_MAP_CREATE, &m, sizeof m);
            if (r >= 0 && !strcmp(k, "map_user")) {
                const struct insn lookup[] = {
                    {0x62, 0x0a, -4, 0},          /* *(u32 *)(r10 - 4) = 0 */
                    {0x18, 0x11, 0, (int32_t)r},  /* r1 = map (ld_imm64, BPF_PSEUDO_MAP_FD) */
                    {0x00, 0x00, 0, 0},
                    {0xbf, 0xa2, 0, 0},           /* r2 = r10 */
                    {0x07, 0x02, 0, -4},          /* r2 += -4 */
                    {0x85, 0x00, 0, 1},           /* call bpf_map_lookup_elem */
                    MOV0, EXIT };
                r = load(PT_TRACEPOINT, 0, lookup, 8, tok, k);
            }
        } else { fprintf(stderr, "unknown kind %s\n", k); return 2; }
        if (r >= 0 && strcmp(k, "map")) {
            printf("RESULT load %s ok id=%ld\n", k, prog_id(r));
            return 0;
        }
        char what[64];
        snprintf(what, sizeof what, "load %s", k);
        return result(what, r);
    }
    fprintf(stderr, "unknown command %s\n", cmd);
    return 2;
}
