//! ansible/rollout.yml for real: `ansible-playbook` against three simulated hosts on this
//! machine (`ansible_connection=local`), each with its own HAProxy, app containers and
//! haproxy-drain container, all under load. Each host's containers carry a backend of their own,
//! because every sidecar here sees every container on the one engine (these sidecars run
//! without `--filter`), and a backend its HAProxy lacks is skipped. `fleet_ansible.rs` runs the
//! playbook over filtered sidecars that share one backend and a fleet budget.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use crate::packaging_sidecar::{Host, WEIGHT};
use crate::packaging_sidecar::{APP_V1, APP_V2};
use crate::support::docker::{docker_ok, ensure_test_images};
use crate::support::load::{Load, LoadReport};

/// testapp whose `/health` answers 500: HAProxy's check of it never passes.
const IMAGE_UNHEALTHY: &str = "haproxy-drain-testapp:packaging-unhealthy";
const HOSTS: [&str; 3] = ["host1", "host2", "host3"];

/// `ansible-playbook` on PATH, else installed from PyPI (`ansible-core`, as `make deps` does).
pub(crate) fn ansible_playbook() -> PathBuf {
    static FOUND: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut found = FOUND.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(path) = found.as_ref() {
        return path.clone();
    }
    let in_path = || {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("ansible-playbook"))
                .find(|candidate| candidate.is_file())
        })
    };
    let scripts = || -> Option<PathBuf> {
        let output = Command::new("python3")
            .args([
                "-c",
                "import sysconfig; print(sysconfig.get_path('scripts'))",
            ])
            .output()
            .ok()?;
        let path =
            PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()).join("ansible-playbook");
        path.is_file().then_some(path)
    };
    let path = in_path().or_else(scripts).unwrap_or_else(|| {
        let install = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "ansible-core>=2.16,<2.20",
            ])
            .output()
            .expect("python3 -m pip runs");
        assert!(
            install.status.success(),
            "pip install ansible-core: {}",
            String::from_utf8_lossy(&install.stderr)
        );
        scripts().expect("ansible-playbook installed by pip")
    });
    *found = Some(path.clone());
    path
}

fn ensure_unhealthy_image() {
    ensure_test_images();
    let mut child = Command::new("docker")
        .args(["build", "--quiet", "-t", IMAGE_UNHEALTHY, "-"])
        .env("DOCKER_BUILDKIT", "0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("docker build runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        write!(
            stdin,
            "FROM {APP_V1}\nENV FAIL_HEALTH=1 APP_VERSION=broken\n"
        )
        .expect("Dockerfile");
    }
    let output = child.wait_with_output().expect("docker build finishes");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The inventory: one line per host naming its sidecar and backend, then the group's settings.
fn inventory(
    dir: &Path,
    hosts: &[Host],
    group_image: &str,
    host_images: &[(&str, &str)],
) -> PathBuf {
    let mut text = String::from("[haproxy_drain_hosts]\n");
    for (name, host) in HOSTS.iter().zip(hosts) {
        text.push_str(&format!(
            "{name} haproxy_drain_sidecar={} haproxy_drain_backend={}",
            host.sidecar.name, host.backend
        ));
        if let Some((_, image)) = host_images.iter().find(|(h, _)| h == name) {
            text.push_str(&format!(" haproxy_drain_image={image}"));
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "\n[haproxy_drain_hosts:vars]\nansible_connection=local\n\
         ansible_python_interpreter={{{{ ansible_playbook_python }}}}\n\
         haproxy_drain_image={group_image}\nhaproxy_drain_timeout=8s\n"
    ));
    let path = dir.join(format!("inventory-{group_image}.ini").replace([':', '/'], "_"));
    std::fs::write(&path, text).expect("write the inventory");
    path
}

/// `ansible-playbook -i INVENTORY rollout.yml EXTRA…` with the project's ansible.cfg.
pub(crate) fn run_playbook(inventory: &Path, extra: &[&str]) -> Output {
    Command::new(ansible_playbook())
        .arg("-i")
        .arg(inventory)
        .arg("rollout.yml")
        .args(extra)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/ansible"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env(
            "ANSIBLE_CONFIG",
            concat!(env!("CARGO_MANIFEST_DIR"), "/ansible/ansible.cfg"),
        )
        .output()
        .expect("ansible-playbook runs")
}

/// For each run of the task whose name starts with `task`, the hosts it reported on, in order.
fn task_hosts(stdout: &str, task: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in stdout.lines() {
        if line.starts_with("TASK [") {
            if let Some(block) = current.take() {
                blocks.push(block);
            }
            if line.starts_with(&format!("TASK [haproxy_drain_roll : {task}")) {
                current = Some(Vec::new());
            }
        } else if let Some(block) = current.as_mut() {
            let status = line.split(": [").next().unwrap_or("");
            if ["ok", "changed", "failed", "fatal", "skipping"].contains(&status) {
                if let Some(host) = line.split('[').nth(1).and_then(|h| h.split(']').next()) {
                    block.push(host.to_string());
                }
            }
        }
    }
    blocks.extend(current);
    blocks
}

fn load_on(hosts: &[Host]) -> Vec<Load> {
    hosts
        .iter()
        .flat_map(|h| {
            [
                Load::start(h.frontend, 2, "/?delay_ms=10"),
                Load::start(h.frontend, 1, "/?delay_ms=300"),
            ]
        })
        .collect()
}

/// The loads' reports summed; the failures are named by host.
async fn stop(loads: Vec<Load>) -> LoadReport {
    let mut total = LoadReport {
        ok: 0,
        failed: 0,
        failures: Vec::new(),
    };
    for (index, load) in loads.into_iter().enumerate() {
        let report = load.stop().await;
        total.ok += report.ok;
        total.failed += report.failed;
        if report.failed > 0 {
            total.failures.push(format!(
                "{}: {} failed, e.g. {:?}",
                HOSTS[index / 2],
                report.failed,
                report.failures.first()
            ));
        }
    }
    total
}

fn image_and_id(container: &str) -> (String, String) {
    let out = docker_ok(&[
        "inspect",
        "--format",
        "{{.Config.Image}} {{.Id}}",
        container,
    ]);
    let (image, id) = out.split_once(' ').expect("image and id");
    (image.to_string(), id.to_string())
}

/// The role's report has `"<app>: <old image> -> <new image> (container <id> -> <id>)"`.
fn changed(stdout: &str, app: &str, new_image: &str) -> bool {
    stdout.lines().any(|line| {
        line.trim().starts_with(&format!("\"{app}: "))
            && line.contains(&format!(" -> {new_image} (container "))
    })
}

/// A host's app containers in the order the role rolls them (by name).
fn apps(host: &Host) -> Vec<String> {
    let mut names: Vec<String> = (1..=host.apps.len()).map(|i| host.app_name(i)).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ansible_rolls_the_fleet_in_batches_and_stops_at_a_host_that_never_gets_healthy() {
    tokio::task::spawn_blocking(|| {
        ansible_playbook();
        ensure_unhealthy_image();
    })
    .await
    .expect("ansible and the unhealthy image");
    let (a, b, c) = tokio::join!(
        Host::start(3, APP_V1),
        Host::start(3, APP_V1),
        Host::start(3, APP_V1)
    );
    let hosts = [a, b, c];
    let started = std::time::Instant::now();
    let phase = |what: &str| {
        eprintln!(
            "packaging_ansible: {what} at +{:.1}s",
            started.elapsed().as_secs_f64()
        )
    };
    for host in &hosts {
        host.sidecar.wait_healthy().await;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    phase("hosts ready");

    // 1. Every host to v2, one host per batch (35% of 3), under load.
    let loads = load_on(&hosts);
    let inv = inventory(dir.path(), &hosts, APP_V2, &[]);
    let output = tokio::task::spawn_blocking(move || run_playbook(&inv, &[]))
        .await
        .unwrap();
    let report = stop(loads).await;
    phase("rollout finished");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let details = format!(
        "{stdout}\n{}\nload: {report:?}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the rollout failed:\n{details}");
    assert_eq!(
        task_hosts(&stdout, "Roll "),
        [["host1"], ["host2"], ["host3"]],
        "one batch per host, in inventory order:\n{details}"
    );
    assert_eq!(
        report.failed, 0,
        "requests failed during the rollout:\n{details}"
    );
    let mut after_first = Vec::new();
    for (name, host) in HOSTS.iter().zip(&hosts) {
        for app in apps(host) {
            let (image, id) = image_and_id(&app);
            assert_eq!(image, APP_V2, "{name}: {app}\n{details}");
            // The old image by name, or by ID when its tag has moved since (docker ps shows that).
            assert!(
                changed(&stdout, &app, APP_V2),
                "{name} reports what changed for {app}:\n{details}"
            );
            after_first.push((app, id));
        }
        for i in 1..=host.apps.len() {
            assert_eq!(host.wait_in_rotation(i).await.weight, WEIGHT);
        }
    }

    // 2. Back to the first image, but host2's copy never gets healthy: host1 rolls, host2 fails
    //    on its first container and keeps the second, host3 is never touched.
    let loads = load_on(&hosts);
    let inv = inventory(dir.path(), &hosts, APP_V1, &[("host2", IMAGE_UNHEALTHY)]);
    let output = tokio::task::spawn_blocking(move || run_playbook(&inv, &[]))
        .await
        .unwrap();
    let report = stop(loads).await;
    phase("rollout finished");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let details = format!(
        "{stdout}\n{}\nload: {report:?}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !output.status.success(),
        "the rollout must fail:\n{details}"
    );
    assert_eq!(
        task_hosts(&stdout, "Roll "),
        [["host1"], ["host2"]],
        "{details}"
    );
    assert!(
        !stdout.contains("[host3]"),
        "host3 is in a later batch:\n{details}"
    );
    assert!(
        stdout.contains("haproxy-drain roll failed on host2"),
        "{details}"
    );
    assert_eq!(report.failed, 0, "requests failed:\n{details}");

    let host1 = apps(&hosts[0]);
    for app in &host1 {
        assert_eq!(image_and_id(app).0, APP_V1, "host1 rolled {app}");
    }
    let host2 = apps(&hosts[1]);
    assert_eq!(image_and_id(&host2[0]).0, IMAGE_UNHEALTHY, "{details}");
    assert!(changed(&stdout, &host2[0], IMAGE_UNHEALTHY), "{details}");
    for app in &host2[1..] {
        assert!(
            stdout.contains(&format!("\"{app}: unchanged ({APP_V2})\"")),
            "{details}"
        );
    }
    for app in host2.iter().skip(1).chain(&apps(&hosts[2])) {
        let before = &after_first.iter().find(|(a, _)| a == app).expect("known").1;
        assert_eq!(&image_and_id(app).1, before, "{app} was not touched");
    }
}
