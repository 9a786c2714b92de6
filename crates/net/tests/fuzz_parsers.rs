//! Fuzzing without nightly: random and mutated inputs (seeded from real samples) thrown at every
//! parser, which must return Ok or Err and never panic.

use proptest::prelude::*;
use watertight_net::check::parse_ruleset_json;
use watertight_net::{parse_static_neighbour, Bindings, MacAddr};

const PORTS: &str = include_str!("fixtures/ports.toml");
/// `nft -j list table` of the guard the bindings above produce (nft 1.0.6).
const LISTING: &str = include_str!("fixtures/guard-listing.json");

/// Applies byte-level edits (overwrite, insert, delete, truncate) to a sample.
fn mutate(sample: &str, edits: &[(usize, u8, u8)]) -> String {
    let bytes = watertight_testkit::mutate(sample.as_bytes().to_vec(), edits);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8)
}

/// Replaces the value at a random path of a JSON document with another JSON value.
fn replace_node(node: &mut serde_json::Value, path: &[usize], with: serde_json::Value) {
    let Some((&step, rest)) = path.split_first() else {
        *node = with;
        return;
    };
    match node {
        serde_json::Value::Array(a) if !a.is_empty() => {
            let i = step % a.len();
            replace_node(&mut a[i], rest, with)
        }
        serde_json::Value::Object(o) if !o.is_empty() => {
            let key = o.keys().nth(step % o.len()).unwrap().clone();
            replace_node(o.get_mut(&key).unwrap(), rest, with)
        }
        _ => *node = with,
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::hash_map(".{0,6}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn samples_parse() {
    assert_eq!(Bindings::parse(PORTS, "ports.toml").unwrap().ports.len(), 2);
    assert_eq!(parse_ruleset_json(LISTING).unwrap(), 25);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn bindings_never_panic(text in ".{0,300}") {
        let _ = Bindings::parse(&text, "fuzz.toml");
    }

    #[test]
    fn mutated_bindings_never_panic(e in edits()) {
        let _ = Bindings::parse(&mutate(PORTS, &e), "fuzz.toml");
    }

    #[test]
    fn macs_never_panic(text in "[0-9a-fA-F:+-]{0,20}", e in edits()) {
        let _ = text.parse::<MacAddr>();
        let _ = mutate("02:42:ac:11:00:35", &e).parse::<MacAddr>();
    }

    #[test]
    fn static_neighbours_never_panic(text in ".{0,60}", e in edits()) {
        let _ = parse_static_neighbour(&text);
        let _ = parse_static_neighbour(&mutate("fd00::53=02:42:ac:11:00:35", &e));
    }

    #[test]
    fn listings_never_panic(text in ".{0,200}", e in edits()) {
        let _ = parse_ruleset_json(&text);
        let _ = parse_ruleset_json(&mutate(LISTING, &e));
    }

    #[test]
    fn structurally_mutated_listings_never_panic(
        path in prop::collection::vec(any::<usize>(), 0..7),
        with in json_value(),
    ) {
        let mut doc: serde_json::Value = serde_json::from_str(LISTING).unwrap();
        replace_node(&mut doc, &path, with);
        let _ = parse_ruleset_json(&doc.to_string());
    }
}
