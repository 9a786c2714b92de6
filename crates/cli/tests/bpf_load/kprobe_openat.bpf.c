// A kprobe on an arbitrary kernel function: signed under a permissive policy, refused by the
// gatekeeper's default one.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("kprobe/do_sys_openat2")
int on_openat(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
