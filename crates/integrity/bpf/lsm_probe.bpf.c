// SPDX-License-Identifier: GPL-2.0
/*
 * Loaded only by probe_enforcement(): does this kernel accept a BPF LSM program on
 * bprm_check_security? (Kernels that list `bpf` in their LSMs can still refuse the trampoline at
 * load; `bpftool feature probe` does not notice.) The program allows everything and is never
 * attached.
 */
#include "wt_kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("lsm/bprm_check_security")
int BPF_PROG(wt_lsm_probe, struct linux_binprm *bprm, int ret)
{
	return ret;
}
