//! The helper table: every helper id of `enum bpf_func_id` (Linux 6.18), its name, its class and
//! where its behaviour is documented. The data is `data/helpers.toml`, compiled in; a test
//! (tests/helper_table.rs) fails when the running kernel's BTF lists an id it lacks.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

/// What a helper does to the world outside the program (docs/bpf.md, "Helper classes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HelperClass {
    /// Reads kernel or user state, time, ids; looks up maps. Changes nothing.
    Observe,
    /// Hands results to userspace: perf and ring buffers, trace_printk, map updates and
    /// deletes, local storage. Changes only state the programs' own readers see.
    Output,
    /// Changes what the kernel or a process does: writes user memory, sends signals, overrides
    /// return values, redirects or rewrites packets, calls bpf(2) or close(2).
    Act,
    /// Changes the program's own control flow: tail calls, timers, loops, callbacks, locks.
    Control,
}

impl HelperClass {
    /// Every class, in the order policies list them.
    pub const ALL: [HelperClass; 4] = [
        HelperClass::Observe,
        HelperClass::Output,
        HelperClass::Act,
        HelperClass::Control,
    ];

    /// The spelling in policies and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            HelperClass::Observe => "observe",
            HelperClass::Output => "output",
            HelperClass::Act => "act",
            HelperClass::Control => "control",
        }
    }
}

impl fmt::Display for HelperClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One helper of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Helper {
    /// `BPF_FUNC_<name>`'s value: the `imm` of a `call` instruction.
    pub id: u32,
    /// The name without `BPF_FUNC_` (`probe_read_kernel`).
    pub name: String,
    /// Its class.
    pub class: HelperClass,
    /// Where what it does is documented (the uapi description's first sentence).
    pub source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    helper: Vec<Helper>,
}

/// The table's text, as compiled in.
pub const TABLE_TOML: &str = include_str!("../data/helpers.toml");

struct Index {
    helpers: Vec<Helper>,
    by_name: HashMap<String, usize>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        // The table is part of the source; tests/helper_table.rs parses it, so this cannot fail
        // in a tested build.
        let table: Table = toml::from_str(TABLE_TOML).expect("data/helpers.toml parses");
        let mut helpers = table.helper;
        helpers.sort_by_key(|h| h.id);
        let by_name = helpers
            .iter()
            .enumerate()
            .map(|(i, h)| (h.name.clone(), i))
            .collect();
        Index { helpers, by_name }
    })
}

/// Every helper, by id.
pub fn all() -> &'static [Helper] {
    &index().helpers
}

/// The helper with this id, or `None` when the table does not know it (refused by default).
pub fn by_id(id: u32) -> Option<&'static Helper> {
    let helpers = &index().helpers;
    helpers
        .binary_search_by_key(&id, |h| h.id)
        .ok()
        .map(|i| &helpers[i])
}

/// The helper with this name (without `bpf_` or `BPF_FUNC_`).
pub fn by_name(name: &str) -> Option<&'static Helper> {
    let index = index();
    index.by_name.get(name).map(|&i| &index.helpers[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_with_unique_dense_ids_and_the_act_helpers_classed_act() {
        let all = all();
        for (i, h) in all.iter().enumerate() {
            assert_eq!(h.id as usize, i, "ids are dense from 0: {h:?}");
            assert!(!h.source.is_empty());
        }
        for name in [
            "probe_write_user",
            "send_signal",
            "send_signal_thread",
            "override_return",
            "sys_bpf",
            "sys_close",
            "set_retval",
            "setsockopt",
            "redirect",
            "skb_store_bytes",
        ] {
            assert_eq!(by_name(name).unwrap().class, HelperClass::Act, "{name}");
        }
        assert_eq!(by_name("tail_call").unwrap().class, HelperClass::Control);
        assert_eq!(
            by_name("ringbuf_output").unwrap().class,
            HelperClass::Output
        );
        assert_eq!(
            by_name("probe_read_kernel").unwrap().class,
            HelperClass::Observe
        );
        assert_eq!(by_id(6).unwrap().name, "trace_printk");
        assert!(by_id(100_000).is_none());
    }
}
