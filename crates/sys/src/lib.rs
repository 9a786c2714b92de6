//! The only crate in watertight that contains `unsafe`. Every raw syscall the product needs lives
//! here behind a small safe function with a `// SAFETY:` note; all other crates
//! `#![forbid(unsafe_code)]`.
//!
//! One module per concern, each with one owner.

pub mod bpf;
pub mod process;
pub mod seccomp;
