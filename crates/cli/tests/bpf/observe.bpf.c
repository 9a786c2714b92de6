// An observe-only BPF object for the tests: a raw tracepoint and a tracepoint on
// sched_process_exec, each reading a word of kernel memory and nothing else (what an observer
// does; the read needs CAP_PERFMON, the program types too). Built by clang -target bpf.
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

SEC("raw_tracepoint/sched_process_exec")
int wt_test_rawtp(void *ctx)
{
	long v = 0;
	bpf_probe_read_kernel(&v, sizeof(v), ctx);
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int wt_test_tp(void *ctx)
{
	long v = 0;
	bpf_probe_read_kernel(&v, sizeof(v), ctx);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
