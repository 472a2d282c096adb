//! `docker-compose up -d --force-recreate` (compose 1.29.2, docker-py) through the gate, under
//! load: the old container's server is drained before compose stops it, nothing is lost, and the
//! new container (same name, new id, maybe a new address) comes back into rotation.

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::Duration;

use crate::gate_world::{assert_ok, engine_host, gate_count, text, GateSocket};
use crate::support::daemon::Daemon;
use crate::support::docker::{
    docker, ensure_test_images, unique_name, TestNetwork, APP_PORT, IMAGE_HC,
};
use crate::support::haproxy::{free_loopback_port, HaproxyFixture};
use crate::support::roll::{blocking, Load};
use crate::support::wait::wait_until;

const WEIGHT: u32 = 10;
const LOAD: [(usize, &str); 2] = [(3, "/?delay_ms=20"), (4, "/?delay_ms=400")];

/// A compose project of two services on a test network; `down` (straight at the engine) on drop.
struct Project {
    name: String,
    dir: tempfile::TempDir,
}

impl Project {
    fn create(network: &TestNetwork, backend: &str) -> Self {
        let name = unique_name("compose").replace('-', "");
        let dir = tempfile::Builder::new()
            .prefix("hdt-compose-")
            .tempdir()
            .expect("temp dir");
        let service = |n: usize| {
            format!(
                "  app{n}:\n    image: {IMAGE_HC}\n    environment:\n      ON_SIGTERM: exit\n      NAME: app{n}\n    \
                 stop_grace_period: 5s\n    labels:\n      haproxy-drain.backend: {backend}\n      \
                 haproxy-drain.server: app{n}\n      haproxy-drain.port: \"{APP_PORT}\"\n      \
                 hdt.test: \"1\"\n      hdt.pid: \"{pid}\"\n",
                pid = std::process::id()
            )
        };
        let file = format!(
            "version: \"2.4\"\nservices:\n{}{}networks:\n  default:\n    external: true\n    name: {}\n",
            service(1),
            service(2),
            network.name
        );
        std::fs::write(dir.path().join("docker-compose.yml"), file).expect("compose file");
        Self { name, dir }
    }

    fn compose(&self, host: &str, args: &[&str]) -> Output {
        Command::new("docker-compose")
            .arg("-p")
            .arg(&self.name)
            .arg("-f")
            .arg(self.dir.path().join("docker-compose.yml"))
            .args(args)
            .env("DOCKER_HOST", host)
            .current_dir(self.dir.path())
            .output()
            .expect("docker-compose runs")
    }

    fn container(&self, service: &str) -> String {
        format!("{}_{service}_1", self.name)
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.compose(&engine_host(), &["down", "-t", "0"]);
        let _ = remove_project(&self.name);
    }
}

fn remove_project(name: &str) -> Result<String, String> {
    let label = format!("label=com.docker.compose.project={name}");
    let ids = docker(&["ps", "-aq", "--filter", &label])?;
    for id in ids.split_whitespace() {
        docker(&["rm", "-f", id])?;
    }
    Ok(ids)
}

fn ip_of(container: &str, network: &str) -> String {
    docker(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"),
        container,
    ])
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compose_force_recreate_through_the_gate_loses_nothing() {
    ensure_test_images();
    let gate = GateSocket::new();
    let backend = unique_name("be");
    let network = blocking(TestNetwork::create).await;
    let project = Project::create(&network, &backend);
    let up = project.compose(&engine_host(), &["up", "-d"]);
    assert_ok(&up, "docker-compose up -d");
    let (one, two) = (project.container("app1"), project.container("app2"));
    for name in [&one, &two] {
        let name = name.clone();
        blocking(move || {
            crate::support::wait::wait_until_blocking(Duration::from_secs(30), "healthy", || {
                docker(&["inspect", "-f", "{{.State.Health.Status}}", &name]).as_deref()
                    == Ok("healthy")
            })
        })
        .await;
    }
    let old_id = docker(&["inspect", "-f", "{{.Id}}", &one]).expect("inspect");

    let port = free_loopback_port();
    let mut sections = format!(
        "frontend fe_compose\n    bind 127.0.0.1:{port}\n    default_backend {backend}\n\
         backend {backend}\n    balance roundrobin\n    option httpchk GET /health\n\
         \x20   default-server inter 500ms fastinter 100ms fall 2 rise 1 weight {WEIGHT}\n"
    );
    for (n, name) in [&one, &two].iter().enumerate() {
        let ip = ip_of(name, &network.name);
        sections.push_str(&format!("    server app{} {ip}:{APP_PORT} check\n", n + 1));
    }
    let haproxy = HaproxyFixture::start(&sections).await;
    let daemon = Daemon::start(&[haproxy.admin_url().to_string()], &[gate.flag()]).await;
    let frontend = SocketAddr::from(([127, 0, 0, 1], port));
    let in_rotation = |daemon: &Daemon, name: String| {
        let client = daemon.client();
        async move {
            client.servers().await.is_ok_and(|servers| {
                servers
                    .iter()
                    .any(|s| s.container.as_deref() == Some(&name) && s.phase == "in_rotation")
            })
        }
    };
    for name in [&one, &two] {
        wait_until(Duration::from_secs(30), "server in rotation", || {
            in_rotation(&daemon, name.clone())
        })
        .await;
    }

    let load = Load::start_mix(frontend, &LOAD);
    let host = gate.host();
    let recreate = blocking({
        let project_dir = project.dir.path().to_path_buf();
        let (name, host) = (project.name.clone(), host.clone());
        move || {
            Command::new("docker-compose")
                .args(["-p", &name, "-f"])
                .arg(project_dir.join("docker-compose.yml"))
                .args(["up", "-d", "--force-recreate", "--no-deps", "app1"])
                .env("DOCKER_HOST", &host)
                .output()
                .expect("docker-compose runs")
        }
    })
    .await;
    assert_ok(
        &recreate,
        "docker-compose up -d --force-recreate app1 through the gate",
    );
    let new_id = docker(&["inspect", "-f", "{{.Id}}", &one]).expect("inspect");
    assert_ne!(
        old_id,
        new_id,
        "compose did not recreate {one}: {}",
        text(&recreate)
    );
    wait_until(
        Duration::from_secs(30),
        "the new container in rotation",
        || in_rotation(&daemon, one.clone()),
    )
    .await;
    let tally = load.stop().await;

    let log = daemon.log();
    assert_eq!(tally.failed, 0, "requests failed: {tally:?}\n{log}");
    assert!(tally.ok > 0, "{tally:?}");
    let metrics = daemon.metrics_text().await;
    assert_eq!(gate_count(&metrics, "stop", "drained"), 1.0, "{metrics}");

    // What compose sent, as the gate saw it: the stop of the old container comes before the
    // rename and the create of the new one, and its remove is not forced.
    let requests: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("docker gate request"))
        .filter_map(|l| l.split("uri=").nth(1))
        .filter(|uri| uri.contains("/containers/") && !uri.contains("/json"))
        .collect();
    eprintln!(
        "compose's container requests through the gate:\n{}",
        requests.join("\n")
    );
    let at = |needle: &str| {
        requests
            .iter()
            .position(|r| r.contains(needle))
            .unwrap_or_else(|| panic!("no {needle} in {requests:#?}"))
    };
    let stop = at(&format!("/containers/{old_id}/stop?t=5"));
    assert!(
        stop < at(&format!("/containers/{old_id}/rename")),
        "{requests:#?}"
    );
    assert!(stop < at("/containers/create"), "{requests:#?}");
}
