//! A daemon killed in the middle of a roll step brings the container back at its next start
//! (issue 8): the roll had recorded the container in the state file before stopping it, and the
//! states Docker can be left in by a kill at any moment of stop → set aside → create → start are
//! built here by hand (a kill cannot be timed into a window of a few milliseconds), then the
//! daemon starts again on that state file.

use std::time::Duration;

use haproxy_drain::haproxy::AdminState;

use crate::support::docker::{docker, docker_ok, IMAGE_V2};
use crate::support::roll::blocking;
use crate::support::stack::{Stack, StackOptions, WEIGHT};
use crate::support::wait::wait_until;

#[derive(Debug, Clone, Copy)]
enum KilledAt {
    /// After the stop: the container is stopped under its name.
    Stopped,
    /// After the set-aside: no container has the name, the old one is `<name>.haproxy-drain-old`.
    SetAside,
    /// After the new container was created under the name, before it started.
    Created,
}

fn exists(name: &str) -> bool {
    docker(&["inspect", "-f", "{{.Id}}", name]).is_ok()
}

fn inspect(name: &str, format: &str) -> String {
    docker(&["inspect", "-f", format, name]).unwrap_or_else(|e| e)
}

/// Adds `container` to the state file's `rolling` list, as the roll does before its stop.
fn record_rolling(state_file: &std::path::Path, container: &str) {
    let text = std::fs::read_to_string(state_file).expect("state file");
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("state file is JSON");
    json["rolling"] = serde_json::json!([container]);
    std::fs::write(state_file, serde_json::to_vec_pretty(&json).unwrap()).expect("write");
}

async fn killed_mid_roll(at: KilledAt) {
    let mut stack = Stack::start(StackOptions {
        apps: 2,
        ..StackOptions::default()
    })
    .await;
    let name = stack.apps[0].name().to_string();
    let old_id = stack.apps[0].id.clone();
    // The stop as the roll does it, watched by the daemon: drained, then held in MAINT.
    stack.apps[0].stop(5);
    stack.wait_admin(1, AdminState::Maint).await;
    stack.daemon.kill_hard();
    let spec = stack.apps[0].spec.clone();
    let aside = format!("{name}.haproxy-drain-old");
    let replacement = blocking(move || match at {
        KilledAt::Stopped => None,
        KilledAt::SetAside => {
            docker_ok(&["rename", &name, &aside]);
            None
        }
        KilledAt::Created => {
            docker_ok(&["rename", &name, &aside]);
            let mut new = spec;
            new.image = IMAGE_V2.to_string();
            Some(new.create())
        }
    })
    .await;
    record_rolling(&stack.daemon.state_file(), stack.apps[0].name());

    stack.daemon.restart().await;
    let state = stack.wait_in_rotation(1).await;
    assert_eq!(state.weight, WEIGHT, "{at:?}: the original weight");
    let name = stack.apps[0].name().to_string();
    assert_eq!(inspect(&name, "{{.State.Running}}"), "true", "{at:?}");
    let expected_id = replacement
        .as_ref()
        .map_or(old_id.as_str(), |c| c.id.as_str());
    assert_eq!(inspect(&name, "{{.Id}}"), expected_id, "{at:?}");
    assert!(
        !exists(&format!("{name}.haproxy-drain-old")),
        "{at:?}: nothing left set aside"
    );
    let ip = inspect(
        &name,
        &format!(
            "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
            stack.network.name
        ),
    );
    assert_eq!(
        state.addr, ip,
        "{at:?}: HAProxy points at the container that runs"
    );
    let state_file = stack.daemon.state_file();
    wait_until(Duration::from_secs(10), "the roll record cleared", || {
        let text = std::fs::read_to_string(&state_file).unwrap_or_default();
        async move {
            serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|j| j.get("rolling").cloned())
                .is_some_and(|r| r.as_array().is_some_and(Vec::is_empty))
        }
    })
    .await;
    assert!(
        stack.daemon.log().contains("finished the roll step"),
        "{at:?}: the log says what was done"
    );
    blocking(move || drop((replacement, stack))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_after_the_stop_starts_the_container_again() {
    killed_mid_roll(KilledAt::Stopped).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_after_the_set_aside_gives_the_old_container_its_name_back() {
    killed_mid_roll(KilledAt::SetAside).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_after_the_create_starts_the_new_container_and_removes_the_old() {
    killed_mid_roll(KilledAt::Created).await;
}
