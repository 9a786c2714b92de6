//! The sandbox's layers, one module each, in the order `contain` applies them.

pub mod bpf;
pub mod cgroup;
pub mod dev;
pub mod env;
pub mod fds;
pub mod integrity;
pub mod limits;
pub mod mount;
pub mod namespaces;
pub mod privileges;
pub mod proc;
pub mod rootless;
pub mod seccomp;
pub mod secrets;
pub mod sockets;
pub mod user;
pub mod workbox;
