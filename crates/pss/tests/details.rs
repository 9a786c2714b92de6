//! Forbidden reasons and details, byte for byte as upstream's check_*.go format
//! them, plus the version boundaries where a check's behaviour changes.

use std::path::Path;

use watertight_pss::{evaluate, parse_documents, Evaluation, Level, Version};

fn v(minor: u32) -> Version {
    Version::V { major: 1, minor }
}

fn eval(yaml: &str, level: Level, version: Version) -> Evaluation {
    let (w, e, _) = parse_documents(yaml, Path::new("t.yaml"));
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(w.len(), 1);
    evaluate(&w[0].pod_meta, &w[0].pod_spec, level, version)
}

fn violation(yaml: &str, level: Level, version: Version, check: &str) -> (String, String) {
    let r = eval(yaml, level, version);
    let found = r.violations.iter().find(|x| x.check == check);
    let found = found.unwrap_or_else(|| panic!("{check} did not fire: {:?}", r.violations));
    (found.reason.clone(), found.detail.clone())
}

fn pod(spec: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n{spec}")
}

#[test]
fn baseline_details() {
    let y = pod("  hostPID: true\n  hostIPC: true\n  containers: [{name: a}]\n");
    assert_eq!(
        violation(&y, Level::Baseline, Version::Latest, "hostNamespaces"),
        (
            "host namespaces".into(),
            "hostPID=true, hostIPC=true".into()
        )
    );

    let y = pod("  initContainers: [{name: i, securityContext: {privileged: true}}]\n  containers: [{name: a, securityContext: {privileged: true}}]\n");
    assert_eq!(
        violation(&y, Level::Baseline, Version::Latest, "privileged").1,
        "containers \"i\", \"a\" must not set securityContext.privileged=true"
    );

    let y = pod("  containers: [{name: a, securityContext: {capabilities: {add: [NET_RAW, CHOWN, SYS_ADMIN]}}}]\n");
    assert_eq!(
        violation(&y, Level::Baseline, Version::Latest, "capabilities_baseline"),
        (
            "non-default capabilities".into(),
            "container \"a\" must not include \"NET_RAW\", \"SYS_ADMIN\" in securityContext.capabilities.add".into()
        )
    );

    let y = pod("  containers: [{name: a}]\n  volumes: [{name: h1, hostPath: {path: /}}, {name: e, emptyDir: {}}, {name: h2, hostPath: {path: /x}}]\n");
    assert_eq!(
        violation(&y, Level::Baseline, Version::Latest, "hostPathVolumes"),
        ("hostPath volumes".into(), "volumes \"h1\", \"h2\"".into())
    );

    let y = pod("  containers: [{name: a, ports: [{containerPort: 80, hostPort: 80}, {containerPort: 443, hostPort: 443}]}]\n");
    assert_eq!(
        violation(&y, Level::Baseline, Version::Latest, "hostPorts"),
        (
            "hostPort".into(),
            "container \"a\" uses hostPorts 443, 80".into()
        )
    );

    let y = pod("  securityContext: {windowsOptions: {hostProcess: true}}\n  containers: [{name: a, securityContext: {windowsOptions: {hostProcess: true}}}]\n");
    assert_eq!(
        violation(&y, Level::Baseline, Version::Latest, "windowsHostProcess"),
        (
            "hostProcess".into(),
            "pod and container \"a\" must not set securityContext.windowsOptions.hostProcess=true"
                .into()
        )
    );

    let y = pod("  securityContext: {sysctls: [{name: kernel.msgmax, value: '1'}, {name: net.ipv4.tcp_syncookies, value: '1'}, {name: a.b, value: '1'}]}\n  containers: [{name: a}]\n");
    assert_eq!(
        violation(&y, Level::Baseline, Version::Latest, "sysctls"),
        ("forbidden sysctls".into(), "kernel.msgmax, a.b".into())
    );
}

#[test]
fn selinux_details_keep_upstream_quirk() {
    let y = pod("  securityContext: {seLinuxOptions: {type: spc_t, user: u, role: r}}\n  containers: [{name: a, securityContext: {seLinuxOptions: {type: bad_t}}}]\n");
    assert_eq!(
        violation(&y, Level::Baseline, Version::Latest, "seLinuxOptions").1,
        "pod and container \"a\" set forbidden securityContext.seLinuxOptions: types \"bad_t\", \"spc_t\"; user may not be set; role may not be set"
    );
    // Upstream only describes user/role when a type is also bad.
    let y = pod("  securityContext: {seLinuxOptions: {user: u}}\n  containers: [{name: a}]\n");
    assert_eq!(
        violation(&y, Level::Baseline, Version::Latest, "seLinuxOptions").1,
        "pod set forbidden securityContext.seLinuxOptions: "
    );
    // container_engine_t is allowed from v1.31.
    let y = pod("  containers: [{name: a, securityContext: {seLinuxOptions: {type: container_engine_t}}}]\n");
    assert!(!eval(&y, Level::Baseline, v(30)).allowed);
    assert!(eval(&y, Level::Baseline, v(31)).allowed);
}

#[test]
fn apparmor_fields_and_annotations() {
    let y = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    container.apparmor.security.beta.kubernetes.io/a: unconfined\n    container.apparmor.security.beta.kubernetes.io/b: localhost/ok\nspec:\n  securityContext: {appArmorProfile: {type: Unconfined}}\n  containers: [{name: a, securityContext: {appArmorProfile: {type: Unconfined}}}]\n";
    assert_eq!(
        violation(y, Level::Baseline, v(0), "appArmorProfile"),
        (
            "forbidden AppArmor profiles".into(),
            "pod and container \"a\" and annotation must not set AppArmor profile type to \"Unconfined\", \"container.apparmor.security.beta.kubernetes.io/a=\"unconfined\"\"".into()
        )
    );
}

#[test]
fn seccomp_annotations_before_1_19_and_fields_after() {
    let y = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    seccomp.security.alpha.kubernetes.io/pod: unconfined\n    container.seccomp.security.alpha.kubernetes.io/a: docker/default\nspec:\n  containers: [{name: a}]\n";
    assert_eq!(
        violation(y, Level::Baseline, v(18), "seccompProfile_baseline"),
        (
            "seccompProfile".into(),
            "forbidden annotation seccomp.security.alpha.kubernetes.io/pod=\"unconfined\"".into()
        )
    );
    assert!(
        eval(y, Level::Baseline, v(19)).allowed,
        "annotations are ignored from v1.19"
    );

    let y = pod("  securityContext: {seccompProfile: {type: Unconfined}}\n  containers: [{name: a, securityContext: {seccompProfile: {type: Unconfined}}}]\n");
    assert_eq!(
        violation(&y, Level::Baseline, v(19), "seccompProfile_baseline").1,
        "pod and container \"a\" must not set securityContext.seccompProfile.type to \"Unconfined\""
    );
    let y = pod("  containers: [{name: a}, {name: b, securityContext: {seccompProfile: {type: RuntimeDefault}}}]\n");
    assert_eq!(
        violation(&y, Level::Restricted, Version::Latest, "seccompProfile_restricted").1,
        "pod or container \"a\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\""
    );
}

const GOOD_RESTRICTED: &str = "  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}\n  containers: [{name: a, securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}}]\n";

#[test]
fn restricted_details() {
    assert!(eval(&pod(GOOD_RESTRICTED), Level::Restricted, Version::Latest).allowed);

    let y = pod("  containers: [{name: a}, {name: b, securityContext: {capabilities: {drop: [ALL], add: [NET_BIND_SERVICE, NET_RAW]}}}]\n");
    let r = eval(&y, Level::Restricted, Version::Latest);
    let ids: Vec<&str> = r.violations.iter().map(|x| x.check.as_str()).collect();
    assert_eq!(
        ids,
        [
            "allowPrivilegeEscalation",
            "capabilities_restricted",
            "runAsNonRoot",
            "seccompProfile_restricted"
        ],
        "baseline capabilities check is overridden, order is upstream's"
    );
    let caps = &r.violations[1];
    assert_eq!(caps.reason, "unrestricted capabilities");
    assert_eq!(
        caps.detail,
        "container \"a\" must set securityContext.capabilities.drop=[\"ALL\"]; container \"b\" must not include \"NET_RAW\" in securityContext.capabilities.add"
    );
    assert_eq!(
        r.violations[0].detail,
        "containers \"a\", \"b\" must set securityContext.allowPrivilegeEscalation=false"
    );
    assert_eq!(
        r.violations[2].detail,
        "pod or containers \"a\", \"b\" must set securityContext.runAsNonRoot=true"
    );

    let y = pod("  securityContext: {runAsNonRoot: false, runAsUser: 0, seccompProfile: {type: RuntimeDefault}}\n  containers: [{name: a, securityContext: {runAsNonRoot: false, runAsUser: 0, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}}]\n");
    assert_eq!(
        violation(&y, Level::Restricted, Version::Latest, "runAsNonRoot"),
        (
            "runAsNonRoot != true".into(),
            "pod and container \"a\" must not set securityContext.runAsNonRoot=false".into()
        )
    );
    assert_eq!(
        violation(&y, Level::Restricted, Version::Latest, "runAsUser"),
        (
            "runAsUser=0".into(),
            "pod and container \"a\" must not set runAsUser=0".into()
        )
    );

    // `n` quoted: unquoted it is YAML 1.1's `false` to kubectl (and to the loader).
    let y = pod(&format!("{GOOD_RESTRICTED}  volumes: [{{name: 'n', nfs: {{server: s, path: /}}}}, {{name: g, gitRepo: {{repository: r}}}}, {{name: i, image: {{reference: x}}}}]\n"));
    let r = eval(&y, Level::Restricted, Version::Latest);
    assert_eq!(r.violations.len(), 1, "{r:?}");
    assert_eq!(r.violations[0].check, "restrictedVolumes");
    assert_eq!(r.violations[0].reason, "restricted volume types");
    assert_eq!(
        r.violations[0].detail,
        "volumes [\"g\" \"n\"] have restricted types"
    );
}

#[test]
fn version_boundaries() {
    // allowPrivilegeEscalation exists from v1.8; capabilities_restricted from v1.22.
    let y = pod("  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}\n  containers: [{name: a}]\n");
    let ids = |version| -> Vec<String> {
        eval(&y, Level::Restricted, version)
            .violations
            .into_iter()
            .map(|x| x.check)
            .collect()
    };
    assert!(ids(v(7)).is_empty());
    assert_eq!(ids(v(8)), ["allowPrivilegeEscalation"]);
    assert_eq!(
        ids(v(22)),
        ["allowPrivilegeEscalation", "capabilities_restricted"]
    );

    // Windows pods are exempt from three restricted checks from v1.25.
    let y = pod("  os: {name: windows}\n  securityContext: {runAsNonRoot: true}\n  containers: [{name: a}]\n");
    assert!(!eval(&y, Level::Restricted, v(24)).allowed);
    assert!(eval(&y, Level::Restricted, v(25)).allowed);

    // sysctl safe set grows: 1.27, 1.29, 1.32, 1.37.
    for (name, minor) in [
        ("net.ipv4.ip_local_reserved_ports", 27),
        ("net.ipv4.tcp_keepalive_time", 29),
        ("net.ipv4.tcp_rmem", 32),
        ("net.ipv4.tcp_notsent_lowat", 37),
    ] {
        let y = pod(&format!("  securityContext: {{sysctls: [{{name: {name}, value: '1'}}]}}\n  containers: [{{name: a}}]\n"));
        assert!(!eval(&y, Level::Baseline, v(minor - 1)).allowed, "{name}");
        assert!(eval(&y, Level::Baseline, v(minor)).allowed, "{name}");
        assert!(eval(&y, Level::Baseline, Version::Latest).allowed, "{name}");
    }

    // Probe and lifecycle hosts are forbidden from v1.34.
    let y = pod("  containers:\n  - name: b\n    readinessProbe: {tcpSocket: {host: h2, port: 1}}\n  - name: a\n    livenessProbe: {httpGet: {host: h1, port: 1}}\n    lifecycle: {preStop: {httpGet: {host: h2, port: 1}}}\n");
    assert!(eval(&y, Level::Baseline, v(33)).allowed);
    assert_eq!(
        violation(&y, Level::Baseline, v(34), "hostProbesAndHostLifecycle"),
        (
            "probe or lifecycle host".into(),
            "containers \"a\", \"b\" use probe or lifecycle hosts \"h1\", \"h2\"".into()
        )
    );

    // User namespaces relax baseline procMount and restricted runAsNonRoot/runAsUser
    // from v1.35; restricted still forbids Unmasked via procMount_restricted.
    let y = pod("  hostUsers: false\n  securityContext: {seccompProfile: {type: RuntimeDefault}, runAsUser: 0}\n  containers: [{name: a, securityContext: {procMount: Unmasked, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}}]\n");
    assert!(!eval(&y, Level::Baseline, v(34)).allowed);
    assert!(eval(&y, Level::Baseline, v(35)).allowed);
    let ids: Vec<String> = eval(&y, Level::Restricted, v(35))
        .violations
        .into_iter()
        .map(|x| x.check)
        .collect();
    assert_eq!(ids, ["procMount_restricted"]);
    let ids: Vec<String> = eval(&y, Level::Restricted, v(34))
        .violations
        .into_iter()
        .map(|x| x.check)
        .collect();
    assert_eq!(ids, ["procMount", "runAsNonRoot", "runAsUser"]);
    assert_eq!(
        violation(&y, Level::Restricted, v(35), "procMount_restricted"),
        (
            "procMount".into(),
            "container \"a\" must not set securityContext.procMount to \"Unmasked\"".into()
        )
    );

    // Versions above the newest revision and "latest" behave the same.
    let y = pod("  containers: [{name: a, securityContext: {privileged: true}}]\n");
    assert_eq!(
        eval(&y, Level::Baseline, v(99)).violations,
        eval(&y, Level::Baseline, Version::Latest).violations
    );
    assert!(eval(&y, Level::Privileged, Version::Latest).allowed);
}

#[test]
fn ephemeral_containers_are_checked() {
    let y = pod("  containers: [{name: a}]\n  ephemeralContainers: [{name: debug, securityContext: {privileged: true}}]\n");
    assert_eq!(
        violation(&y, Level::Baseline, Version::Latest, "privileged").1,
        "container \"debug\" must not set securityContext.privileged=true"
    );
}

#[test]
fn aggregate_message_matches_upstream_format() {
    let y = pod(
        "  hostNetwork: true\n  containers: [{name: a, securityContext: {privileged: true}}]\n",
    );
    let r = eval(&y, Level::Baseline, Version::Latest);
    assert_eq!(
        r.forbidden_detail(),
        "host namespaces (hostNetwork=true), privileged (container \"a\" must not set securityContext.privileged=true)"
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["level"], "baseline");
    assert_eq!(json["version"], "latest");
    assert_eq!(json["violations"][0]["check"], "hostNamespaces");
}
