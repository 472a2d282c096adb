//! A daemon killed (SIGKILL) in the middle of `roll --surge` leaves nothing its next start
//! cannot finish or undo: the surge is in the state file before each step. The kill lands at a
//! real moment of a real roll, found by polling HAProxy and Docker: once the copy's temporary
//! server exists (before the swap: undone), and once the old container is set aside (after the
//! swap: finished).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::roll_surge::{assert_clean_end, exists, haproxy_servers, SwapLeftovers};
use crate::support::capacity::CapacitySampler;
use crate::support::docker::{IMAGE_HC, IMAGE_V2};
use crate::support::roll::{blocking, Load, World};
use crate::support::wait::wait_until;

#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// The copy's temporary server is in HAProxy; the names are not swapped yet.
    Admitted,
    /// The old container is set aside; the copy has the name.
    Swapped,
}

fn start_roll(world: &World) -> Child {
    Command::new(env!("CARGO_BIN_EXE_haproxy-drain"))
        .args([
            "roll",
            &world.name(0),
            "--image",
            IMAGE_V2,
            "--surge",
            "--timeout",
            "30s",
        ])
        .env(
            "HAPROXY_DRAIN_CONTROL_SOCKET",
            world.daemon.control_socket(),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("CLI starts")
}

async fn killed_mid_surge(at: KillAt) {
    let mut world = World::start(2, IMAGE_HC, &[("ON_SIGTERM", "graceful")]).await;
    let _leftovers = SwapLeftovers(world.names());
    let name = world.name(0);
    let load = Load::start(world.frontend, 4, "/?delay_ms=20");
    let capacity = CapacitySampler::start(world.haproxy_client(), &world.backend);
    let mut cli = start_roll(&world);
    let aside = format!("{name}.haproxy-drain-old");
    match at {
        KillAt::Admitted => {
            wait_until(
                Duration::from_secs(30),
                "the copy's temporary server",
                || async {
                    haproxy_servers(&world)
                        .await
                        .iter()
                        .any(|s| s.ends_with(".haproxy-drain-new"))
                },
            )
            .await
        }
        KillAt::Swapped => {
            let aside = aside.clone();
            wait_until(
                Duration::from_secs(30),
                "the old container set aside",
                || {
                    let aside = aside.clone();
                    async move { blocking(move || exists(&aside)).await }
                },
            )
            .await
        }
    }
    world.daemon.kill_hard();
    let _ = blocking(move || cli.wait()).await;
    let state = std::fs::read_to_string(world.daemon.state_file()).unwrap_or_default();
    assert!(
        state.contains(&name),
        "the surge is in the state file: {state}"
    );
    world.daemon.restart().await;
    let client = world.daemon.client();
    let names = world.names();
    wait_until(
        Duration::from_secs(60),
        "every server in rotation, nothing temporary left",
        || async {
            let servers = haproxy_servers(&world).await;
            let views = client.servers().await.unwrap_or_default();
            let all_in = names.iter().all(|n| {
                views
                    .iter()
                    .any(|s| s.container.as_deref() == Some(n.as_str()) && s.phase == "in_rotation")
            });
            let copy_gone = !blocking({
                let n = names[0].clone();
                move || {
                    exists(&format!("{n}.haproxy-drain-new"))
                        || exists(&format!("{n}.haproxy-drain-old"))
                }
            })
            .await;
            all_in && copy_gone && servers.len() == 2
        },
    )
    .await;
    let tally = load.stop().await;
    let capacity = capacity.stop().await;
    let context = format!(
        "{at:?}: load {tally:?}\ncapacity {capacity:?}\n{}",
        world.daemon.log()
    );
    assert_eq!(tally.failed, 0, "{context}");
    assert_eq!(capacity.min_in_rotation, Some(2), "{context}");
    let expected_image = match at {
        KillAt::Admitted => IMAGE_HC,
        KillAt::Swapped => IMAGE_V2,
    };
    assert_eq!(
        world.inspect(0, "{{.Config.Image}}"),
        expected_image,
        "{context}"
    );
    let state = std::fs::read_to_string(world.daemon.state_file()).unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&state).unwrap_or_default();
    assert!(
        json["surging"].as_object().is_none_or(|m| m.is_empty()),
        "the surge is forgotten: {state}"
    );
    // The other container was never touched; the killed roll's container ends on one image.
    if let KillAt::Admitted = at {
        assert_clean_end(&world, IMAGE_HC, &context).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_after_the_copy_was_admitted_undoes_the_surge() {
    killed_mid_surge(KillAt::Admitted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_after_the_swap_finishes_the_surge() {
    killed_mid_surge(KillAt::Swapped).await;
}
