//! The rollout scenarios: each one a name, whether haproxy-drain runs during it, and the rollout
//! itself on a [`World`]. Adding one (e.g. `roll --surge`) is one entry in [`scenarios`].
//!
//! Every per-container loop waits for the server to be back in rotation in HAProxy (status `UP`
//! at its configured weight) before the next container, bounded by [`STEP_TIMEOUT`].

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use haproxy_drain::haproxy::types::WeightSpec;

use crate::support::docker::{docker, docker_ok, ContainerSpec, TestContainer, IMAGE_HC, IMAGE_V2};
use crate::support::roll::{blocking, World, WEIGHT};

pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// The classic method's fixed wait for in-flight requests, per container.
pub const CLASSIC_SLEEP: Duration = Duration::from_secs(5);

pub type Rollout = for<'a> fn(&'a mut World) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

#[derive(Clone, Copy)]
pub struct Scenario {
    pub name: &'static str,
    /// haproxy-drain runs (watching Docker) during the rollout.
    pub daemon: bool,
    pub rollout: Rollout,
}

/// Every scenario, in report order; `roll --surge` only when this build's CLI has it.
pub fn scenarios() -> Vec<Scenario> {
    let mut list = vec![
        Scenario {
            name: "1 naive: docker restart, no drain",
            daemon: false,
            rollout: |w| Box::pin(naive(w)),
        },
        Scenario {
            name: "2 classic: weight 0, sleep 5, restart, wait UP, weight back",
            daemon: false,
            rollout: |w| Box::pin(classic(w)),
        },
        Scenario {
            name: "3 haproxy-drain watching, docker restart",
            daemon: true,
            rollout: |w| Box::pin(naive(w)),
        },
        Scenario {
            name: "4a haproxy-drain roll",
            daemon: true,
            rollout: |w| Box::pin(roll(w, &[])),
        },
        Scenario {
            name: "4b haproxy-drain roll --image",
            daemon: true,
            rollout: |w| Box::pin(roll(w, &["--image", IMAGE_V2])),
        },
    ];
    if roll_has_surge() {
        list.push(Scenario {
            name: "4c haproxy-drain roll --surge",
            daemon: true,
            rollout: |w| Box::pin(roll(w, &["--surge"])),
        });
    }
    // Last: a surge leaves the containers on new addresses, and this engine gives a restarted
    // container the lowest free address, so the next round's naive restart (no daemon to follow
    // an address) would leave HAProxy on a stale one. `rm` + `run` puts them back at the bottom.
    list.push(Scenario {
        name: "5 recreate (stop, rm, run) with haproxy-drain watching",
        daemon: true,
        rollout: |w| Box::pin(recreate(w)),
    });
    list.push(Scenario {
        name: "6 engine only: run + rm of as many containers outside the backend (the floor)",
        daemon: true,
        rollout: |w| Box::pin(engine_only(w)),
    });
    list
}

/// The index of the classic scenario, the baseline of the ratios.
pub const CLASSIC: &str = "2 classic: weight 0, sleep 5, restart, wait UP, weight back";

fn roll_has_surge() -> bool {
    std::process::Command::new(env!("CARGO_BIN_EXE_haproxy-drain"))
        .args(["roll", "--help"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--surge"))
}

async fn naive(world: &mut World) {
    for index in 0..world.containers.len() {
        let name = world.name(index);
        blocking(move || docker_ok(&["restart", "-t", "10", &name])).await;
        wait_back(world, index).await;
    }
}

async fn classic(world: &mut World) {
    let client = world.haproxy_client();
    for index in 0..world.containers.len() {
        let server = world.server(index);
        client
            .set_weight(&server, WeightSpec::Absolute(0))
            .await
            .expect("set weight 0");
        tokio::time::sleep(CLASSIC_SLEEP).await; // the method under test: a fixed wait
        let name = world.name(index);
        blocking(move || docker_ok(&["restart", "-t", "10", &name])).await;
        wait_up(world, index).await;
        client
            .set_weight(&server, WeightSpec::Absolute(WEIGHT))
            .await
            .expect("restore weight");
    }
}

async fn roll(world: &mut World, extra: &[&str]) {
    let output = world.roll_cli(extra).await;
    assert!(
        output.status.success(),
        "roll {extra:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `docker stop` + `docker rm` + `docker run` with the same spec, as compose does; the new
/// container may get another address, which haproxy-drain sets on the server.
async fn recreate(world: &mut World) {
    for index in 0..world.containers.len() {
        world.recreate(index).await;
        wait_back(world, index).await;
    }
}

/// No server changes at all: the engine starts as many containers beside the backend as a surge
/// makes copies, then stops and removes them, so its p99 column is what container starts and
/// stops alone cost the requests on this machine (dockerd, containerd, runc and the kernel share
/// the cores with HAProxy and the apps).
async fn engine_only(world: &mut World) {
    let mut started: Vec<TestContainer> = Vec::new();
    for index in 0..world.containers.len() {
        let spec = ContainerSpec::new(&format!("engine{index}"))
            .image(IMAGE_HC)
            .network(&world.network);
        started.push(blocking(move || spec.run()).await);
    }
    blocking(move || drop(started)).await;
}

/// Until HAProxy shows server `index` `UP` (any weight).
async fn wait_up(world: &World, index: usize) {
    wait_server(world, index, false).await
}

/// Until HAProxy shows server `index` `UP` at its configured weight.
pub async fn wait_back(world: &World, index: usize) {
    wait_server(world, index, true).await
}

async fn wait_server(world: &World, index: usize, full_weight: bool) {
    let server = world.server(index);
    let client = world.haproxy_client();
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let rows = client.show_stat().await.unwrap_or_default();
        let back = rows.iter().any(|r| {
            r.proxy == server.backend
                && r.name == server.server
                && r.status_text == "UP"
                && (!full_weight || r.weight == Some(WEIGHT))
        });
        if back {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{server} not back in rotation after {STEP_TIMEOUT:?}: {:?}",
            docker(&[
                "ps",
                "-a",
                "--filter",
                &format!("name={}", world.name(index))
            ])
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
