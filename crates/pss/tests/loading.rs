//! Loader behaviour: every workload kind, lists, multi-document streams, defaults,
//! and per-document / per-file errors that never stop the other files loading.

use std::path::Path;

use watertight_pss::{evaluate, load_path, parse_documents, Level, Version};

const POD_SPEC: &str = r#"
      containers:
      - name: app
        image: nginx
        securityContext:
          privileged: true
"#;

fn manifest(api_version: &str, kind: &str, body: &str) -> String {
    format!(
        "apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: w\n  namespace: ns\n{body}"
    )
}

fn template(indent: usize) -> String {
    let pad = " ".repeat(indent);
    let spec: String = POD_SPEC
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| format!("{pad}{}\n", &l[2..]))
        .collect();
    format!(
        "{pad}template:\n{pad}  metadata:\n{pad}    annotations:\n{pad}      container.apparmor.security.beta.kubernetes.io/app: unconfined\n{pad}  spec:\n{spec}"
    )
}

#[test]
fn every_workload_kind_yields_its_pod_template() {
    let templated = format!("spec:\n  selector: {{}}\n{}", template(2));
    let cases = [
        manifest(
            "v1",
            "Pod",
            &format!("spec:{}", POD_SPEC.replace("\n    ", "\n")),
        ),
        manifest("v1", "PodTemplate", &template(0)),
        manifest("v1", "ReplicationController", &templated),
        manifest("apps/v1", "ReplicaSet", &templated),
        manifest("apps/v1", "Deployment", &templated),
        manifest("extensions/v1beta1", "Deployment", &templated),
        manifest("apps/v1", "DaemonSet", &templated),
        manifest("apps/v1", "StatefulSet", &templated),
        manifest("batch/v1", "Job", &format!("spec:\n{}", template(2))),
        manifest(
            "batch/v1",
            "CronJob",
            &format!(
                "spec:\n  schedule: '* * * * *'\n  jobTemplate:\n    spec:\n{}",
                template(6)
            ),
        ),
    ];
    for text in &cases {
        let (workloads, errors, skipped) = parse_documents(text, Path::new("w.yaml"));
        assert!(errors.is_empty(), "{text}\n{errors:?}");
        assert_eq!((workloads.len(), skipped), (1, 0), "{text}");
        let w = &workloads[0];
        assert_eq!((w.name.as_str(), w.namespace.as_deref()), ("w", Some("ns")));
        assert_eq!(w.pod_spec.containers[0].name, "app");
        // Where the pod spec is in the document, and where its fields were written.
        let spec = match w.kind.as_str() {
            "Pod" => "/spec",
            "PodTemplate" => "/template/spec",
            "CronJob" => "/spec/jobTemplate/spec/template/spec",
            _ => "/spec/template/spec",
        };
        assert_eq!(w.spec_pointer, spec, "{text}");
        let privileged = format!("{spec}/containers/0/securityContext/privileged");
        let line = text
            .lines()
            .position(|l| l.trim_start().starts_with("privileged:"))
            .unwrap()
            + 1;
        let (at, l, _) = w.positions.locate(&privileged).unwrap();
        assert_eq!((at, l), (privileged.as_str(), line), "{text}");
        let result = evaluate(&w.pod_meta, &w.pod_spec, Level::Baseline, Version::Latest);
        let ids: Vec<&str> = result.violations.iter().map(|v| v.check.as_str()).collect();
        if w.kind == "Pod" {
            assert_eq!(ids, ["privileged"], "{text}");
        } else {
            // The template's own metadata (its AppArmor annotation) is what is checked.
            assert_eq!(ids, ["appArmorProfile", "privileged"], "{text}");
        }
    }
}

#[test]
fn lists_and_multi_document_streams_and_skips() {
    let text = r#"
apiVersion: v1
kind: Service
metadata: {name: svc}
---
# only a comment
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: cm}
- apiVersion: v1
  kind: Pod
  metadata: {name: in-list}
  spec:
    containers: [{name: c, image: x}]
- apiVersion: v1
  kind: Pod
  metadata: {name: broken}
  spec:
    containers: [{name: c, image: x, securityContext: {privileged: "yes"}}]
---
apiVersion: v1
kind: Pod
metadata: {name: last}
spec:
  containers: [{name: c, image: x}]
"#;
    let (workloads, errors, skipped) = parse_documents(text, Path::new("all.yaml"));
    let names: Vec<(&str, usize)> = workloads
        .iter()
        .map(|w| (w.name.as_str(), w.document))
        .collect();
    assert_eq!(names, [("in-list", 2), ("last", 3)]);
    // A List item's pod spec is under its item; each document has its own positions.
    assert_eq!(workloads[0].object_pointer, "/items/1");
    assert_eq!(workloads[0].line(), Some(14));
    assert_eq!(workloads[1].object_pointer, "");
    assert_eq!(workloads[1].line(), Some(25));
    assert_eq!(workloads[0].spec_pointer, "/items/1/spec");
    assert_eq!(
        workloads[0]
            .positions
            .locate("/items/1/spec/containers/0/name"),
        Some(("/items/1/spec/containers/0/name", 18, 19))
    );
    assert_eq!(workloads[1].spec_pointer, "/spec");
    assert_eq!(
        workloads[1].positions.locate("/spec/containers/0"),
        Some(("/spec/containers/0", 29, 16))
    );
    assert_eq!(skipped, 2, "Service and ConfigMap");
    assert_eq!(errors.len(), 1, "{errors:?}");
    let message = errors[0].to_string();
    assert_eq!(errors[0].document, Some(2));
    assert!(
        message.starts_with("all.yaml: document 2: items[2]: "),
        "{message}"
    );
    assert!(
        message.contains("broken") && message.contains("privileged"),
        "{message}"
    );
    assert!(!message.contains('\n'));
}

#[test]
fn per_document_errors_name_the_problem() {
    let cases: &[(&str, &str)] = &[
        ("- just\n- a list\n", "not a Kubernetes object"),
        ("kind: Pod\nmetadata: {name: a}\n", "apiVersion"),
        ("apiVersion: v1\nmetadata: {name: a}\n", "kind"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n", "has no pod spec: set spec"),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {}\n",
            "set spec.template.spec",
        ),
        (
            "apiVersion: apps/v9\nkind: Deployment\nmetadata: {name: d}\nspec: {}\n",
            "apps/v9",
        ),
        (
            "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\nspec:\n  template:\n    spec:\n      containers: [{name: c}]\n",
            "not a built-in workload kind",
        ),
        ("apiVersion: v1\nkind: Pod\nspec: [\n", "invalid YAML"),
    ];
    for (text, expected) in cases {
        let (workloads, errors, _) = parse_documents(text, Path::new("x.yaml"));
        assert!(workloads.is_empty(), "{text}");
        assert_eq!(errors.len(), 1, "{text}: {errors:?}");
        let message = errors[0].to_string();
        assert!(message.contains(expected), "{text}: {message}");
        assert!(message.starts_with("x.yaml: document 0: "), "{message}");
    }
    // A custom resource that does not embed a pod is simply skipped.
    let (w, e, skipped) = parse_documents(
        "apiVersion: example.com/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {}\n",
        Path::new("x.yaml"),
    );
    assert!(w.is_empty() && e.is_empty());
    assert_eq!(skipped, 1);
}

#[test]
fn yaml_anchors_merge_keys_and_json() {
    let text = r#"
apiVersion: v1
kind: Pod
metadata: {name: anchors}
spec:
  containers:
  - &base {name: a, image: x, securityContext: {runAsUser: 0}}
  - <<: *base
    name: b
"#;
    let (w, e, _) = parse_documents(text, Path::new("a.yml"));
    assert!(e.is_empty(), "{e:?}");
    let r = evaluate(
        &w[0].pod_meta,
        &w[0].pod_spec,
        Level::Restricted,
        Version::Latest,
    );
    let run_as_user = r
        .violations
        .iter()
        .find(|v| v.check == "runAsUser")
        .unwrap();
    assert_eq!(
        run_as_user.detail,
        "containers \"a\", \"b\" must not set runAsUser=0"
    );

    let json = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j"},
        "spec":{"hostNetwork":true,"containers":[{"name":"c","image":"x","ports":[{"containerPort":8080}]}]}}"#;
    let (w, e, _) = parse_documents(json, Path::new("p.json"));
    assert!(e.is_empty(), "{e:?}");
    // API defaulting: hostNetwork pods get hostPort = containerPort.
    let r = evaluate(
        &w[0].pod_meta,
        &w[0].pod_spec,
        Level::Baseline,
        Version::Latest,
    );
    let host_ports = r
        .violations
        .iter()
        .find(|v| v.check == "hostPorts")
        .unwrap();
    assert_eq!(host_ports.detail, "container \"c\" uses hostPort 8080");

    let (_, e, _) = parse_documents("{\"kind\": ", Path::new("bad.json"));
    assert!(e[0].to_string().contains("invalid JSON"), "{e:?}");
}

#[test]
fn directories_load_recursively_and_keep_going_past_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b");
    std::fs::create_dir_all(&nested).unwrap();
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: NAME}\nspec:\n  containers: [{name: c, image: x}]\n";
    std::fs::write(dir.path().join("one.yaml"), pod.replace("NAME", "one")).unwrap();
    std::fs::write(nested.join("two.YML"), pod.replace("NAME", "two")).unwrap();
    std::fs::write(nested.join("three.json"), r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"three"},"spec":{"containers":[{"name":"c"}]}}"#).unwrap();
    std::fs::write(nested.join("notes.txt"), pod.replace("NAME", "ignored")).unwrap();
    // Not UTF-8 but meant as a manifest (it names apiVersion and kind): an error. Bytes that
    // name neither are some other file, skipped as not Kubernetes.
    std::fs::write(
        dir.path().join("binary.yaml"),
        b"apiVersion: v1\nkind: Pod\nmetadata: {name: \xff}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("image.yaml"), [0xff, 0xfe, 0x00]).unwrap();
    std::fs::write(
        dir.path().join("broken.yaml"),
        "apiVersion: v1\nkind: Pod\nspec: [\n",
    )
    .unwrap();

    let report = load_path(dir.path());
    let mut names: Vec<&str> = report.workloads.iter().map(|w| w.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["one", "three", "two"]);
    assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
    let binary = report
        .errors
        .iter()
        .find(|e| e.file.ends_with("binary.yaml"))
        .unwrap();
    assert_eq!(binary.document, None);
    assert!(binary.to_string().contains("not UTF-8"), "{binary}");
    assert!(report
        .errors
        .iter()
        .any(|e| e.file.ends_with("broken.yaml") && e.document == Some(0)));
    assert_eq!(
        report.not_kubernetes.len(),
        1,
        "{:?}",
        report.not_kubernetes
    );
    assert!(report.not_kubernetes[0].ends_with("image.yaml"));

    // A single file is read whatever its extension.
    let single = load_path(&nested.join("notes.txt"));
    assert_eq!(single.workloads.len(), 1);

    let missing = load_path(&dir.path().join("nope"));
    assert_eq!(missing.errors.len(), 1);
    assert!(
        missing.errors[0].to_string().contains("cannot read"),
        "{}",
        missing.errors[0]
    );
}

#[test]
fn dangling_link_is_a_per_file_error_and_others_still_load() {
    // Root can read any regular file, so a broken symlink is the unreadable file.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        dir.path().join("missing.yaml"),
        dir.path().join("dangling.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("ok.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: ok}\nspec: {containers: [{name: c}]}\n",
    )
    .unwrap();
    let report = load_path(dir.path());
    assert_eq!(report.workloads.len(), 1);
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(
        report.errors[0].file.ends_with("dangling.yaml"),
        "{}",
        report.errors[0]
    );
    assert_eq!(report.errors[0].document, None);
}

#[test]
fn syntax_error_keeps_the_documents_before_it() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: first}\nspec: {containers: [{name: c}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: [unclosed\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: third}\nspec: {containers: [{name: c}]}\n";
    let (workloads, errors, _) = parse_documents(text, Path::new("s.yaml"));
    assert_eq!(workloads.len(), 1);
    assert_eq!(workloads[0].name, "first");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].document, Some(1));
    assert!(
        errors[0].to_string().contains("invalid YAML"),
        "{}",
        errors[0]
    );
}
