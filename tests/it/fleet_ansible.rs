//! ansible/rollout.yml with `serial: 100%` (every host at once) over three simulated hosts that
//! share a fleet budget of 1: the rollout finishes, and an outside sampler (every HAProxy's
//! `show servers state` and etcd's slots, every 20 ms) never sees more than one server out.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::fleet_budget::text;
use crate::packaging_ansible::{ansible_playbook, run_playbook};
use crate::support::docker::{docker_ok, ensure_test_images, IMAGE_NOHC_V2};
use crate::support::fleet::{Etcd, FleetHost, FleetSampler, FleetSpec};
use crate::support::load::Load;

/// A YAML (here JSON) inventory: each host runs its sidecar as a host process, reached with
/// `haproxy_drain_command`, and selects its containers with the sidecar's own filter.
fn inventory(dir: &Path, hosts: &[&FleetHost]) -> PathBuf {
    let mut entries = serde_json::Map::new();
    for host in hosts {
        entries.insert(
            host.name.clone(),
            serde_json::json!({
                "haproxy_drain_backend": host.backend,
                "haproxy_drain_command": [env!("CARGO_BIN_EXE_haproxy-drain")],
                "haproxy_drain_environment": {
                    "HAPROXY_DRAIN_CONTROL_SOCKET": host.daemon.control_socket(),
                },
                "haproxy_drain_filter": [format!("label=hdt.fleet={}", host.tag)],
            }),
        );
    }
    let inventory = serde_json::json!({
        "haproxy_drain_hosts": {
            "hosts": entries,
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                "haproxy_drain_image": IMAGE_NOHC_V2,
                "haproxy_drain_timeout": "60s",
            },
        },
    });
    let path = dir.join("inventory.yml");
    std::fs::write(&path, inventory.to_string()).expect("write the inventory");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ansible_with_every_host_at_once_never_has_more_than_the_fleet_budget_out() {
    tokio::task::spawn_blocking(|| {
        ansible_playbook();
        ensure_test_images();
    })
    .await
    .expect("ansible and the test images");
    let etcd = Etcd::start().await;
    let spec = FleetSpec::new("");
    let (a, b, c) = tokio::join!(
        FleetHost::start("a", &spec, &etcd, 2),
        FleetHost::start("b", &spec, &etcd, 2),
        FleetHost::start("c", &spec, &etcd, 2),
    );
    let hosts = [&a, &b, &c];
    let dir = tempfile::tempdir().expect("temp dir");
    let inventory = inventory(dir.path(), &hosts);
    let loads: Vec<Load> = hosts
        .iter()
        .map(|h| Load::start(h.frontend, 3, "/?delay_ms=10"))
        .collect();
    let sampler = FleetSampler::start(&hosts, &etcd.url, &spec.slots_prefix());
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        run_playbook(&inventory, &["-e", "rollout_serial=100%"])
    })
    .await
    .expect("playbook");
    let took = started.elapsed();
    let (max_out, max_slots, samples) = sampler.finish().await;
    let mut failed = Vec::new();
    for load in loads {
        let report = load.stop().await;
        if report.failed > 0 {
            failed.push(report);
        }
    }
    let details = text(&output);
    assert!(output.status.success(), "the rollout failed:\n{details}");
    let waits: f64 = {
        let mut sum = 0.0;
        for host in hosts {
            sum += host.metric("haproxy_drain_fleet_waits_total").await;
        }
        sum
    };
    eprintln!(
        "fleet ansible: serial 100%, 3 hosts x 2 containers in {took:?}; {samples} samples, at most {max_out} out, {max_slots} slot(s); {waits} waits for a slot"
    );
    assert!(failed.is_empty(), "failed requests: {failed:?}");
    assert!(samples > 50, "the sampler ran");
    assert_eq!(
        max_out, 1,
        "more than the fleet budget out at once:\n{details}"
    );
    assert_eq!(max_slots, 1, "more than one slot held at once");
    assert!(
        waits >= 2.0,
        "hosts rolling at once must have waited for each other"
    );
    for host in hosts {
        for i in 1..=2 {
            let image = docker_ok(&[
                "inspect",
                "--format",
                "{{.Config.Image}}",
                &host.container(i),
            ]);
            assert_eq!(image.trim(), IMAGE_NOHC_V2, "{}: app{i}", host.name);
            host.wait_in_rotation(i).await;
        }
    }
}
