//! What the Docker gate costs a request that passes through it.
//!
//! `cargo bench --bench gate_overhead` starts the gate in this process (release build, the same
//! `gate::start` that `haproxy-drain run --docker-gate` calls; no HAProxy is needed for requests
//! that pass through) and measures, alternating gate and engine so drift hits both alike:
//!
//! 1. `GET /v1.41/containers/json?all=1` on a new connection each (what `docker ps` sends), raw;
//! 2. the `docker ps -a` CLI end to end;
//! 3. `docker cp` of a 100 MB file into a container and back out.
//!
//! It prints a markdown table for docs/benchmarks.md.

/// The test fixtures (docker CLI helpers, test images).
#[path = "../tests/it/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use haproxy_drain::config::Config;
use haproxy_drain::controller::{Context, ControllerHandle, Fleet};
use haproxy_drain::docker::DockerClient;
use haproxy_drain::gate::{self, GateSettings};
use haproxy_drain::metrics::Metrics;
use haproxy_drain::ownership::OwnershipStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const ENGINE: &str = "/var/run/docker.sock";
const RAW_SAMPLES: usize = 300;
const CLI_SAMPLES: usize = 20;
const CP_RUNS: usize = 3;
const CP_BYTES: usize = 100 * 1024 * 1024;

fn main() {
    support::block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("gate.sock");
    let metrics = Arc::new(Metrics::new());
    let ctx = Arc::new(Context {
        config: Config::default(),
        fleet: Fleet::new(Vec::new(), metrics.clone()),
        docker: DockerClient::connect().expect("docker client"),
        store: std::sync::Arc::new(OwnershipStore::open(None).expect("in-memory ownership")),
        metrics,
        fleet_budget: None,
    });
    let (tx, _controller_rx) = tokio::sync::mpsc::channel(1);
    let (_trigger, shutdown) = haproxy_drain::shutdown::channel();
    let settings = GateSettings {
        socket: socket.clone(),
        mode: 0o660,
        group: None,
        fail_closed: false,
    };
    let _gate = gate::start(settings, ctx, ControllerHandle::new(tx), shutdown)
        .await
        .expect("gate starts");
    let gate_host = format!("unix://{}", socket.display());
    let engine_host = format!("unix://{ENGINE}");

    let mut rows = Vec::new();
    let (mut through, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..RAW_SAMPLES {
        through.push(raw_ps(&socket).await);
        direct.push(raw_ps(Path::new(ENGINE)).await);
    }
    rows.push(row(
        "GET /containers/json, raw, new connection",
        RAW_SAMPLES,
        through,
        direct,
    ));

    let (mut through, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..CLI_SAMPLES {
        through.push(timed(&gate_host, &["ps", "-a"]));
        direct.push(timed(&engine_host, &["ps", "-a"]));
    }
    rows.push(row("`docker ps -a` CLI", CLI_SAMPLES, through, direct));

    support::docker::ensure_test_images();
    let name = support::docker::unique_name("gatebench");
    support::docker::docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        "hdt.test=1",
        support::docker::IMAGE_NOHC,
    ]);
    let file = dir.path().join("blob");
    let blob: Vec<u8> = (0..CP_BYTES as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    std::fs::write(&file, &blob).expect("write the blob");
    let back = dir.path().join("back");
    let into = format!("{name}:/blob");
    let (file, back) = (file.display().to_string(), back.display().to_string());
    let (mut up_gate, mut up_engine, mut down_gate, mut down_engine) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..CP_RUNS {
        up_gate.push(timed(&gate_host, &["cp", &file, &into]));
        up_engine.push(timed(&engine_host, &["cp", &file, &into]));
        down_gate.push(timed(&gate_host, &["cp", &into, &back]));
        down_engine.push(timed(&engine_host, &["cp", &into, &back]));
    }
    assert!(
        std::fs::read(&back).expect("copied back") == blob,
        "docker cp changed the bytes"
    );
    let _ = support::docker::docker(&["rm", "-f", &name]);
    rows.push(row(
        "`docker cp` 100 MB into a container",
        CP_RUNS,
        up_gate,
        up_engine,
    ));
    rows.push(row(
        "`docker cp` 100 MB out of a container",
        CP_RUNS,
        down_gate,
        down_engine,
    ));

    println!(
        "| measurement | samples | gate p50 | engine p50 | overhead p50 | gate p90 | engine p90 |"
    );
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
}

struct Row {
    what: &'static str,
    samples: usize,
    gate: (Duration, Duration),
    engine: (Duration, Duration),
}

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let overhead = self.gate.0.as_secs_f64() - self.engine.0.as_secs_f64();
        write!(
            f,
            "| {} | {} | {:.2?} | {:.2?} | {:+.2} ms ({:+.1} %) | {:.2?} | {:.2?} |",
            self.what,
            self.samples,
            self.gate.0,
            self.engine.0,
            overhead * 1e3,
            overhead / self.engine.0.as_secs_f64() * 100.0,
            self.gate.1,
            self.engine.1
        )
    }
}

fn row(
    what: &'static str,
    samples: usize,
    mut gate: Vec<Duration>,
    mut engine: Vec<Duration>,
) -> Row {
    Row {
        what,
        samples,
        gate: (percentile(&mut gate, 0.5), percentile(&mut gate, 0.9)),
        engine: (percentile(&mut engine, 0.5), percentile(&mut engine, 0.9)),
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() - 1) as f64 * p).round() as usize;
    samples[index]
}

async fn raw_ps(socket: &Path) -> Duration {
    let started = Instant::now();
    let mut stream = UnixStream::connect(socket).await.expect("connect");
    stream
        .write_all(b"GET /v1.41/containers/json?all=1 HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.expect("read");
    assert!(
        reply.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    started.elapsed()
}

fn timed(host: &str, args: &[&str]) -> Duration {
    let started = Instant::now();
    let output = Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", host)
        .output()
        .expect("docker runs");
    assert!(
        output.status.success(),
        "docker {args:?} at {host}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    started.elapsed()
}
