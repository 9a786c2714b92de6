//! `net check`: is the guard in place as the bindings say, and has any neighbour been poisoned?
//!
//! The expected table is not guessed: the ruleset the bindings produce is applied in a scratch
//! network namespace and read back with `nft -j`, so both sides of the comparison come out of the
//! same nft and kernel, in the same normal form.

use crate::bindings::{Bindings, PortBinding};
use crate::error::{Error, Result};
use crate::guard::{effective_ports, require_root};
use crate::mac::MacAddr;
use crate::netns::{in_scratch_netns, Netns};
use crate::{netlink, nft, ruleset};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use watertight_report::{Exposition, Location, LogicalLocation, Row, Rule, Severity};

/// What kind of problem a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// The guard's table is not in the ruleset.
    TableMissing,
    /// A chain the guard needs is gone.
    ChainMissing,
    /// A chain in the guard's table that the guard would not create.
    ChainUnexpected,
    /// A chain's hook, priority or policy differs from the guard's.
    ChainAltered,
    /// A rule the guard needs is gone.
    RuleMissing,
    /// A rule the guard would not create.
    RuleUnexpected,
    /// The right rules in another order (order decides what a chain accepts).
    RulesReordered,
    /// A set the guard needs is gone.
    SetMissing,
    /// A set the guard would not create.
    SetUnexpected,
    /// A set's type or flags differ from the guard's.
    SetAltered,
    /// An allowed address is missing from a set.
    ElementMissing,
    /// A set holds an address the bindings do not allow.
    ElementUnexpected,
    /// A bound port is not a port of the bridge.
    PortNotOnBridge,
    /// A static neighbour entry differs from the bindings.
    NeighbourMismatch,
}

impl FindingKind {
    /// The kind's name as JSON spells it (`table_missing`, ...).
    pub fn as_str(self) -> &'static str {
        use FindingKind::*;
        match self {
            TableMissing => "table_missing",
            ChainMissing => "chain_missing",
            ChainUnexpected => "chain_unexpected",
            ChainAltered => "chain_altered",
            RuleMissing => "rule_missing",
            RuleUnexpected => "rule_unexpected",
            RulesReordered => "rules_reordered",
            SetMissing => "set_missing",
            SetUnexpected => "set_unexpected",
            SetAltered => "set_altered",
            ElementMissing => "element_missing",
            ElementUnexpected => "element_unexpected",
            PortNotOnBridge => "port_not_on_bridge",
            NeighbourMismatch => "neighbour_mismatch",
        }
    }

    /// On the one report scale. A poisoned neighbour is spoofing that already happened
    /// (critical); any difference between the live guard and the bindings can let a port spoof
    /// (an extra `accept`, a rule moved ahead of a `drop`) and is high; a bound port that is not on
    /// the bridge cannot spoof through it, but the bindings no longer describe the bridge (medium).
    pub fn severity(self) -> Severity {
        match self {
            FindingKind::NeighbourMismatch => Severity::Critical,
            FindingKind::PortNotOnBridge => Severity::Medium,
            _ => Severity::High,
        }
    }
}

/// One problem, with what it concerns and the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What kind of problem.
    pub kind: FindingKind,
    /// From the kind ([`FindingKind::severity`]).
    pub severity: Severity,
    /// The chain, set, port or namespace concerned.
    pub subject: String,
    /// The evidence: what was expected and what was found.
    pub detail: String,
}

/// The outcome of `net check`.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The bridge checked.
    pub bridge: String,
    /// The nftables table of its guard.
    pub table: String,
    /// How many ports the bindings list.
    pub ports: usize,
    /// How many rules were compared with the guard's.
    pub rules_compared: usize,
    /// How many static neighbour entries were compared.
    pub neighbours_compared: usize,
    /// Every difference found; empty when the guard is intact.
    pub findings: Vec<Finding>,
}

impl CheckReport {
    /// Whether nothing differs from the guard the bindings produce.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// `net check` as a report of the shared stack: a row per finding, the text table it always
/// printed, and metric families for the textfile collector.
impl watertight_report::Report for CheckReport {
    fn command(&self) -> &str {
        "net-check"
    }

    fn rows(&self) -> Vec<Row> {
        self.findings
            .iter()
            .map(|f| {
                let mut rule = Rule::new(
                    format!("net-guard/{}", f.kind.as_str()),
                    format!("bridge guard check: {}", f.kind.as_str().replace('_', " ")),
                );
                rule.severity = Some(f.severity);
                rule.help = Some(format!(
                    "re-apply the guard: watertight net guard --bridge {} --bindings FILE",
                    self.bridge
                ));
                rule.tags.push("network");
                Row {
                    rule,
                    severity: f.severity,
                    message: format!("{}: {}", f.subject, f.detail),
                    location: Location {
                        file: None,
                        region: None,
                        logical: vec![LogicalLocation {
                            name: f.subject.clone(),
                            fully_qualified_name: Some(format!("{}/{}", self.bridge, f.subject)),
                            kind: "resource",
                        }],
                    },
                    fingerprint: Some(format!("{}|{}|{}", f.kind.as_str(), self.bridge, f.subject)),
                    properties: serde_json::Map::new(),
                    gates: true,
                    suppression: None,
                }
            })
            .collect()
    }

    fn write_table(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "bridge {} (table bridge {}): {} ports, {} rules and {} neighbour entries compared",
            self.bridge, self.table, self.ports, self.rules_compared, self.neighbours_compared
        );
        for f in &self.findings {
            let _ = writeln!(
                out,
                "{:<18} {:<24} {}",
                f.kind.as_str(),
                f.subject,
                f.detail
            );
        }
        if self.is_clean() {
            let _ = writeln!(out, "ok: guard in place, no poisoned neighbour");
        } else {
            let _ = writeln!(out, "{} findings", self.findings.len());
        }
    }

    fn write_metrics(&self, out: &mut Exposition) {
        let bridge = self.bridge.as_str();
        let mut per_kind: BTreeMap<FindingKind, usize> = BTreeMap::new();
        for f in &self.findings {
            *per_kind.entry(f.kind).or_default() += 1;
        }
        let mut g = out.gauge(
            "watertight_net_check_findings",
            "Differences between a bridge's live guard (and neighbour caches) and its bindings, by kind.",
        );
        for (kind, n) in per_kind {
            g.sample(
                &[
                    ("bridge", bridge),
                    ("kind", kind.as_str()),
                    ("severity", kind.severity().as_str()),
                ],
                n,
            );
        }
        out.gauge(
            "watertight_net_check_clean",
            "1 when the guard is in place as bound and no neighbour is poisoned.",
        )
        .sample(&[("bridge", bridge)], u8::from(self.is_clean()));
        out.gauge("watertight_net_check_ports", "Ports compared.")
            .sample(&[("bridge", bridge)], self.ports);
        let mut g = out.gauge(
            "watertight_net_check_compared",
            "Guard rules and neighbour entries compared.",
        );
        g.sample(
            &[("bridge", bridge), ("what", "rules")],
            self.rules_compared,
        );
        g.sample(
            &[("bridge", bridge), ("what", "neighbours")],
            self.neighbours_compared,
        );
    }
}

#[derive(Debug, Default, PartialEq)]
struct ChainView {
    spec: BTreeMap<String, Value>,
    rules: Vec<Value>,
}

#[derive(Debug, Default, PartialEq)]
struct SetView {
    spec: BTreeMap<String, Value>,
    elements: Vec<String>,
}

/// A table from `nft -j list table`, without handles, in a form two listings can be compared in.
#[derive(Debug, Default, PartialEq)]
struct TableView {
    chains: BTreeMap<String, ChainView>,
    sets: BTreeMap<String, SetView>,
}

fn without(obj: &serde_json::Map<String, Value>, drop: &[&str]) -> BTreeMap<String, Value> {
    obj.iter()
        .filter(|(k, _)| !drop.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn parse_table(json: &Value) -> Result<TableView> {
    let items = json
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::RulesetJson("no \"nftables\" array".into()))?;
    let mut view = TableView::default();
    for item in items {
        let Some(obj) = item.as_object() else {
            return Err(Error::RulesetJson("an item is not an object".into()));
        };
        for (kind, body) in obj {
            let body = body
                .as_object()
                .ok_or_else(|| Error::RulesetJson(format!("{kind} is not an object")))?;
            let name = || {
                body.get("name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| Error::RulesetJson(format!("{kind} without a name")))
            };
            match kind.as_str() {
                "chain" => {
                    view.chains.entry(name()?).or_default().spec =
                        without(body, &["handle", "name", "table", "family"]);
                }
                "rule" => {
                    let chain = body
                        .get("chain")
                        .and_then(Value::as_str)
                        .ok_or_else(|| Error::RulesetJson("rule without a chain".into()))?;
                    let expr = body
                        .get("expr")
                        .cloned()
                        .ok_or_else(|| Error::RulesetJson("rule without expr".into()))?;
                    view.chains
                        .entry(chain.to_string())
                        .or_default()
                        .rules
                        .push(expr);
                }
                "set" | "map" => {
                    let mut elements: Vec<String> = body
                        .get("elem")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().map(Value::to_string).collect())
                        .unwrap_or_default();
                    elements.sort();
                    let mut spec = without(body, &["handle", "name", "table", "family", "elem"]);
                    spec.insert("kind".into(), Value::String(kind.clone()));
                    view.sets.insert(name()?, SetView { spec, elements });
                }
                _ => {}
            }
        }
    }
    Ok(view)
}

fn finding(kind: FindingKind, subject: impl Into<String>, detail: impl Into<String>) -> Finding {
    Finding {
        kind,
        severity: kind.severity(),
        subject: subject.into(),
        detail: detail.into(),
    }
}

/// Multiset difference `a - b`, keeping `a`'s order.
fn minus<'a>(a: &'a [Value], b: &[Value]) -> Vec<&'a Value> {
    let mut left: HashMap<String, usize> = HashMap::new();
    for v in b {
        *left.entry(v.to_string()).or_default() += 1;
    }
    a.iter()
        .filter(|v| match left.get_mut(&v.to_string()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .collect()
}

/// Compares the live table with the expected one. `texts` maps an expected rule's JSON to the nft
/// text it was written as, so missing rules are reported the way a person would type them.
fn compare(
    expected: &TableView,
    live: &TableView,
    texts: &HashMap<String, String>,
) -> Vec<Finding> {
    use FindingKind::*;
    let mut out = Vec::new();
    let show = |v: &Value| {
        texts
            .get(&v.to_string())
            .cloned()
            .unwrap_or_else(|| v.to_string())
    };
    for (name, exp) in &expected.chains {
        let Some(got) = live.chains.get(name) else {
            out.push(finding(
                ChainMissing,
                name,
                format!("{} rules", exp.rules.len()),
            ));
            continue;
        };
        if got.spec != exp.spec {
            out.push(finding(
                ChainAltered,
                name,
                format!(
                    "expected {}, found {}",
                    serde_json::to_string(&exp.spec).unwrap_or_default(),
                    serde_json::to_string(&got.spec).unwrap_or_default()
                ),
            ));
        }
        if got.rules != exp.rules {
            let missing = minus(&exp.rules, &got.rules);
            let extra = minus(&got.rules, &exp.rules);
            for r in &missing {
                out.push(finding(RuleMissing, name, show(r)));
            }
            for r in &extra {
                out.push(finding(RuleUnexpected, name, show(r)));
            }
            if missing.is_empty() && extra.is_empty() {
                out.push(finding(
                    RulesReordered,
                    name,
                    "same rules in a different order",
                ));
            }
        }
    }
    for name in live
        .chains
        .keys()
        .filter(|n| !expected.chains.contains_key(*n))
    {
        out.push(finding(
            ChainUnexpected,
            name,
            "not produced by the bindings",
        ));
    }
    for (name, exp) in &expected.sets {
        let Some(got) = live.sets.get(name) else {
            out.push(finding(
                SetMissing,
                name,
                format!("{} elements", exp.elements.len()),
            ));
            continue;
        };
        if got.spec != exp.spec {
            out.push(finding(
                SetAltered,
                name,
                format!(
                    "expected {}, found {}",
                    serde_json::to_string(&exp.spec).unwrap_or_default(),
                    serde_json::to_string(&got.spec).unwrap_or_default()
                ),
            ));
        }
        for e in exp.elements.iter().filter(|e| !got.elements.contains(e)) {
            out.push(finding(ElementMissing, name, e.clone()));
        }
        for e in got.elements.iter().filter(|e| !exp.elements.contains(e)) {
            out.push(finding(ElementUnexpected, name, e.clone()));
        }
    }
    for name in live.sets.keys().filter(|n| !expected.sets.contains_key(*n)) {
        out.push(finding(SetUnexpected, name, "not produced by the bindings"));
    }
    out
}

/// The table the bindings produce, as nft lists it, plus the text of each rule.
fn expected_table(
    bridge: &str,
    ports: &[PortBinding],
) -> Result<(TableView, HashMap<String, String>)> {
    let refs: Vec<&PortBinding> = ports.iter().collect();
    let script = ruleset::render_table(bridge, &refs);
    let table = ruleset::table_name(bridge);
    let json = in_scratch_netns(|| {
        nft::apply(&script, "render the expected ruleset")?;
        nft::list_table_json(&table)
    })?
    .ok_or_else(|| {
        Error::RulesetJson("the expected table vanished from the scratch namespace".into())
    })?;
    let view = parse_table(&json)?;
    let mut texts = HashMap::new();
    let written = [
        (ruleset::GUARD_CHAIN, ruleset::guard_rules()),
        (ruleset::BASE_CHAIN, vec![ruleset::BASE_RULE]),
    ];
    for (chain, rules) in written {
        if let Some(chain) = view.chains.get(chain) {
            for (json, text) in chain.rules.iter().zip(rules) {
                texts.insert(json.to_string(), text.to_string());
            }
        }
    }
    Ok((view, texts))
}

/// Neighbour entries (in the calling thread's namespace) for a bound address whose MAC is not the
/// bound one.
fn poisoned_neighbours(
    place: &str,
    owners: &HashMap<IpAddr, (&str, MacAddr)>,
) -> Result<(usize, Vec<Finding>)> {
    let links = netlink::links()?;
    let neighbours = netlink::neighbours()?;
    let mut compared = 0;
    let mut out = Vec::new();
    for n in &neighbours {
        let (Some(mac), Some((iface, want))) = (n.mac, owners.get(&n.ip)) else {
            continue;
        };
        compared += 1;
        if mac != *want {
            let dev = links
                .iter()
                .find(|l| l.index == n.ifindex)
                .map(|l| l.name.clone())
                .unwrap_or_else(|| format!("#{}", n.ifindex));
            out.push(finding(
                FindingKind::NeighbourMismatch,
                place,
                format!(
                    "{} dev {dev} lladdr {mac} ({}) but port {iface:?} owns it with {want}",
                    n.ip,
                    n.state.to_lowercase()
                ),
            ));
        }
    }
    Ok((compared, out))
}

/// Compares the live guard of `bridge` with `bindings` (plus running sandboxes' ports), and the
/// neighbour tables of `namespaces` (the caller's own namespace, the bridge's host side, when
/// empty) with the bound MACs.
pub fn check_guard(bridge: &str, bindings: &Bindings, namespaces: &[Netns]) -> Result<CheckReport> {
    require_root("net check")?;
    crate::bindings::validate_ifname(bridge)?;
    bindings.validate()?;
    let links = netlink::links()?;
    let bridge_link = netlink::find_bridge(&links, bridge)?;
    let mut findings = Vec::new();
    for port in &bindings.ports {
        if let Err(e) = netlink::require_port(&links, bridge_link, &port.iface) {
            findings.push(finding(
                FindingKind::PortNotOnBridge,
                &port.iface,
                e.to_string(),
            ));
        }
    }
    let ports = effective_ports(bridge, bindings, &links, bridge_link)?;
    let table = ruleset::table_name(bridge);
    let (expected, texts) = expected_table(bridge, &ports)?;
    let rules_compared = expected.chains.values().map(|c| c.rules.len()).sum();
    match nft::list_table_json(&table)? {
        None => findings.push(finding(
            FindingKind::TableMissing,
            &table,
            format!("bridge {bridge} has no guard; run `watertight net guard --bridge {bridge} --bindings ...`"),
        )),
        Some(json) => findings.extend(compare(&expected, &parse_table(&json)?, &texts)),
    }
    let mut owners: HashMap<IpAddr, (&str, MacAddr)> = HashMap::new();
    for p in &ports {
        for a in p.addresses() {
            owners.insert(a, (p.iface.as_str(), p.mac));
        }
    }
    let mut neighbours_compared = 0;
    if namespaces.is_empty() {
        let (n, f) = poisoned_neighbours("host", &owners)?;
        neighbours_compared += n;
        findings.extend(f);
    }
    for ns in namespaces {
        let place = ns.path().display().to_string();
        let (n, f) = ns.run(|| poisoned_neighbours(&place, &owners))?;
        neighbours_compared += n;
        findings.extend(f);
    }
    Ok(CheckReport {
        bridge: bridge.to_string(),
        table,
        ports: ports.len(),
        rules_compared,
        neighbours_compared,
        findings,
    })
}

/// Parses `nft -j list table` output; exposed for the fuzz test.
#[doc(hidden)]
pub fn parse_ruleset_json(text: &str) -> Result<usize> {
    let json: Value = serde_json::from_str(text).map_err(|e| Error::RulesetJson(e.to_string()))?;
    let view = parse_table(&json)?;
    Ok(view.chains.values().map(|c| c.rules.len()).sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn listing(rules: Vec<Value>, elems: Vec<Value>) -> Value {
        let mut items = vec![
            json!({"metainfo": {"version": "1.0.6"}}),
            json!({"table": {"family": "bridge", "name": "t", "handle": 1}}),
            json!({"map": {"family": "bridge", "name": "ports", "table": "t", "type": "ifname", "handle": 3, "map": "verdict", "elem": elems}}),
            json!({"chain": {"family": "bridge", "table": "t", "name": "c", "handle": 2}}),
        ];
        for (i, r) in rules.into_iter().enumerate() {
            items.push(json!({"rule": {"family": "bridge", "table": "t", "chain": "c", "handle": 10 + i, "expr": r}}));
        }
        json!({ "nftables": items })
    }

    #[test]
    fn identical_listings_compare_clean_despite_handles() {
        let a = parse_table(&listing(
            vec![json!([{"drop": null}])],
            vec![json!(["a", {"jump": {"target": "c"}}])],
        ))
        .unwrap();
        let mut b_json = listing(
            vec![json!([{"drop": null}])],
            vec![json!(["a", {"jump": {"target": "c"}}])],
        );
        b_json["nftables"][1]["table"]["handle"] = json!(99);
        let b = parse_table(&b_json).unwrap();
        assert!(compare(&a, &b, &HashMap::new()).is_empty());
    }

    #[test]
    fn reports_missing_extra_and_reordered_rules_and_elements() {
        let r1 = json!([{"drop": null}]);
        let r2 = json!([{"accept": null}]);
        let e = json!(["a", {"jump": {"target": "c"}}]);
        let exp = parse_table(&listing(vec![r1.clone(), r2.clone()], vec![e.clone()])).unwrap();
        let kinds = |live: Value| -> Vec<FindingKind> {
            compare(&exp, &parse_table(&live).unwrap(), &HashMap::new())
                .into_iter()
                .map(|f| f.kind)
                .collect()
        };
        assert_eq!(
            kinds(listing(vec![r1.clone()], vec![e.clone()])),
            vec![FindingKind::RuleMissing]
        );
        assert_eq!(
            kinds(listing(
                vec![r1.clone(), r2.clone(), r2.clone()],
                vec![e.clone()]
            )),
            vec![FindingKind::RuleUnexpected]
        );
        assert_eq!(
            kinds(listing(vec![r2.clone(), r1.clone()], vec![e.clone()])),
            vec![FindingKind::RulesReordered]
        );
        assert_eq!(
            kinds(listing(vec![r1.clone(), r2.clone()], vec![])),
            vec![FindingKind::ElementMissing]
        );
    }

    fn sample_report() -> CheckReport {
        CheckReport {
            bridge: "br0".into(),
            table: "watertight_br0".into(),
            ports: 2,
            rules_compared: 9,
            neighbours_compared: 1,
            findings: vec![
                finding(
                    FindingKind::RuleMissing,
                    "guard",
                    "ether saddr != \"x\" drop",
                ),
                finding(
                    FindingKind::NeighbourMismatch,
                    "/proc/1/ns/net",
                    "10.0.0.53 dev eth0 lladdr 02:42:ac:11:00:10",
                ),
                finding(FindingKind::PortNotOnBridge, "veth-x", "not on br0"),
            ],
        }
    }

    #[test]
    fn kinds_spell_as_json_and_rank_on_the_one_scale() {
        for f in sample_report().findings {
            assert_eq!(serde_json::to_value(f.kind).unwrap(), f.kind.as_str());
        }
        assert_eq!(
            FindingKind::NeighbourMismatch.severity(),
            Severity::Critical
        );
        assert_eq!(FindingKind::TableMissing.severity(), Severity::High);
        assert_eq!(FindingKind::PortNotOnBridge.severity(), Severity::Medium);
    }

    #[test]
    fn renders_in_every_format_of_the_shared_stack() {
        use watertight_report::{render, FailOn, Format, Report as _};
        let r = sample_report();
        let table = render(&r, Format::Table);
        assert!(table.starts_with("bridge br0 (table bridge watertight_br0): 2 ports"));
        assert!(table.contains("neighbour_mismatch"), "{table}");
        assert!(table.ends_with("3 findings\n"), "{table}");
        let json: Value = serde_json::from_str(&render(&r, Format::Json)).unwrap();
        assert_eq!(json["findings"][1]["severity"], "critical");
        let sarif: Value = serde_json::from_str(&render(&r, Format::Sarif)).unwrap();
        assert_eq!(sarif["version"], "2.1.0");
        let run = &sarif["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        for res in results {
            let i = res["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[i]["id"], res["ruleId"]);
        }
        assert_eq!(results[0]["ruleId"], "net-guard/rule_missing");
        let levels: Vec<&str> = results
            .iter()
            .map(|r| r["level"].as_str().unwrap())
            .collect();
        assert_eq!(levels, ["error", "error", "warning"]);
        let prom = render(&r, Format::Prometheus);
        let samples = watertight_report::prometheus::read(&prom).unwrap();
        assert!(samples
            .iter()
            .any(|s| s.name == "watertight_net_check_clean" && s.value == 0.0));
        // --fail-on: any finding at info (the command's default), only the poisoning at critical.
        assert_eq!(r.gated(FailOn::At(Severity::Info)), 3);
        assert_eq!(r.gated(FailOn::At(Severity::Critical)), 1);
        assert_eq!(r.exit_code(FailOn::Never), 0);
    }

    #[test]
    fn malformed_listing_is_an_error() {
        assert!(parse_ruleset_json("{}").is_err());
        assert!(parse_ruleset_json("{\"nftables\": [1]}").is_err());
        assert!(parse_ruleset_json("{\"nftables\": [{\"rule\": {}}]}").is_err());
        assert_eq!(parse_ruleset_json("{\"nftables\": []}").unwrap(), 0);
    }
}
