//! Project ports against the real daemon binary: two worktrees of one repository (made with
//! git) get distinct ports that come back after a crash and a restart; a remembered port is
//! passed over by other picks while others are free and given up when none is; a shell and a
//! supervisor asking for the same name share one port; a project belongs to its user; forget
//! releases and forgets; bad paths are refused naming the field, over gRPC, REST and the CLI.

mod common;

#[path = "support/http.rs"]
mod http1;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{cli, ChildDaemon, Owner};
use http1::Addr;
use portwarden_client::proto::{AllocateRequest, ListProjectPortsRequest, ReleaseRequest};
use serde_json::Value;
use tonic::Code;

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// A repository at `root/shop` with a worktree at `root/shop-feature`; both canonical.
fn repository_with_worktree(root: &Path) -> (PathBuf, PathBuf) {
    let main = root.join("shop");
    std::fs::create_dir_all(main.join("src/deep")).unwrap();
    git(&main, &["init", "-q"]);
    git(&main, &["commit", "-q", "--allow-empty", "-m", "start"]);
    git(
        &main,
        &["worktree", "add", "-q", "../shop-feature", "-b", "feature"],
    );
    (
        std::fs::canonicalize(&main).unwrap(),
        std::fs::canonicalize(root.join("shop-feature")).unwrap(),
    )
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn port_of(addr: &str, dir: &Path, name: &str) -> u16 {
    let dir = dir.to_str().unwrap();
    ok(&cli(addr, &["allocate", name, "--project", dir, "--quiet"]))
        .parse()
        .unwrap()
}

fn project_json(addr: &str, dir: &Path) -> Value {
    serde_json::from_str(&ok(&cli(
        addr,
        &["ports", "--project", dir.to_str().unwrap(), "--json"],
    )))
    .unwrap()
}

#[test]
fn two_worktrees_get_distinct_ports_that_come_back_after_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let (main, feature) = repository_with_worktree(tmp.path());
    let state = tempfile::tempdir().unwrap();
    let extra = ["--quarantine", "60s"];
    let mut d = ChildDaemon::spawn(state.path(), "35000-35009", &extra);
    let addr = format!("unix:{}", d.socket.display());
    // A directory inside the worktree is the worktree.
    let web = port_of(&addr, &main.join("src/deep"), "web");
    let api = port_of(&addr, &main, "api");
    let f_web = port_of(&addr, &feature, "web");
    let f_api = port_of(&addr, &feature, "api");
    let mut all = vec![web, api, f_web, f_api];
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 4, "{web} {api} {f_web} {f_api}");
    assert_eq!(
        port_of(&addr, &main, "web"),
        web,
        "asked again: the same port"
    );
    let listed = project_json(&addr, &main);
    assert_eq!(listed["project"], main.to_str().unwrap());
    let names: Vec<&str> = listed["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "web"]);
    assert_eq!(listed["ports"][1]["service"], "web.shop");
    assert_eq!(listed["ports"][1]["variable"], "PORT_WEB");
    // Released (resting 60 s), the daemon killed: each comes back to its own project, in any
    // order, the rest after release not applying to the project that released it.
    for port in [web, api, f_web, f_api] {
        ok(&cli(&addr, &["release", &port.to_string()]));
    }
    d.kill9();
    let d = ChildDaemon::spawn(state.path(), "35000-35009", &extra);
    let addr = format!("unix:{}", d.socket.display());
    // The records were loaded with the state: remembered, not held.
    let listed = project_json(&addr, &feature);
    let remembered: Vec<(u64, &str)> = listed["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["port"].as_u64().unwrap(), p["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        remembered,
        [(u64::from(f_api), "free"), (u64::from(f_web), "free")]
    );
    assert_eq!(port_of(&addr, &feature, "api"), f_api);
    assert_eq!(port_of(&addr, &feature, "web"), f_web);
    assert_eq!(port_of(&addr, &main, "api"), api);
    assert_eq!(port_of(&addr, &main, "web"), web);
}

#[tokio::test]
async fn a_remembered_port_goes_to_others_only_when_nothing_else_is_free() {
    let tmp = tempfile::tempdir().unwrap();
    let project = std::fs::canonicalize(tmp.path()).unwrap();
    let project = project.to_str().unwrap().to_string();
    let state = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(state.path(), "35010-35013", &["--quarantine", "0s"]);
    let mut c = d.unix().await;
    let ask = |service: &str, project: &str| AllocateRequest {
        service: service.into(),
        project: project.into(),
        ..Default::default()
    };
    let mine = common::allocate(&mut c, ask("web", &project)).await;
    c.release(ReleaseRequest {
        port: mine.port,
        ..Default::default()
    })
    .await
    .unwrap();
    // The other three ports are used and given back after it: least recently used first
    // alone would hand out the project's port next.
    let mut churned = Vec::new();
    for s in ["z1", "z2", "z3"] {
        churned.push(common::allocate(&mut c, ask(s, "")).await.port);
    }
    for port in churned {
        c.release(ReleaseRequest {
            port,
            ..Default::default()
        })
        .await
        .unwrap();
    }
    // Three other services take the three ports nobody remembers.
    let mut others = Vec::new();
    for s in ["x1", "x2", "x3"] {
        others.push(common::allocate(&mut c, ask(s, "")).await.port);
    }
    assert!(
        !others.contains(&mine.port),
        "{others:?} took {}",
        mine.port
    );
    // Sticky, not reserved: with nothing else free, the remembered port is given away ...
    let x4 = common::allocate(&mut c, ask("x4", "")).await.port;
    assert_eq!(x4, mine.port);
    // ... and the project gets another one, which its record follows.
    c.release(ReleaseRequest {
        port: others[0],
        ..Default::default()
    })
    .await
    .unwrap();
    let moved = common::allocate(&mut c, ask("web", &project)).await;
    assert_eq!(moved.port, others[0]);
    let ports = c
        .list_project_ports(ListProjectPortsRequest {
            project: project.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .ports;
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].port, others[0]);
}

async fn run(
    c: &portwarden_client::proto::ports_service_client::PortsServiceClient<
        tonic::transport::Channel,
    >,
    req: AllocateRequest,
) -> portwarden_client::proto::AllocateResponse {
    c.clone().allocate(req).await.unwrap().into_inner()
}

#[tokio::test]
async fn a_shell_and_a_supervisor_asking_for_one_name_share_its_port() {
    let tmp = tempfile::tempdir().unwrap();
    let project = std::fs::canonicalize(tmp.path()).unwrap();
    let project = project.to_str().unwrap().to_string();
    let state = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(state.path(), "35020-35025", &[]);
    let mut c = d.unix().await;
    let ask = |pid: Option<i32>| AllocateRequest {
        service: "web".into(),
        project: project.clone(),
        pid,
        ..Default::default()
    };
    // A shell (`portwarden env web`): kept until forgotten.
    let shell = run(&c, ask(None)).await;
    let port = shell.allocation.unwrap().port;
    // A supervisor (`portwarden up`) takes it over: the same port, now its own.
    let first = Owner::spawn(false, false);
    let taken = run(&c, ask(Some(first.pid()))).await;
    assert!(!taken.reused);
    let a = taken.allocation.unwrap();
    assert_eq!((a.port, a.pid), (port, Some(first.pid())));
    assert_eq!(
        common::list(&mut c).await.len(),
        1,
        "handed over, not doubled"
    );
    // The shell asking again is told the port the project holds now.
    let told = run(&c, ask(None)).await;
    assert!(told.reused);
    assert_eq!(told.allocation.unwrap().port, port);
    // The project run twice: the second supervisor gets a port of its own ...
    let mut second = Owner::spawn(false, false);
    let other = run(&c, ask(Some(second.pid()))).await.allocation.unwrap();
    assert_ne!(other.port, port);
    // ... which the record follows; once that run is gone, the port comes back to the project.
    second.kill9();
    assert!(
        common::eventually(std::time::Duration::from_secs(5), || {
            let mut c = c.clone();
            async move { common::list(&mut c).await.len() == 1 }
        })
        .await,
        "the second run's port is reclaimed"
    );
    let third = Owner::spawn(false, false);
    let back = run(&c, ask(Some(third.pid()))).await.allocation.unwrap();
    assert_eq!(back.port, other.port);
    drop(first);
}

#[test]
fn a_project_belongs_to_its_user_and_forget_releases_and_forgets() {
    let tmp = tempfile::tempdir().unwrap();
    let project = std::fs::canonicalize(tmp.path()).unwrap();
    let dir = project.to_str().unwrap();
    let state = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(state.path(), "35030-35035", &[]);
    let addr = format!("unix:{}", d.socket.display());
    let web = port_of(&addr, &project, "web");
    let api = port_of(&addr, &project, "api");
    if common::is_root() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&project, std::fs::Permissions::from_mode(0o755)).unwrap();
        let tcp = format!("http://{}", d.addr);
        for args in [
            vec!["allocate", "web", "--project", dir],
            vec!["forget", "--project", dir],
        ] {
            let out = common::cli_as_nobody(Some(&tcp), &args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(6), "{args:?}: {err}");
            assert!(
                err.contains(&format!("the project {dir} belongs to uid 0")),
                "{err}"
            );
        }
    }
    let gone: Value =
        serde_json::from_str(&ok(&cli(&addr, &["forget", "--project", dir, "--json"]))).unwrap();
    assert_eq!(gone["forgotten"].as_array().unwrap().len(), 2);
    let mut released: Vec<u64> = gone["released"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["port"].as_u64().unwrap())
        .collect();
    released.sort();
    let mut both = vec![u64::from(web), u64::from(api)];
    both.sort();
    assert_eq!(released, both);
    assert_eq!(ok(&cli(&addr, &["list"])), "no allocations");
    assert_eq!(project_json(&addr, &project)["ports"], Value::Array(vec![]));
    let again = ok(&cli(&addr, &["forget", "--project", dir]));
    assert!(again.contains("nothing to forget"), "{again}");
}

#[tokio::test]
async fn the_same_directory_name_in_two_places_gets_a_service_name_of_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a/app"), tmp.path().join("b/app"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let state = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(state.path(), "35040-35045", &[]);
    let mut c = d.unix().await;
    let mut services = Vec::new();
    for dir in [&a, &b] {
        let project = std::fs::canonicalize(dir).unwrap();
        let got = common::allocate(
            &mut c,
            AllocateRequest {
                service: "web".into(),
                project: project.to_str().unwrap().into(),
                ..Default::default()
            },
        )
        .await;
        services.push((got.service, got.port));
    }
    assert_eq!(services[0].0, "web.app");
    assert_eq!(services[1].0, "web.app-2");
    assert_ne!(services[0].1, services[1].1);
}

#[tokio::test]
async fn bad_project_paths_are_refused_naming_the_field() {
    let state = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(state.path(), "35050-35055", &[]);
    let mut c = d.unix().await;
    for bad in [
        "relative/app",
        "/a/../b",
        "/a/./b",
        "/a//b",
        "/a/",
        "/a\u{1b}[31m",
    ] {
        let err = c
            .allocate(AllocateRequest {
                service: "web".into(),
                project: bad.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
        assert!(
            err.message().contains("project:"),
            "{bad}: {}",
            err.message()
        );
        let err = c
            .list_project_ports(ListProjectPortsRequest {
                project: bad.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
    }
    let long = format!("/{}", "x".repeat(1100));
    let err = c
        .allocate(AllocateRequest {
            service: "web".into(),
            project: long,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        err.message().contains("at most 1024 bytes"),
        "{}",
        err.message()
    );
    // REST: the same rules, 400 naming the field; the good path works over loopback TCP.
    let rest = Addr::Tcp(d.addr);
    let r = http1::post_json(
        &rest,
        "/api/ports/allocations",
        &serde_json::json!({"service": "web", "project": "/a/../b"}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json()["details"][0]["field_violations"][0]["field"],
        "project"
    );
    assert_eq!(
        http1::get(&rest, "/api/ports/projects?path=app").status,
        400
    );
    assert_eq!(http1::get(&rest, "/api/ports/projects").status, 400);
    let created = http1::post_json(
        &rest,
        "/api/ports/allocations",
        &serde_json::json!({"service": "web", "project": "/srv/shop"}),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()["allocation"]["service"], "web.shop");
    let again = http1::post_json(
        &rest,
        "/api/ports/allocations",
        &serde_json::json!({"service": "web", "project": "/srv/shop"}),
    );
    assert_eq!(again.status, 200, "handed back: {}", again.text());
    let listed = http1::get(&rest, "/api/ports/projects?path=/srv/shop").json();
    assert_eq!(listed["ports"][0]["state"], "held");
    assert_eq!(listed["ports"][0]["name"], "web");
    let gone = http1::request(
        &rest,
        "DELETE",
        "/api/ports/projects?path=/srv/shop",
        &[],
        None,
    );
    assert_eq!(gone.status, 200, "{}", gone.text());
    assert_eq!(gone.json()["released"].as_array().unwrap().len(), 1);
    // The CLI: a directory that is not there.
    let out = cli(
        &format!("unix:{}", d.socket.display()),
        &["allocate", "web", "--project", "/nonexistent/dir"],
    );
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--project: /nonexistent/dir"));
}

#[tokio::test]
async fn a_service_does_not_take_back_a_port_a_project_remembers_since() {
    let tmp = tempfile::tempdir().unwrap();
    let project = std::fs::canonicalize(tmp.path()).unwrap();
    let project = project.to_str().unwrap().to_string();
    let state = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(state.path(), "35060-35061", &["--quarantine", "0s"]);
    let mut c = d.unix().await;
    let ask = |service: &str, project: &str| AllocateRequest {
        service: service.into(),
        project: project.into(),
        ..Default::default()
    };
    let release = |port: u32| ReleaseRequest {
        port,
        ..Default::default()
    };
    let s = common::allocate(&mut c, ask("s", "")).await.port;
    let t = common::allocate(&mut c, ask("t", "")).await.port;
    c.release(release(s)).await.unwrap();
    // The only free port: the project takes it and remembers it.
    let web = common::allocate(&mut c, ask("web", &project)).await.port;
    assert_eq!(web, s);
    c.release(release(web)).await.unwrap();
    c.release(release(t)).await.unwrap();
    // `s` had that port before; with another port free, it gets the other one ...
    assert_eq!(common::allocate(&mut c, ask("s", "")).await.port, t);
    // ... and the project its own.
    assert_eq!(
        common::allocate(&mut c, ask("web", &project)).await.port,
        web
    );
}
