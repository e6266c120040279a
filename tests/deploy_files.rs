//! The files in deploy/ checked by the tools that know their formats (systemd-analyze,
//! hadolint, kubernetes-validate), and run: the binary started with exactly the arguments the
//! Containerfile and the DaemonSet give it, with their volumes mapped to temp directories the
//! way a container runtime would mount them, and the health commands their probes run.
//!
//! The tools are found on PATH or in .venv/bin; `./scripts/test` installs them and sets
//! PORTWARDEN_REQUIRE_DEPLOY_TOOLS=1, which makes a missing tool a failure instead of a skip.

#[path = "support/certs.rs"]
mod certs;
#[path = "support/child.rs"]
mod child;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use certs::Pki;
use child::Spawned;
use serde_yaml::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(std::iter::once(repo().join(".venv/bin")))
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        if std::env::var("PORTWARDEN_REQUIRE_DEPLOY_TOOLS").as_deref() == Ok("1") {
            panic!("{name} is required (PORTWARDEN_REQUIRE_DEPLOY_TOOLS=1) but was not found");
        }
        eprintln!("{name} not found: skipping (./scripts/test installs it)");
    }
    found
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---------------------------------------------------------------------------------------------
// systemd

/// A root directory for systemd-analyze: the system's unit directory (targets the units refer
/// to), our units in /etc/systemd/system, the built binary where ExecStart expects it.
fn systemd_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let system_units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .find(|d| Path::new(d).join("sysinit.target").exists())
        .expect("the system's systemd unit directory");
    let lib = root.path().join("usr/lib/systemd");
    std::fs::create_dir_all(&lib).unwrap();
    let status = Command::new("cp")
        .args(["-a", system_units])
        .arg(lib.join("system"))
        .status()
        .unwrap();
    assert!(status.success());
    let etc = root.path().join("etc/systemd/system");
    std::fs::create_dir_all(&etc).unwrap();
    for unit in ["portwarden.service", "portwarden.socket"] {
        std::fs::copy(repo().join("deploy").join(unit), etc.join(unit)).unwrap();
    }
    let service = std::fs::read_to_string(repo().join("deploy/portwarden.service")).unwrap();
    let exec = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart")
        .split_whitespace()
        .next()
        .unwrap();
    let bin = root.path().join(exec.trim_start_matches('/'));
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_portwarden"), &bin).unwrap();
    root
}

#[test]
fn the_systemd_units_verify_and_the_service_is_exposed_less_than_2_0() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    let root = systemd_root();
    let units: Vec<PathBuf> = ["portwarden.service", "portwarden.socket"]
        .iter()
        .map(|u| root.path().join("etc/systemd/system").join(u))
        .collect();
    let out = Command::new(&analyze)
        .arg("verify")
        .arg(format!("--root={}", root.path().display()))
        .arg("--man=no")
        .args(&units)
        .output()
        .unwrap();
    // verify exits 0 on unknown keys and only warns: any output is a finding.
    assert!(
        out.status.success() && text(&out).trim().is_empty(),
        "{}",
        text(&out)
    );

    let out = Command::new(&analyze)
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(format!("--root={}", root.path().display()))
        .arg(&units[0])
        .output()
        .unwrap();
    let report = text(&out);
    let level: f64 = report
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for portwarden.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}"));
    assert!(level < 2.0, "exposure {level}:\n{report}");
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("exposure level {level:.1}")),
        "README.md should state the measured exposure level {level:.1}"
    );
}

/// A unit that systemd would ignore a line of must fail the check above: the same run on a
/// unit with a misspelt key prints a finding.
#[test]
fn systemd_analyze_verify_reports_a_misspelt_key() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    let root = systemd_root();
    let unit = root.path().join("etc/systemd/system/portwarden.service");
    let text_in = std::fs::read_to_string(&unit).unwrap();
    std::fs::write(
        &unit,
        text_in.replace("NoNewPrivileges=", "NoNewPrivilege="),
    )
    .unwrap();
    let out = Command::new(&analyze)
        .arg("verify")
        .arg(format!("--root={}", root.path().display()))
        .arg("--man=no")
        .arg(&unit)
        .output()
        .unwrap();
    assert!(text(&out).contains("NoNewPrivilege"), "{}", text(&out));
}

// ---------------------------------------------------------------------------------------------
// Container

#[test]
fn the_containerfile_lints_clean_with_hadolint() {
    let Some(hadolint) = tool("hadolint") else {
        return;
    };
    let out = Command::new(hadolint)
        .arg(repo().join("deploy/Containerfile"))
        .output()
        .unwrap();
    assert!(
        out.status.success() && text(&out).trim().is_empty(),
        "{}",
        text(&out)
    );
}

/// Paths inside the container mapped to places on this machine, longest first.
struct Mounts(Vec<(String, PathBuf)>);

impl Mounts {
    fn new(mut pairs: Vec<(String, PathBuf)>) -> Self {
        pairs.sort_by_key(|(inside, _)| std::cmp::Reverse(inside.len()));
        Self(pairs)
    }

    /// `s` with every in-container path replaced by its place here.
    fn map(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (inside, outside) in &self.0 {
            out = out.replace(inside.as_str(), outside.to_str().unwrap());
        }
        out
    }
}

/// The JSON array of a Containerfile instruction (`CMD ["a", "b"]`), continuation lines joined.
fn instruction(containerfile: &str, name: &str) -> Vec<String> {
    let joined = containerfile.replace("\\\n", " ");
    let line = joined
        .lines()
        .rev() // the runtime stage's, when a name appears in both stages
        .find(|l| l.trim_start().starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in the Containerfile"));
    let array = &line[line.find('[').expect("exec form")..];
    serde_json::from_str(array).unwrap_or_else(|e| panic!("{name}: {e}: {array}"))
}

/// Runs `argv` (already mapped) with only `env` from the PORTWARDEN_* family.
fn run(argv: &[String], env: &[(String, String)]) -> Output {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    for (k, _) in std::env::vars() {
        if k.starts_with("PORTWARDEN_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd.output().unwrap()
}

/// Starts `argv` and waits until both listeners are up (the log says so, text or JSON).
fn serve(argv: &[String]) -> (Spawned, u16) {
    let mut cmd = child::through_shell(&argv[0], &[]);
    cmd.args(&argv[1..]);
    // The files' own arguments, with a namespace claim of this test's (others run beside it).
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    cmd.env(
        "PORTWARDEN_NETNS_LOCK",
        format!("@portwarden-deploy-test-{}-{n}", std::process::id()),
    );
    let d = Spawned::start(cmd);
    let line = d.wait_for("listening on tcp ", Duration::from_secs(20));
    let rest = line.split("listening on tcp ").nth(1).unwrap();
    let addr: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || ".:[]".contains(*c))
        .collect();
    let port = addr.rsplit(':').next().unwrap().parse().unwrap();
    d.wait_for("listening on unix:", Duration::from_secs(10));
    (d, port)
}

#[test]
fn the_image_runs_with_its_own_arguments_and_its_healthcheck_passes() {
    let containerfile = std::fs::read_to_string(repo().join("deploy/Containerfile")).unwrap();
    assert!(
        containerfile.contains("COPY deploy/portwarden.toml /out/etc/portwarden/portwarden.toml")
            && containerfile.contains("COPY --from=build /out/etc /etc"),
        "the image's config is deploy/portwarden.toml at /etc/portwarden/portwarden.toml"
    );
    let dir = tempfile::tempdir().unwrap();
    let (etc, state, run_dir) = (
        dir.path().join("etc"),
        dir.path().join("state"),
        dir.path().join("run"),
    );
    for d in [&etc, &state, &run_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    let mounts = Mounts::new(vec![
        (
            "/usr/local/bin/portwarden".into(),
            env!("CARGO_BIN_EXE_portwarden").into(),
        ),
        ("/etc/portwarden".into(), etc.clone()),
        // docker run -v /var/lib/portwarden:... -v /run/portwarden:...
        ("/var/lib/portwarden".into(), state),
        ("/run/portwarden".into(), run_dir),
    ]);
    // The image's config, as the image holds it, but on a free port (7070 may be in use here).
    let config = std::fs::read_to_string(repo().join("deploy/portwarden.toml")).unwrap();
    assert!(config.contains("listen = \"127.0.0.1:7070\""));
    std::fs::write(
        etc.join("portwarden.toml"),
        mounts.map(&config.replace("127.0.0.1:7070", "127.0.0.1:0")),
    )
    .unwrap();

    let argv: Vec<String> = instruction(&containerfile, "ENTRYPOINT")
        .into_iter()
        .chain(instruction(&containerfile, "CMD"))
        .map(|a| mounts.map(&a))
        .collect();
    assert_eq!(
        argv[1..4],
        [
            "serve".to_string(),
            "--config".into(),
            etc.join("portwarden.toml").display().to_string()
        ]
    );
    let (mut daemon, _) = serve(&argv);
    let health: Vec<String> = instruction(&containerfile, "HEALTHCHECK")
        .iter()
        .map(|a| mounts.map(a))
        .collect();
    let healthy = run(&health, &[]);
    assert!(
        healthy.status.success(),
        "{}\n{}",
        text(&healthy),
        daemon.log()
    );
    assert_eq!(String::from_utf8_lossy(&healthy.stdout).trim(), "SERVING");
    assert!(
        daemon.log().contains("\"level\":\"INFO\""),
        "--log-format json: {}",
        daemon.log()
    );

    assert!(daemon.terminate().success());
    let gone = run(&health, &[]);
    assert_eq!(
        gone.status.code(),
        Some(3),
        "unreachable once stopped: {}",
        text(&gone)
    );
}

// ---------------------------------------------------------------------------------------------
// Kubernetes

fn manifests() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![repo().join("deploy/kubernetes")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_kubernetes_manifest_validates_strictly() {
    let Some(validate) = tool("kubernetes-validate") else {
        return;
    };
    let files = manifests();
    assert!(files.len() >= 6, "{files:?}");
    let out = Command::new(validate)
        .arg("--strict")
        .args(&files)
        .output()
        .unwrap();
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    for f in &files {
        assert!(
            report.contains(&format!("{} passed", f.display())),
            "{f:?} not validated:\n{report}"
        );
    }
    assert!(
        !report.contains("WARN") && !report.contains("ERROR"),
        "{report}"
    );
}

/// Every document of every manifest, by `kind/name`.
fn resources() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for f in manifests() {
        let text = std::fs::read_to_string(&f).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).unwrap();
            let key = format!(
                "{}/{}",
                v["kind"].as_str().unwrap(),
                v["metadata"]["name"].as_str().unwrap()
            );
            out.insert(key, v);
        }
    }
    out
}

use serde::Deserialize;

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| s.iter().map(|x| x.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// A container's `env` with literal values and `$(VAR)` references expanded; `field_refs`
/// answers the downward API (`status.hostIP`).
fn container_env(c: &Value, field_refs: &BTreeMap<&str, String>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    for e in c["env"].as_sequence().into_iter().flatten() {
        let name = e["name"].as_str().unwrap().to_string();
        let value = if let Some(v) = e["value"].as_str() {
            let mut v = v.to_string();
            for (k, val) in &env {
                v = v.replace(&format!("$({k})"), val);
            }
            v
        } else {
            let path = e["valueFrom"]["fieldRef"]["fieldPath"].as_str().unwrap();
            field_refs[path].clone()
        };
        env.push((name, value));
    }
    env
}

#[test]
fn the_daemonset_runs_with_its_own_arguments_and_its_probes_and_client_example_work() {
    let all = resources();
    let ds = &all["DaemonSet/portwarden"];
    let spec = &ds["spec"]["template"]["spec"];
    assert_eq!(spec["hostNetwork"].as_bool(), Some(true));
    assert_eq!(
        ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"].as_u64(),
        Some(1)
    );
    let c = &spec["containers"][0];
    let port = c["ports"][0]["containerPort"].as_u64().unwrap();
    let annotations = &ds["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(
        annotations["prometheus.io/port"].as_str(),
        Some(port.to_string().as_str())
    );
    assert_eq!(annotations["prometheus.io/path"].as_str(), Some("/metrics"));
    let svc = &all["Service/portwarden"];
    assert_eq!(svc["spec"]["clusterIP"].as_str(), Some("None"));
    assert_eq!(svc["spec"]["ports"][0]["port"].as_u64(), Some(port));
    let sa = spec["serviceAccountName"].as_str().unwrap();
    assert!(all.contains_key(&format!("ServiceAccount/{sa}")));

    // Volumes, mounted as the kubelet would: ConfigMap keys as files, the TLS Secret as a PKI
    // made here, hostPaths as temp directories.
    let dir = tempfile::tempdir().unwrap();
    let client = all["Pod/portwarden-client"].clone();
    let server_name = client["spec"]["containers"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|c| container_env(c, &BTreeMap::from([("status.hostIP", String::new())])))
        .find(|(k, _)| k == "PORTWARDEN_TLS_SERVER_NAME")
        .map(|(_, v)| v)
        .expect("the TLS client example names the server");
    let pki = Pki::new(&dir.path().join("pki"), &[&server_name]);
    let secret_files = |base: &Path| {
        std::fs::create_dir_all(base).unwrap();
        for (from, to) in [
            (&pki.server_cert, "tls.crt"),
            (&pki.server_key, "tls.key"),
            (&pki.ca, "ca.crt"),
        ] {
            std::fs::copy(from, base.join(to)).unwrap();
        }
    };
    let mut volume_dirs: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut config_text = String::new();
    for v in spec["volumes"].as_sequence().unwrap() {
        let name = v["name"].as_str().unwrap().to_string();
        let place = dir.path().join("volumes").join(&name);
        std::fs::create_dir_all(&place).unwrap();
        if let Some(cm) = v["configMap"]["name"].as_str() {
            let data = &all[&format!("ConfigMap/{cm}")]["data"];
            for (k, text) in data.as_mapping().unwrap() {
                config_text = text.as_str().unwrap().to_string();
                std::fs::write(place.join(k.as_str().unwrap()), &config_text).unwrap();
            }
        } else if v["secret"]["secretName"].as_str() == Some("portwarden-tls") {
            secret_files(&place);
        } else {
            assert!(v["hostPath"]["path"].is_string(), "unexpected volume {v:?}");
        }
        volume_dirs.insert(name, place);
    }
    let mut pairs = vec![(
        "/usr/local/bin/portwarden".to_string(),
        PathBuf::from(env!("CARGO_BIN_EXE_portwarden")),
    )];
    for m in c["volumeMounts"].as_sequence().unwrap() {
        let mut place = volume_dirs[m["name"].as_str().unwrap()].clone();
        if let Some(sub) = m["subPath"].as_str() {
            place = place.join(sub);
        }
        pairs.push((m["mountPath"].as_str().unwrap().to_string(), place));
    }
    let mounts = Mounts::new(pairs);
    // The config file the daemon reads: its paths mapped; the node's port made a free one.
    let listen = format!("listen = \"0.0.0.0:{port}\"");
    assert!(config_text.contains(&listen), "{config_text}");
    let config_path = mounts.map("/etc/portwarden/portwarden.toml");
    std::fs::write(
        &config_path,
        mounts.map(&config_text.replace(&listen, "listen = \"0.0.0.0:0\"")),
    )
    .unwrap();

    let containerfile = std::fs::read_to_string(repo().join("deploy/Containerfile")).unwrap();
    let argv: Vec<String> = instruction(&containerfile, "ENTRYPOINT")
        .into_iter()
        .chain(strings(&c["args"]))
        .map(|a| mounts.map(&a))
        .collect();
    let (mut daemon, real_port) = serve(&argv);
    assert!(
        daemon.log().contains("(TLS, client certificates required)"),
        "{}",
        daemon.log()
    );
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        let cmd: Vec<String> = strings(&c[probe]["exec"]["command"])
            .iter()
            .map(|a| mounts.map(a))
            .collect();
        assert!(!cmd.is_empty(), "{probe} is an exec probe");
        let out = run(&cmd, &[]);
        assert!(out.status.success(), "{probe}: {}", text(&out));
    }

    // The client example, on this "node": its hostPath is the daemon's run directory, its
    // client Secret a certificate of the daemon's CA, its node IP 127.0.0.1.
    let client_dir = dir.path().join("client-tls");
    std::fs::create_dir_all(&client_dir).unwrap();
    std::fs::copy(&pki.client_cert, client_dir.join("tls.crt")).unwrap();
    std::fs::copy(&pki.client_key, client_dir.join("tls.key")).unwrap();
    std::fs::copy(&pki.ca, client_dir.join("ca.crt")).unwrap();
    let host_run = &volume_dirs["run"];
    let refs = BTreeMap::from([("status.hostIP", "127.0.0.1".to_string())]);
    for cc in client["spec"]["containers"].as_sequence().unwrap() {
        let mut pairs = vec![(
            "/usr/local/bin/portwarden".to_string(),
            PathBuf::from(env!("CARGO_BIN_EXE_portwarden")),
        )];
        for m in cc["volumeMounts"].as_sequence().unwrap() {
            let vol = client["spec"]["volumes"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|v| v["name"] == m["name"])
                .unwrap();
            let place = if vol["hostPath"]["path"].as_str() == Some("/run/portwarden") {
                host_run.clone()
            } else {
                client_dir.clone()
            };
            pairs.push((m["mountPath"].as_str().unwrap().to_string(), place));
        }
        let cmounts = Mounts::new(pairs);
        let env: Vec<(String, String)> = container_env(cc, &refs)
            .into_iter()
            .map(|(k, v)| {
                let v = v.replace(&format!(":{port}"), &format!(":{real_port}"));
                (k, cmounts.map(&v))
            })
            .collect();
        let argv: Vec<String> = instruction(&containerfile, "ENTRYPOINT")
            .into_iter()
            .chain(strings(&cc["args"]))
            .map(|a| cmounts.map(&a))
            .collect();
        let out = run(&argv, &env);
        assert!(
            out.status.success(),
            "client container {}: {}",
            cc["name"].as_str().unwrap(),
            text(&out)
        );
    }
    assert!(daemon.terminate().success());
}
