//! `roll --surge` end to end (issue 13): a real HAProxy with checks, real containers, a load
//! through the frontend for the whole roll, and a sampler of how many servers are in rotation.

use std::process::Output;

use crate::roll_e2e::{ensure_unhealthy_image, IMAGE_UNHEALTHY};
use crate::support::capacity::{Capacity, CapacitySampler};
use crate::support::docker::{docker, docker_ok, unique_name, IMAGE_HC, IMAGE_V2};
use crate::support::haproxy::free_loopback_port;
use crate::support::roll::{blocking, Load, Tally, World, WEIGHT};
use crate::support::wait::wait_until;

/// Short requests, and long ones so that every drain has sessions to wait for.
const LOAD: [(usize, &str); 2] = [(4, "/?delay_ms=20"), (3, "/?delay_ms=300")];

/// Every name a surge of `name` can leave behind.
pub fn swap_names(name: &str) -> [String; 2] {
    [
        format!("{name}.haproxy-drain-new"),
        format!("{name}.haproxy-drain-old"),
    ]
}

/// Removes what a failed surge could leave, also when the test panics.
pub struct SwapLeftovers(pub Vec<String>);

impl Drop for SwapLeftovers {
    fn drop(&mut self) {
        for name in &self.0 {
            for leftover in swap_names(name) {
                let _ = docker(&["rm", "-f", "-v", &leftover]);
            }
        }
    }
}

pub fn exists(name: &str) -> bool {
    docker(&["inspect", "-f", "{{.Id}}", name]).is_ok()
}

fn ids(world: &World) -> Vec<String> {
    (0..world.containers.len())
        .map(|i| world.inspect(i, "{{.Id}}"))
        .collect()
}

pub fn details(output: &Output, tally: &Tally, capacity: &Capacity, world: &World) -> String {
    let log = world.daemon.log();
    let lines: Vec<&str> = log.lines().collect();
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}\nload: {tally:?}\ncapacity: {capacity:?}\ndaemon log (tail):\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        lines[lines.len().saturating_sub(60)..].join("\n")
    )
}

/// The servers of the backend HAProxy has now, by name.
pub async fn haproxy_servers(world: &World) -> Vec<String> {
    let rows = world.haproxy_client().show_stat().await.expect("show stat");
    rows.iter()
        .filter(|r| r.proxy == world.backend && r.name != "BACKEND" && r.name != "FRONTEND")
        .map(|r| r.name.clone())
        .collect()
}

/// Each container runs under its name on the image, its server points at its address at the
/// configured weight, and nothing temporary is left in Docker or HAProxy.
pub async fn assert_clean_end(world: &World, image: &str, context: &str) {
    for index in 0..world.containers.len() {
        let name = world.name(index);
        assert_eq!(
            world.inspect(index, "{{.State.Running}}"),
            "true",
            "{name}\n{context}"
        );
        assert_eq!(
            world.inspect(index, "{{.Config.Image}}"),
            image,
            "{name}\n{context}"
        );
        for leftover in swap_names(&name) {
            assert!(!exists(&leftover), "{leftover} is left\n{context}");
        }
        let (status, weight) = world.status_and_weight(index).await;
        assert!(
            status.starts_with("UP"),
            "{name}'s server is {status}\n{context}"
        );
        assert_eq!(weight, WEIGHT, "{name}'s weight\n{context}");
        let (ip, server) = (world.container_ip(index), world.server(index));
        assert_eq!(
            world.haproxy_addr(index).await,
            ip,
            "{server} points at {name}\n{context}"
        );
    }
    let servers = haproxy_servers(world).await;
    assert_eq!(
        servers.len(),
        world.containers.len(),
        "{servers:?}\n{context}"
    );
}

async fn surge_to_v2(on_sigterm: &str) {
    let world = World::start(3, IMAGE_HC, &[("ON_SIGTERM", on_sigterm)]).await;
    let _leftovers = SwapLeftovers(world.names());
    let before = ids(&world);
    let capacity = CapacitySampler::start(world.haproxy_client(), &world.backend);
    let load = Load::start_mix(world.frontend, &LOAD);
    let output = world.roll_cli(&["--image", IMAGE_V2, "--surge"]).await;
    let tally = load.stop().await;
    let capacity = capacity.stop().await;
    let context = details(&output, &tally, &capacity, &world);
    assert!(output.status.success(), "roll --surge failed:\n{context}");
    assert_eq!(tally.failed, 0, "requests failed:\n{context}");
    assert!(
        tally.versions.get("v2").is_some_and(|n| *n > 0),
        "{context}"
    );
    assert_eq!(
        capacity.min_in_rotation,
        Some(3),
        "capacity dropped:\n{context}"
    );
    assert_eq!(
        capacity.max_in_rotation, 4,
        "a copy served beside the three:\n{context}"
    );
    assert!(
        capacity
            .servers_seen
            .iter()
            .any(|s| s.ends_with(".haproxy-drain-new")),
        "{context}"
    );
    let after = ids(&world);
    for index in 0..3 {
        assert_ne!(
            before[index], after[index],
            "container {index} was not replaced"
        );
    }
    assert_clean_end(&world, IMAGE_V2, &context).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    for step in ["copy", "admit", "drain", "swap", "ready", "retire"] {
        let done = stdout
            .lines()
            .filter(|line| {
                let columns: Vec<&str> = line.split_whitespace().collect();
                columns.get(2) == Some(&step) && columns.get(3) == Some(&"ok")
            })
            .count();
        assert_eq!(done, 3, "{step} lines:\n{stdout}");
    }
    assert!(
        !stdout.contains(" stop "),
        "a surge never stops a named container:\n{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surge_keeps_every_server_in_rotation_when_the_app_exits_at_once() {
    surge_to_v2("exit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surge_keeps_every_server_in_rotation_when_the_app_ignores_sigterm() {
    surge_to_v2("ignore").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_that_never_gets_healthy_is_removed_and_the_roll_stops() {
    blocking(ensure_unhealthy_image).await;
    let world = World::start(2, IMAGE_HC, &[("ON_SIGTERM", "graceful")]).await;
    let _leftovers = SwapLeftovers(world.names());
    let before = ids(&world);
    let capacity = CapacitySampler::start(world.haproxy_client(), &world.backend);
    let load = Load::start_mix(world.frontend, &LOAD);
    let output = world
        .roll_cli(&["--image", IMAGE_UNHEALTHY, "--surge", "--timeout", "8s"])
        .await;
    let tally = load.stop().await;
    let capacity = capacity.stop().await;
    let context = details(&output, &tally, &capacity, &world);
    assert!(!output.status.success(), "{context}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first = world.name(0);
    assert!(
        stderr.contains(&format!("{first}: admit failed")),
        "{context}"
    );
    assert!(stderr.contains("keeps serving"), "{context}");
    assert!(
        stderr.contains(&format!("not touched: {}", world.name(1))),
        "{context}"
    );
    assert_eq!(tally.failed, 0, "{context}");
    assert_eq!(capacity.min_in_rotation, Some(2), "{context}");
    assert_eq!(
        ids(&world),
        before,
        "the old containers are untouched\n{context}"
    );
    assert_clean_end(&world, IMAGE_HC, &context).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_with_a_fixed_host_port_is_refused_and_untouched() {
    let world = World::start(1, IMAGE_HC, &[]).await;
    let name = unique_name("fixedport");
    let _leftovers = SwapLeftovers(vec![name.clone()]);
    let port = free_loopback_port();
    let network = world.network.name.clone();
    let backend = world.backend.clone();
    let (run_name, run_network) = (name.clone(), network.clone());
    let id = blocking(move || {
        docker_ok(&[
            "run",
            "-d",
            "--name",
            &run_name,
            "--network",
            &run_network,
            "-p",
            &format!("127.0.0.1:{port}:8080"),
            "--label",
            &format!("haproxy-drain.backend={backend}"),
            "--label",
            "haproxy-drain.server=fixed",
            "--label",
            "haproxy-drain.port=8080",
            IMAGE_HC,
        ])
    })
    .await;
    let _container = scopeguard(name.clone());
    // Mapped (a dynamic server) before the roll is asked for.
    let client = world.daemon.client();
    wait_until(
        std::time::Duration::from_secs(30),
        "the fixed-port container in rotation",
        || async {
            client.servers().await.is_ok_and(|servers| {
                servers.iter().any(|s| {
                    s.container.as_deref() == Some(name.as_str()) && s.phase == "in_rotation"
                })
            })
        },
    )
    .await;
    let socket = world.daemon.control_socket();
    let roll_name = name.clone();
    let output = blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_haproxy-drain"))
            .args(["roll", &roll_name, "--surge", "--timeout", "20s"])
            .env("HAPROXY_DRAIN_CONTROL_SOCKET", socket)
            .output()
            .expect("CLI runs")
    })
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("cannot run twice at once"), "{stderr}");
    assert!(
        stderr.contains(&format!("fixed host port {port}")),
        "{stderr}"
    );
    assert!(stderr.contains("without --surge"), "{stderr}");
    let now = docker_ok(&["inspect", "-f", "{{.Id}} {{.State.Running}}", &name]);
    assert_eq!(now, format!("{id} true"));
    assert!(!exists(&swap_names(&name)[0]));
    let servers = haproxy_servers(&world).await;
    assert!(
        !servers.iter().any(|s| s.contains("haproxy-drain")),
        "{servers:?}"
    );
}

/// Force-removes a container by name when dropped.
fn scopeguard(name: String) -> impl Drop {
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = docker(&["rm", "-f", "-v", &self.0]);
        }
    }
    Remove(name)
}

/// After a surge the copies are the servers' containers: a later compose-style recreate (stop,
/// rm, run under the same name) with the daemon watching drains each of them before it stops.
/// A plain `docker stop` sends SIGTERM when we hear of it, so the app keeps accepting for a
/// lame-duck delay (the README's advice); without it the race is the app's, surge or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_swapped_in_by_a_surge_is_drained_when_it_is_later_recreated() {
    let env = [("ON_SIGTERM", "graceful"), ("STOP_DELAY_MS", "300")];
    let mut world = World::start(2, IMAGE_HC, &env).await;
    let _leftovers = SwapLeftovers(world.names());
    let output = world.roll_cli(&["--surge"]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    world
        .wait_all_in_rotation(std::time::Duration::from_secs(30))
        .await;
    let load = Load::start_mix(world.frontend, &LOAD);
    for index in 0..world.containers.len() {
        world.recreate(index).await;
        world
            .wait_all_in_rotation(std::time::Duration::from_secs(30))
            .await;
    }
    let tally = load.stop().await;
    let log = world.daemon.log();
    assert_eq!(tally.failed, 0, "{tally:?}\n{log}");
}
