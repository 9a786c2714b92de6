// SPDX-License-Identifier: GPL-2.0
/*
 * watertight exec gate: inside one cgroup v2 subtree, only files whose (device, inode,
 * generation) the supervisor verified against a signed manifest may be executed or mapped as
 * code. Anything else gets SIGKILL and an event on the ring buffer.
 *
 * A verified file rewritten in place (same inode, e.g. on the host, through the caller's
 * directory the sandbox serves read-only) is refused too: the allowed map keeps the inode's
 * change time read at verification, and any write, truncate, chmod or chown changes it.
 *
 * Hooks (all load on kernels that refuse BPF LSM and fentry):
 *   tp_btf/sched_process_exec  every successful execve/execveat (also memfd, also ld.so's target
 *                              when ld.so itself was exec'd: that one is caught at mmap);
 *   tp_btf/sys_enter           mmap(PROT_EXEC) of a file descriptor and mprotect(PROT_EXEC) of a
 *                              file-backed mapping (the paths of `ld.so ./copy` and LD_PRELOAD);
 *   iter/task_file             run by the supervisor at attach time: reports the kernel's own
 *                              (s_dev, i_ino, i_generation) for each verified file it holds open,
 *                              so the keys compared here are read the same way they are set.
 */
#include "wt_kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

#define SIGKILL 9
#define PROT_EXEC 0x4
#define MAP_ANONYMOUS 0x20
#define NR_MMAP 9
#define NR_MPROTECT 10
#define NR_PKEY_MPROTECT 329

/* Event kinds; mirrored in src/gate/event.rs. */
#define WT_EVENT_EXEC 1
#define WT_EVENT_MMAP 2
#define WT_EVENT_MPROTECT 3
/* Or-ed into the kind: the file was verified, but its inode changed since (ctime). */
#define WT_EVENT_CHANGED 0x100
/* I_CTIME_QUERIED (6.13+ multigrain timestamps) lives in bit 31 of i_ctime_nsec. */
#define WT_CTIME_NSEC_MASK 0x7fffffff

struct wt_key {
	__u32 dev;
	__u32 generation;
	__u64 ino;
};

/* The verified inode's change time: the value of the allowed map. */
struct wt_stamp {
	__s64 ctime_sec;
	__u32 ctime_nsec;
	__u32 pad;
};

struct wt_config {
	__u64 cgroup_id;    /* cgroup v2 id of the sandbox; 0 = gate idle */
	__u32 cgroup_level; /* depth of that cgroup below the cgroup2 root */
	__u32 reserved;
};

struct wt_event {
	__u32 pid;
	__u32 kind;
	__u64 ino;
	__u32 dev;
	__u32 generation;
	char comm[16];
};

/* What the iterator writes per open file of the supervisor. */
struct wt_fd_key {
	__u32 fd;
	__u32 dev;
	__u64 ino;
	__u32 generation;
	__u32 pad;
	__u64 magic;
	__s64 ctime_sec;
	__u32 ctime_nsec;
	__u32 pad2;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wt_config);
} wt_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024); /* resized by the loader to the verified tree */
	__type(key, struct wt_key);
	__type(value, struct wt_stamp);
} wt_allowed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} wt_events SEC(".maps");

static __always_inline struct wt_config *config(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&wt_config, &zero);
}

/* True when the current task is in the sandbox cgroup or below it. */
static __always_inline bool in_sandbox(const struct wt_config *cfg)
{
	if (!cfg || !cfg->cgroup_id)
		return false;
	return bpf_get_current_ancestor_cgroup_id(cfg->cgroup_level) == cfg->cgroup_id;
}

static __always_inline void key_of(struct file *file, struct wt_key *key)
{
	struct inode *inode = BPF_CORE_READ(file, f_inode);

	key->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	key->generation = BPF_CORE_READ(inode, i_generation);
	key->ino = BPF_CORE_READ(inode, i_ino);
}

/* The inode's change time, from whichever field this kernel has (the branches for the others
 * are dead once libbpf has relocated the field checks, and the verifier drops them). */
static __always_inline void ctime_of(struct inode *inode, __s64 *sec, __u32 *nsec)
{
	if (bpf_core_field_exists(inode->i_ctime_sec)) {
		*sec = BPF_CORE_READ(inode, i_ctime_sec);
		*nsec = BPF_CORE_READ(inode, i_ctime_nsec) & WT_CTIME_NSEC_MASK;
	} else if (bpf_core_field_exists(((struct inode___ctime_6_6 *)inode)->__i_ctime)) {
		struct inode___ctime_6_6 *i = (void *)inode;
		*sec = BPF_CORE_READ(i, __i_ctime.tv_sec);
		*nsec = BPF_CORE_READ(i, __i_ctime.tv_nsec);
	} else {
		struct inode___ctime_old *i = (void *)inode;
		*sec = BPF_CORE_READ(i, i_ctime.tv_sec);
		*nsec = BPF_CORE_READ(i, i_ctime.tv_nsec);
	}
}

static __always_inline void stamp_of(struct inode *inode, struct wt_stamp *stamp)
{
	__s64 sec;
	__u32 nsec;

	ctime_of(inode, &sec, &nsec);
	stamp->ctime_sec = sec;
	stamp->ctime_nsec = nsec;
}

/* Kills the calling process unless `file` is verified and unchanged since. */
static __always_inline void gate(struct file *file, __u32 kind)
{
	struct wt_key key = {};
	struct wt_stamp now = {};
	struct wt_stamp *verified;
	struct wt_event *ev;

	key_of(file, &key);
	verified = bpf_map_lookup_elem(&wt_allowed, &key);
	if (verified) {
		stamp_of(BPF_CORE_READ(file, f_inode), &now);
		if (verified->ctime_sec == now.ctime_sec && verified->ctime_nsec == now.ctime_nsec)
			return;
		kind |= WT_EVENT_CHANGED;
	}
	bpf_send_signal(SIGKILL);
	ev = bpf_ringbuf_reserve(&wt_events, sizeof(*ev), 0);
	if (!ev)
		return; /* the kill already happened; only the report is lost */
	ev->pid = bpf_get_current_pid_tgid() >> 32;
	ev->kind = kind;
	ev->ino = key.ino;
	ev->dev = key.dev;
	ev->generation = key.generation;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	bpf_ringbuf_submit(ev, 0);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(wt_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct wt_config *cfg = config();
	struct file *file;

	if (!in_sandbox(cfg))
		return 0;
	file = BPF_CORE_READ(bprm, file);
	if (file)
		gate(file, WT_EVENT_EXEC);
	return 0;
}

static __always_inline struct file *file_of_fd(long fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *file = 0;
	unsigned int max_fds;

	if (!fdt || fd < 0)
		return 0;
	max_fds = BPF_CORE_READ(fdt, max_fds);
	if ((unsigned long)fd >= max_fds)
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	return file;
}

struct vma_lookup {
	struct file *file;
};

static long vma_file(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct vma_lookup *out = data;

	out->file = BPF_CORE_READ(vma, vm_file);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(wt_sys_enter, struct pt_regs *regs, long id)
{
	struct wt_config *cfg;
	unsigned long prot;

	/* Cheapest test first: this runs on every syscall on the host. */
	if (id != NR_MMAP && id != NR_MPROTECT && id != NR_PKEY_MPROTECT)
		return 0;
	prot = BPF_CORE_READ(regs, dx);
	if (!(prot & PROT_EXEC))
		return 0;
	cfg = config();
	if (!in_sandbox(cfg))
		return 0;

	if (id == NR_MMAP) {
		struct file *file;

		if (BPF_CORE_READ(regs, r10) & MAP_ANONYMOUS)
			return 0;
		file = file_of_fd((long)BPF_CORE_READ(regs, r8));
		if (file)
			gate(file, WT_EVENT_MMAP);
		return 0;
	}

	{
		struct vma_lookup found = {};
		unsigned long addr = BPF_CORE_READ(regs, di);

		bpf_find_vma(bpf_get_current_task_btf(), addr, vma_file, &found, 0);
		if (found.file)
			gate(found.file, WT_EVENT_MPROTECT);
	}
	return 0;
}

SEC("iter/task_file")
int wt_collect(struct bpf_iter__task_file *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct wt_fd_key out = {};
	struct inode *inode;

	/* The iterator runs in the reading process: report only its own descriptors. Comparing
	 * kernel tgids (not a pid from user space) also holds inside pid namespaces. */
	if (!task || !file || task->tgid != (__u32)(bpf_get_current_pid_tgid() >> 32))
		return 0;
	inode = file->f_inode;
	if (!inode)
		return 0;
	out.fd = ctx->fd;
	out.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	out.ino = BPF_CORE_READ(inode, i_ino);
	out.generation = BPF_CORE_READ(inode, i_generation);
	out.magic = BPF_CORE_READ(inode, i_sb, s_magic);
	{
		__s64 sec;
		__u32 nsec;

		ctime_of(inode, &sec, &nsec);
		out.ctime_sec = sec;
		out.ctime_nsec = nsec;
	}
	bpf_seq_write(seq, &out, sizeof(out));
	return 0;
}
