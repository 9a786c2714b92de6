// Test helper: loads program PROG of the BPF object OBJ with libbpf (only that one), attaches it
// when asked, prints "ID TAG" (TAG as 16 hex digits, as bpftool prints it without colons) or the
// step that failed and its errno, then, with "hold", keeps the program (and link) until its
// standard input closes: the process holding it is what `watertight audit host` names.
//   holder OBJ PROG [attach] [hold]
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3)
		return 64;
	int attach = 0, hold = 0;
	for (int i = 3; i < argc; i++) {
		attach |= strcmp(argv[i], "attach") == 0;
		hold |= strcmp(argv[i], "hold") == 0;
	}
	libbpf_set_print(NULL);
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		printf("open: %s\n", strerror(errno));
		return 1;
	}
	struct bpf_program *p;
	bpf_object__for_each_program(p, obj)
		bpf_program__set_autoload(p, strcmp(bpf_program__name(p), argv[2]) == 0);
	int err = bpf_object__load(obj);
	if (err) {
		printf("load: %s\n", strerror(-err));
		return 2;
	}
	p = bpf_object__find_program_by_name(obj, argv[2]);
	struct bpf_link *link = NULL;
	if (attach) {
		link = bpf_program__attach(p);
		if (!link) {
			printf("attach: %s\n", strerror(errno));
			return 3;
		}
	}
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len)) {
		printf("info: %s\n", strerror(errno));
		return 4;
	}
	printf("%u ", info.id);
	for (int i = 0; i < 8; i++)
		printf("%02x", info.tag[i]);
	printf("\n");
	fflush(stdout);
	if (hold) {
		char buf[64];
		while (read(0, buf, sizeof(buf)) > 0)
			;
	}
	bpf_link__destroy(link);
	bpf_object__close(obj);
	return 0;
}
