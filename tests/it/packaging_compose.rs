//! docker/compose.yaml: `docker-compose config` accepts it and it wires what the deployment
//! needs; Prometheus' config passes `promtool check config`; and the part that runs offline
//! (the haproxy-drain service, from the `make image` image) runs under Compose for real:
//! non-root with the Docker socket's group, healthy by its own HEALTHCHECK, connected to Docker.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::packaging_sidecar::{docker_socket_gid, ensure_image, http_get, IMAGE, IMAGE_USER};
use crate::support::docker::{docker, unique_name};
use crate::support::wait::wait_until;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn compose(project: &str, args: &[&str], env: &[(&str, String)]) -> Output {
    Command::new("docker-compose")
        .arg("--project-name")
        .arg(project)
        .arg("--file")
        .arg(repo("docker/compose.yaml"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("HAPROXY_DRAIN_IMAGE", IMAGE)
        .output()
        .expect("docker-compose runs (the Debian package docker-compose)")
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The Compose project, taken down (containers, network, volumes) on drop.
struct Project {
    name: String,
    env: Vec<(&'static str, String)>,
}

impl Drop for Project {
    fn drop(&mut self) {
        let down = compose(
            &self.name,
            &["down", "--volumes", "--timeout", "5"],
            &self.env,
        );
        if !down.status.success() {
            eprintln!(
                "warning: docker-compose down {}: {}",
                self.name,
                text(&down)
            );
        }
    }
}

#[test]
fn compose_file_passes_docker_compose_config_and_wires_sockets_state_and_monitoring() {
    let env = vec![("DOCKER_GID", docker_socket_gid().to_string())];
    let project = unique_name("compose");
    let output = compose(&project, &["config"], &env);
    let config = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "docker-compose config: {}",
        text(&output)
    );
    for service in [
        "haproxy:",
        "app_1:",
        "app_2:",
        "app_3:",
        "haproxy-drain:",
        "prometheus:",
        "grafana:",
    ] {
        assert!(
            config.contains(&format!("\n  {service}\n")),
            "service {service}\n{config}"
        );
    }
    // The socket directory is one volume, mounted in both; the state has its own volume.
    for mount in [
        "- haproxy-socket:/var/lib/haproxy:rw",
        "- haproxy-socket:/var/run/haproxy:rw",
        "- haproxy-drain-state:/var/lib/haproxy-drain:rw",
        "- /var/run/docker.sock:/var/run/docker.sock:rw",
    ] {
        assert!(config.contains(mount), "{mount}\n{config}");
    }
    let groups = format!("group_add:\n    - '{}'\n    - '99'\n", docker_socket_gid());
    assert!(config.contains(&groups), "{groups}\n{config}");
    // Every file the services mount from the repository exists.
    let root = env!("CARGO_MANIFEST_DIR");
    let mounted: Vec<&str> = config
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- "))
        .filter(|mount| mount.starts_with(root))
        .filter_map(|mount| mount.split(':').next())
        .collect();
    assert_eq!(mounted.len(), 6, "{mounted:?}");
    for path in mounted {
        assert!(
            Path::new(path).is_file(),
            "a mounted file is missing: {path}"
        );
    }
    assert!(
        config.contains("/grafana/haproxy-drain.json"),
        "the dashboard is provisioned"
    );

    // Without the Docker socket's group the file says what to set.
    let missing = compose(&project, &["config"], &[]);
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("set DOCKER_GID"),
        "{}",
        text(&missing)
    );

    // Prometheus' config, with the rule file where the repository has it.
    let dir = tempfile::tempdir().expect("temp dir");
    let prometheus = std::fs::read_to_string(repo("docker/compose/prometheus.yml"))
        .unwrap()
        .replace(
            "/etc/prometheus/haproxy-drain-alerts.yml",
            &repo("prometheus/haproxy-drain-alerts.yml")
                .display()
                .to_string(),
        );
    std::fs::write(dir.path().join("prometheus.yml"), prometheus).unwrap();
    let promtool = Command::new("promtool")
        .args(["check", "config"])
        .arg(dir.path().join("prometheus.yml"))
        .output()
        .expect("promtool runs (Debian package prometheus)");
    assert!(
        promtool.status.success(),
        "promtool check config: {}",
        text(&promtool)
    );
    let grafana = std::fs::read_to_string(repo("docker/compose/grafana/dashboards.yaml")).unwrap();
    assert!(grafana.contains("path: /var/lib/grafana/dashboards"));
    let compose_file = std::fs::read_to_string(repo("docker/compose.yaml")).unwrap();
    assert!(compose_file.contains(
        "../grafana/haproxy-drain.json:/var/lib/grafana/dashboards/haproxy-drain.json:ro"
    ));
}

/// The images of HAProxy, Prometheus and Grafana cannot be pulled here; haproxy-drain's can be
/// built. So its service runs alone (`--no-deps`): it must come up healthy as the non-root user
/// and reach Docker through the group Compose added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_haproxy_drain_service_runs_under_compose_healthy_and_connected_to_docker() {
    tokio::task::spawn_blocking(ensure_image)
        .await
        .expect("image");
    let project = Project {
        name: unique_name("compose"),
        env: vec![("DOCKER_GID", docker_socket_gid().to_string())],
    };
    let up = compose(
        &project.name,
        &["up", "--detach", "--no-build", "--no-deps", "haproxy-drain"],
        &project.env,
    );
    assert!(up.status.success(), "docker-compose up: {}", text(&up));
    let container = format!("{}_haproxy-drain_1", project.name.replace('-', ""));
    let container = if docker(&["inspect", "--format", "{{.Id}}", &container]).is_ok() {
        container
    } else {
        format!("{}_haproxy-drain_1", project.name)
    };
    let inspect =
        |format: &str| docker(&["inspect", "--format", format, &container]).unwrap_or_else(|e| e);
    assert_eq!(inspect("{{.Config.User}}"), IMAGE_USER);

    let health = || inspect("{{if .State.Health}}{{.State.Health.Status}}{{end}}");
    crate::support::wait::wait_until_blocking(
        Duration::from_secs(40),
        "the compose haproxy-drain service to be healthy",
        || health() == "healthy",
    );
    let network = format!("{}_app", project.name.replace('-', ""));
    let ip = inspect("{{range $name, $net := .NetworkSettings.Networks}}{{$net.IPAddress}}{{end}}");
    let metrics = format!("{ip}:9748")
        .parse()
        .unwrap_or_else(|_| panic!("address {ip} on {network}"));
    wait_until(
        Duration::from_secs(20),
        "haproxy_drain_docker_connected 1 on the compose service",
        || async move {
            http_get(metrics, "/metrics")
                .await
                .is_some_and(|body| body.contains("\nhaproxy_drain_docker_connected 1"))
        },
    )
    .await;
}
