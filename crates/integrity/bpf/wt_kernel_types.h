/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The few kernel types the exec gate touches, trimmed from
 * `bpftool btf dump file /sys/kernel/btf/vmlinux format c` (Linux 6.18).
 *
 * Every struct carries preserve_access_index, so clang emits CO-RE relocations and libbpf fixes
 * the field offsets against the running kernel's BTF at load time: only field NAMES must match,
 * not layouts. Committing this trimmed header (instead of generating a 2.8 MB vmlinux.h at build
 * time) keeps the build independent of the build host's kernel and of bpftool.
 */
#ifndef WT_KERNEL_TYPES_H
#define WT_KERNEL_TYPES_H

typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;
typedef int pid_t;
typedef __u32 dev_t;
typedef __s64 time64_t;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
enum { false = 0, true = 1 };

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_RINGBUF = 27,
};

enum {
	BPF_ANY = 0,
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip,
		cs, flags, sp, ss;
};

struct super_block {
	dev_t s_dev;
	unsigned long s_magic;
};

struct inode {
	unsigned long i_ino;
	__u32 i_generation;
	struct super_block *i_sb;
	/* Linux 6.11+. Since 6.13 bit 31 of the nanoseconds is the multigrain I_CTIME_QUERIED
	 * flag, not time. */
	time64_t i_ctime_sec;
	u32 i_ctime_nsec;
};

struct timespec64 {
	time64_t tv_sec;
	long tv_nsec;
};

/* The inode's change time on older kernels (CO-RE flavours: libbpf matches them to the running
 * kernel's struct inode by the name before "___"): 6.6 to 6.10, and before 6.6. */
struct inode___ctime_6_6 {
	struct timespec64 __i_ctime;
};

struct inode___ctime_old {
	struct timespec64 i_ctime;
};

struct file {
	struct inode *f_inode;
	unsigned int f_mode;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

struct task_struct {
	pid_t pid;
	pid_t tgid;
	char comm[16];
	struct files_struct *files;
};

struct linux_binprm {
	struct file *file;
};

struct vm_area_struct {
	unsigned long vm_start;
	unsigned long vm_end;
	struct file *vm_file;
};

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
};

struct bpf_iter__task_file {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
	__u32 fd;
	struct file *file;
};

#pragma clang attribute pop

#endif
