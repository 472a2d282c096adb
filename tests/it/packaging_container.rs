//! haproxy-drain running as a container from its own image (`make image`), end to end, under
//! load, with HAProxy configured like haproxy/haproxy.cfg (no `retry-on`): every zero below
//! comes from the drain, not from HAProxy replaying requests.

use std::time::Duration;

use haproxy_drain::haproxy::AdminState;

use crate::packaging_sidecar::{Host, IMAGE_USER, SOCKET_GID, WEIGHT};
use crate::support::docker::{docker, docker_ok, IMAGE_HC, IMAGE_V2};
use crate::support::load::{Load, LoadReport};

/// Short requests for throughput, and long ones so that every drain has sessions to wait for.
fn start_load(host: &Host) -> (Load, Load) {
    (
        Load::start(host.frontend, 3, "/?delay_ms=10"),
        Load::start(host.frontend, 2, "/?delay_ms=400"),
    )
}

async fn stop_load(load: (Load, Load)) -> LoadReport {
    let (short, long) = (load.0.stop().await, load.1.stop().await);
    LoadReport {
        ok: short.ok + long.ok,
        failed: short.failed + long.failed,
        failures: short.failures.into_iter().chain(long.failures).collect(),
    }
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("blocking work did not panic")
}

fn ip_on(container: &str, network: &str) -> String {
    docker_ok(&[
        "inspect",
        "--format",
        &format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"),
        container,
    ])
}

/// The image as deployed: non-root with the sockets' groups, healthy by its own HEALTHCHECK.
/// Then, under load: `docker restart`, a reload of HAProxy (the socket file is replaced under
/// the mounted directory), a recreate by hand (stop, rm, run: what Compose does) and a
/// `haproxy-drain roll` through `docker exec` (what the Ansible role does) — no request lost,
/// every server back at its original weight on its container's current address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_container_restarts_reloads_recreates_and_rolls_with_no_request_lost() {
    let mut host = Host::start(3, IMAGE_HC).await;
    assert_eq!(host.sidecar.inspect("{{.Config.User}}"), IMAGE_USER);
    let groups = host.sidecar.inspect("{{json .HostConfig.GroupAdd}}");
    assert!(groups.contains(&format!("\"{SOCKET_GID}\"")), "{groups}");
    host.sidecar.wait_healthy().await;

    // 0. HAProxy restarted (not reloaded): a new process, a new socket file. The sidecar has
    //    the directory mounted, so it sees the new file and puts its state back.
    let inode = |path: &std::path::Path| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).map(|m| m.ino()).unwrap_or(0)
    };
    let before = inode(&host.socket_dir.admin_socket());
    host.restart_haproxy().await;
    assert_ne!(
        inode(&host.socket_dir.admin_socket()),
        before,
        "a new socket file"
    );
    host.sidecar.wait_ready().await;

    let load = start_load(&host);
    // 1. docker restart.
    let app1 = host.app_name(1);
    blocking(move || docker_ok(&["restart", "-t", "10", &app1])).await;
    host.wait_in_rotation(1).await;

    // 2. HAProxy reload under load: a new worker takes the listeners and the socket over.
    host.haproxy().reload().await;
    for i in 1..=3 {
        host.wait_in_rotation(i).await;
    }

    // 3. Recreate by hand, after the reload (so the sidecar must be on the new socket).
    let app2 = host.app_name(2);
    let spec = host.apps[1].spec.clone();
    let network = host.network.name.clone();
    let (old_id, new_ip) = blocking(move || {
        let old_id = docker_ok(&["inspect", "--format", "{{.Id}}", &app2]);
        docker_ok(&["stop", "-t", "10", &app2]);
        docker_ok(&["rm", &app2]);
        let mut args = vec!["run", "-d", "--name", &app2, "--network", &network];
        let labels: Vec<String> = spec
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .chain([
                "hdt.test=1".to_string(),
                format!("hdt.pid={}", std::process::id()),
            ])
            .collect();
        for label in &labels {
            args.extend(["--label", label.as_str()]);
        }
        let env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for pair in &env {
            args.extend(["-e", pair.as_str()]);
        }
        args.push(&spec.image);
        docker_ok(&args);
        (old_id, ip_on(&app2, &network))
    })
    .await;
    let state = host.wait_in_rotation(2).await;
    assert_eq!(
        state.addr, new_ip,
        "app2 is served at its new container's address"
    );
    let new_id = docker_ok(&["inspect", "--format", "{{.Id}}", &host.app_name(2)]);
    assert_ne!(new_id, old_id, "app2 was recreated");

    // 4. A roll through docker exec.
    let app3 = host.app_name(3);
    let sidecar_roll = {
        let name = host.sidecar.name.clone();
        let app3 = app3.clone();
        blocking(move || {
            std::process::Command::new("docker")
                .args(["exec", &name, "/haproxy-drain", "roll", &app3])
                .args(["--image", IMAGE_V2, "--timeout", "30s"])
                .output()
                .expect("docker exec runs")
        })
        .await
    };
    let report = stop_load(load).await;
    let details = format!(
        "roll: {:?}\n{}\n{}\nload: {report:?}\nsidecar logs:\n{}",
        sidecar_roll.status.code(),
        String::from_utf8_lossy(&sidecar_roll.stdout),
        String::from_utf8_lossy(&sidecar_roll.stderr),
        host.sidecar.logs()
    );
    assert!(sidecar_roll.status.success(), "{details}");
    assert_eq!(
        docker_ok(&["inspect", "--format", "{{.Config.Image}}", &app3]),
        IMAGE_V2
    );
    for i in 1..=3 {
        let state = host.wait_in_rotation(i).await;
        assert_eq!(state.weight, WEIGHT);
    }
    assert_eq!(report.failed, 0, "requests failed:\n{details}");
    assert!(report.ok > 100, "the load ran: {report:?}");
    // Each server was restored by the sidecar (so it drove the restarted HAProxy's new socket).
    let metrics = crate::packaging_sidecar::http_get(host.sidecar.metrics, "/metrics")
        .await
        .unwrap_or_default();
    for i in 1..=3 {
        let restored = format!(
            "haproxy_drain_restores_total{{result=\"restored\",proxy=\"{}\",server=\"app{i}\"}}",
            host.backend
        );
        assert!(metrics.contains(&restored), "{restored} in\n{metrics}");
    }
}

/// The sidecar container restarted while it drains a server: the ownership record is on the
/// volume, so the new container finishes the job — the server ends back in rotation at its
/// original weight (without the record it would look like an operator's and stay out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_container_restarted_mid_drain_loses_nothing() {
    let host = Host::start(3, IMAGE_HC).await;
    // Requests of 1.5 s keep app1's drain going while the sidecar restarts.
    let short = Load::start(host.frontend, 3, "/?delay_ms=10");
    let long = Load::start(host.frontend, 3, "/?delay_ms=1500");
    wait_for_long_requests(&host).await;

    let app1 = host.app_name(1);
    let restart = tokio::task::spawn_blocking(move || docker(&["restart", "-t", "20", &app1]));
    host.wait_state(1, "drained by the sidecar", |s| {
        s.admin.as_admin_state() == AdminState::Drain
    })
    .await;
    let name = host.sidecar.name.clone();
    blocking(move || docker_ok(&["restart", "-t", "10", &name])).await;
    host.sidecar.wait_ready().await;
    restart
        .await
        .expect("docker restart did not panic")
        .expect("docker restart app1");

    let state = host.wait_in_rotation(1).await;
    let (short, long) = (short.stop().await, long.stop().await);
    let details = format!(
        "short: {short:?}\nlong: {long:?}\nHAProxy:\n{}\nsidecar logs:\n{}",
        host.failed_requests_log(),
        host.sidecar.logs()
    );
    assert_eq!(state.weight, WEIGHT, "{details}");
    assert_eq!(short.failed + long.failed, 0, "requests failed:\n{details}");
    assert!(long.ok > 0, "long requests were served: {details}");
    for i in 2..=3 {
        host.wait_in_rotation(i).await;
    }
}

/// Until one of the long requests is in flight on app1 (so its drain has a session to wait for).
async fn wait_for_long_requests(host: &Host) {
    let client = host.client();
    let server = host.server(1);
    crate::support::wait::wait_until(Duration::from_secs(10), "a session on app1", || {
        let client = client.clone();
        let server = server.clone();
        async move {
            client
                .show_stat()
                .await
                .ok()
                .and_then(|rows| {
                    rows.into_iter()
                        .find(|r| r.proxy == server.backend && r.name == server.server)
                })
                .is_some_and(|row| row.sessions > 0)
        }
    })
    .await;
}
