// One OCI container cycle, as containerd-shim-runc-v2 drives it: `RUNTIME create --bundle B ID`,
// `RUNTIME start ID`, wait for the container's process to exit, `RUNTIME delete ID`.
// The driver is a child subreaper, like the shim: the container's init, orphaned when the
// runtime's `create` returns, is re-parented to it, so its exit is a wait() and not a poll of
// `state` (a poll would measure the poll interval). A C program and not a shell or Python so
// that the driver's own start-up stays well under a millisecond of the figure.
// Usage: cycle RUNTIME BUNDLE ID [GLOBAL-FLAG...]   (exit 0 only if all four steps succeeded)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static char *rt;
static char **global;
static int nglobal;

// Runs RUNTIME [GLOBAL...] ARGS... and waits for that process only; 0 when it exited 0.
static int step(char *const args[], int nargs) {
  char *argv[64];
  int n = 0;
  argv[n++] = rt;
  for (int i = 0; i < nglobal && n < 40; i++) argv[n++] = global[i];
  for (int i = 0; i < nargs; i++) argv[n++] = args[i];
  argv[n] = NULL;
  pid_t pid = fork();
  if (pid < 0) return perror("cycle: fork"), -1;
  if (pid == 0) {
    execv(rt, argv);
    perror("cycle: exec the runtime");
    _exit(127);
  }
  int status;
  if (waitpid(pid, &status, 0) < 0) return perror("cycle: waitpid"), -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "cycle: `%s %s %s` failed (status %d)\n", rt, args[0], args[nargs - 1], status);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: cycle RUNTIME BUNDLE ID [GLOBAL-FLAG...]\n");
    return 2;
  }
  rt = argv[1];
  global = argv + 4;
  nglobal = argc - 4;
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return perror("cycle: PR_SET_CHILD_SUBREAPER"), 1;
  char *create[] = {"create", "--bundle", argv[2], argv[3]};
  char *start[] = {"start", argv[3]};
  char *del[] = {"delete", argv[3]};
  char *force[] = {"delete", "--force", argv[3]};
  if (step(create, 4) != 0) return step(force, 3), 1;
  if (step(start, 2) != 0) return step(force, 3), 1;
  // Every remaining child is the container (and whatever of the runtime outlives `start`).
  while (wait(NULL) > 0 || errno == EINTR)
    ;
  return step(del, 2) == 0 ? 0 : 1;
}
