/* The kernel's side of `run --bpf-observe`, without watertight: the same split (a child in a new
 * user and mount namespace opens the bpffs context, this process, root in the initial namespace,
 * sets the delegation options, makes and mounts it read-only, the child attaches it on a tmpfs
 * at DIR, keeps only CAPS (a hex mask; as ambient capabilities, with SECBIT_NOROOT) and execs the
 * client). crates/cli/tests/run_bpf_observe.rs runs it with watertight's own delegation strings
 * to show what the kernel refuses by itself, since inside watertight the supervisor's vetted load
 * refuses first.
 *
 *   token_harness DIR CMDS PROGS ATTACHS MAPS CAPS -- CLIENT ARGS...   ("-": option not set) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#ifndef FSCONFIG_SET_STRING
#define FSCONFIG_SET_STRING 1
#define FSCONFIG_CMD_CREATE 6
#endif
static void die(const char *m){perror(m);exit(99);}
static void sendfd(int s,int fd){char b='f';struct iovec io={&b,1};char c[CMSG_SPACE(sizeof(int))];struct msghdr m={0};m.msg_iov=&io;m.msg_iovlen=1;m.msg_control=c;m.msg_controllen=sizeof c;struct cmsghdr*h=CMSG_FIRSTHDR(&m);h->cmsg_level=SOL_SOCKET;h->cmsg_type=SCM_RIGHTS;h->cmsg_len=CMSG_LEN(sizeof(int));memcpy(CMSG_DATA(h),&fd,sizeof fd);if(sendmsg(s,&m,0)<0)die("sendmsg");}
static int recvfd(int s){char b;struct iovec io={&b,1};char c[CMSG_SPACE(sizeof(int))];struct msghdr m={0};m.msg_iov=&io;m.msg_iovlen=1;m.msg_control=c;m.msg_controllen=sizeof c;if(recvmsg(s,&m,0)<=0)die("recvmsg");int fd;memcpy(&fd,CMSG_DATA(CMSG_FIRSTHDR(&m)),sizeof fd);return fd;}
static void wr(const char*p,const char*s){int f=open(p,O_WRONLY);if(f<0||write(f,s,strlen(s))<0)die(p);close(f);}

int main(int argc,char**argv){
  int sv[2]; socketpair(AF_UNIX,SOCK_SEQPACKET,0,sv);
  int sync[2]; pipe(sync);
  pid_t c=fork();
  if(c==0){
    close(sv[0]);
    if(unshare(CLONE_NEWUSER|CLONE_NEWNS)<0)die("unshare");
    write(sync[1],"x",1); char x; read(sv[1],&x,1); /* maps written */
    if(setresgid(0,0,0)||setresuid(0,0,0))die("setresuid");
    int fc=syscall(SYS_fsopen,"bpf",1); if(fc<0)die("fsopen");
    sendfd(sv[1],fc); close(fc);
    int mfd=recvfd(sv[1]);
    if(mount(NULL,"/",NULL,MS_REC|MS_PRIVATE,NULL))die("private");
    char bpffs[4096];
    snprintf(bpffs,sizeof bpffs,"%s/bpf",argv[1]);
    if(mount("t",argv[1],"tmpfs",0,NULL))die("tmpfs");
    mkdir(bpffs,0755);
    if(mount(NULL,argv[1],NULL,MS_REMOUNT|MS_BIND|MS_RDONLY,NULL))die("ro");
    if(syscall(SYS_move_mount,mfd,"",AT_FDCWD,bpffs,4))die("move_mount");
    unsigned long long keep=strtoull(argv[6],0,0);
    for(int i=0;i<=40;i++) if(!(keep&(1ULL<<i))) prctl(PR_CAPBSET_DROP,i,0,0,0);
    struct __user_cap_header_struct h={_LINUX_CAPABILITY_VERSION_3,0};
    unsigned long long k1=keep|(1ULL<<8);
    struct __user_cap_data_struct d1[2]={{(unsigned)k1,(unsigned)k1,(unsigned)keep},{k1>>32,k1>>32,keep>>32}};
    if(syscall(SYS_capset,&h,d1))die("capset1");
    for(int i=0;i<=40;i++) if(keep&(1ULL<<i)) if(prctl(PR_CAP_AMBIENT,PR_CAP_AMBIENT_RAISE,i,0,0))die("ambient");
    if(prctl(PR_SET_SECUREBITS, 0x1|0x2|0x4|0x8|0x10|0x20|0x40|0x80))die("securebits");
    struct __user_cap_data_struct d[2]={{(unsigned)keep,(unsigned)keep,(unsigned)keep},{keep>>32,keep>>32,keep>>32}};
    if(syscall(SYS_capset,&h,d))die("capset");
    prctl(PR_SET_NO_NEW_PRIVS,1,0,0,0);
    setenv("BPFFS",bpffs,1);
    execv(argv[8],argv+8); die("exec");
  }
  close(sv[1]); char x; read(sync[0],&x,1);
  char p[64]; snprintf(p,64,"/proc/%d/setgroups",c); wr(p,"deny");
  snprintf(p,64,"/proc/%d/uid_map",c); wr(p,"0 100000 1");
  snprintf(p,64,"/proc/%d/gid_map",c); wr(p,"0 100000 1");
  write(sv[0],"g",1);
  int fc=recvfd(sv[0]);
  const char*k[4]={"delegate_cmds","delegate_progs","delegate_attachs","delegate_maps"};
  for(int i=0;i<4;i++) if(argv[2+i][0]&&strcmp(argv[2+i],"-")) if(syscall(SYS_fsconfig,fc,FSCONFIG_SET_STRING,k[i],argv[2+i],0)){fprintf(stderr,"fsconfig %s=%s: %s\n",k[i],argv[2+i],strerror(errno));exit(98);}
  if(syscall(SYS_fsconfig,fc,FSCONFIG_CMD_CREATE,0,0,0))die("create");
  int m=syscall(SYS_fsmount,fc,1,0x1|0x2|0x4|0x8); if(m<0)die("fsmount");
  sendfd(sv[0],m);
  int st; waitpid(c,&st,0); return WIFEXITED(st)?WEXITSTATUS(st):128;
}
