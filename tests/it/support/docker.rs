//! Docker fixtures over the docker CLI: test images, unique names, networks and containers that
//! clean up after themselves (also when a test panics). Cleanup never panics.
//!
//! Everything created here carries the labels `hdt.test=1` and `hdt.pid=<pid>`, so leftovers of a
//! test process that was killed can be found and removed (see [`remove_stale_leftovers`]).

#![allow(dead_code)] // each test uses a different part of the fixture

use std::net::IpAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

pub const IMAGE_HC: &str = "haproxy-drain-testapp:hc";
pub const IMAGE_NOHC: &str = "haproxy-drain-testapp:nohc";
pub const IMAGE_V2: &str = "haproxy-drain-testapp:v2";
pub const IMAGE_NOHC_V2: &str = "haproxy-drain-testapp:nohc-v2";
/// Like [`IMAGE_NOHC`] / [`IMAGE_NOHC_V2`], under tags of their own (the shutdown matrix and the
/// fault campaign need `ON_SIGTERM=ignore|serve`; see docker/build-test-images.sh).
pub const IMAGE_SIGTERM: &str = "haproxy-drain-testapp:sigterm";
pub const IMAGE_SIGTERM_V2: &str = "haproxy-drain-testapp:sigterm-v2";
/// Healthy, but half of its app requests answer 500 (`FAIL_PERCENT=50`): a bad release.
pub const IMAGE_BAD: &str = "haproxy-drain-testapp:bad";
const ALL_IMAGES: [&str; 7] = [
    IMAGE_HC,
    IMAGE_NOHC,
    IMAGE_V2,
    IMAGE_NOHC_V2,
    IMAGE_SIGTERM,
    IMAGE_SIGTERM_V2,
    IMAGE_BAD,
];
/// The port testapp listens on inside its container.
pub const APP_PORT: u16 = 8080;

/// Runs `docker <args>`; trimmed stdout, or an error naming the command and its stderr.
pub fn docker(args: &[&str]) -> Result<String, String> {
    let output = Command::new("docker")
        .args(args)
        .output()
        .map_err(|err| format!("cannot run docker {args:?}: {err}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(format!(
            "docker {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// [`docker`] for setup steps, where failing is a test failure.
pub fn docker_ok(args: &[&str]) -> String {
    docker(args).unwrap_or_else(|err| panic!("{err}"))
}

/// Runs docker/build-test-images.sh once per process: it rebuilds only what is stale (a changed
/// testapp or Dockerfile), so this costs a no-op cargo build and six `docker image inspect`s.
/// When the script fails but every image exists, the tests go on with a warning.
pub fn ensure_test_images() {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|poison| poison.into_inner());
    if *done {
        return;
    }
    remove_stale_leftovers();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/docker/build-test-images.sh");
    let outcome = Command::new(script).output();
    let failure = match &outcome {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(err) => Some(err.to_string()),
    };
    if let Some(failure) = failure {
        let missing: Vec<&str> = ALL_IMAGES
            .into_iter()
            .filter(|image| docker(&["image", "inspect", "--format", "{{.Id}}", image]).is_err())
            .collect();
        assert!(
            missing.is_empty(),
            "{script} failed ({failure}) and {missing:?} are missing"
        );
        eprintln!("warning: {script} failed ({failure}); using the existing test images");
    }
    *done = true;
}

/// `hdt-<pid>-<counter>-<suffix>`: unique across parallel tests and concurrent test processes.
pub fn unique_name(suffix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("hdt-{}-{n}-{suffix}", std::process::id())
}

fn ownership_labels() -> [String; 2] {
    [
        "hdt.test=1".to_string(),
        format!("hdt.pid={}", std::process::id()),
    ]
}

/// Removes containers and networks left by test processes that no longer exist.
pub fn remove_stale_leftovers() {
    let alive = |pid: &str| std::path::Path::new(&format!("/proc/{pid}")).exists();
    let listing = |kind: &str| {
        docker(&[
            kind,
            "ls",
            "-a",
            "--filter",
            "label=hdt.test=1",
            "--format",
            "{{.ID}} {{.Label \"hdt.pid\"}}",
        ])
        .unwrap_or_default()
    };
    for line in listing("container").lines() {
        if let Some((id, pid)) = line.split_once(' ') {
            if !alive(pid) {
                let _ = docker(&["rm", "-f", "-v", id]);
            }
        }
    }
    let networks = docker(&[
        "network",
        "ls",
        "--filter",
        "label=hdt.test=1",
        "--format",
        "{{.ID}} {{.Label \"hdt.pid\"}}",
    ])
    .unwrap_or_default();
    for line in networks.lines() {
        if let Some((id, pid)) = line.split_once(' ') {
            if !alive(pid) {
                let _ = docker(&["network", "rm", id]);
            }
        }
    }
}

/// A user-defined bridge network, removed on drop (with any test container still attached).
pub struct TestNetwork {
    pub name: String,
    pub id: String,
}

impl TestNetwork {
    pub fn create() -> Self {
        let name = unique_name("net");
        let [test, pid] = ownership_labels();
        let id = docker_ok(&[
            "network", "create", "--label", &test, "--label", &pid, &name,
        ]);
        Self { name, id }
    }
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        let attached = docker(&[
            "network",
            "inspect",
            "--format",
            "{{range .Containers}}{{.Name}} {{end}}",
            &self.id,
        ])
        .unwrap_or_default();
        for name in attached
            .split_whitespace()
            .filter(|name| name.starts_with("hdt-"))
        {
            let _ = docker(&["rm", "-f", "-v", name]);
        }
        if let Err(err) = docker(&["network", "rm", &self.id]) {
            eprintln!("warning: test network {} not removed: {err}", self.name);
        }
    }
}

/// How to run a test container; [`ContainerSpec::run`] starts it.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub labels: Vec<(String, String)>,
    pub env: Vec<(String, String)>,
    pub network: Option<String>,
    /// `--restart` policy, e.g. `always`, `on-failure:2`.
    pub restart: Option<String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u32>,
    /// Anything else for `docker run`, before the image.
    pub extra_args: Vec<String>,
}

impl ContainerSpec {
    /// A container named `unique_name(suffix)` from the healthchecked image.
    pub fn new(suffix: &str) -> Self {
        Self {
            name: unique_name(suffix),
            image: IMAGE_HC.to_string(),
            labels: Vec::new(),
            env: Vec::new(),
            network: None,
            restart: None,
            stop_signal: None,
            stop_timeout: None,
            extra_args: Vec::new(),
        }
    }

    pub fn image(mut self, image: &str) -> Self {
        self.image = image.to_string();
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.push((key.to_string(), value.to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn network(mut self, network: &TestNetwork) -> Self {
        self.network = Some(network.name.clone());
        self
    }

    pub fn restart(mut self, policy: &str) -> Self {
        self.restart = Some(policy.to_string());
        self
    }

    pub fn stop_signal(mut self, signal: &str) -> Self {
        self.stop_signal = Some(signal.to_string());
        self
    }

    pub fn stop_timeout(mut self, seconds: u32) -> Self {
        self.stop_timeout = Some(seconds);
        self
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.extra_args.push(arg.to_string());
        self
    }

    pub fn run_args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "run".into(),
            "-d".into(),
            "--name".into(),
            self.name.clone(),
        ];
        for label in ownership_labels() {
            args.extend(["--label".into(), label]);
        }
        for (key, value) in &self.labels {
            args.extend(["--label".into(), format!("{key}={value}")]);
        }
        // NAME makes the app answer with its container name.
        args.extend(["--env".into(), format!("NAME={}", self.name)]);
        for (key, value) in &self.env {
            args.extend(["--env".into(), format!("{key}={value}")]);
        }
        let optional = [
            ("--network", self.network.clone()),
            ("--restart", self.restart.clone()),
            ("--stop-signal", self.stop_signal.clone()),
            ("--stop-timeout", self.stop_timeout.map(|s| s.to_string())),
        ];
        for (flag, value) in optional {
            if let Some(value) = value {
                args.extend([flag.to_string(), value]);
            }
        }
        args.extend(self.extra_args.iter().cloned());
        args.push(self.image.clone());
        args
    }

    /// `docker create`: the container exists under its name but never ran (what a recreate
    /// leaves before its start).
    pub fn create(self) -> TestContainer {
        ensure_test_images();
        let mut args = self.run_args();
        args.splice(0..2, ["create".to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let id = docker_ok(&args);
        TestContainer { id, spec: self }
    }

    /// `docker run -d` (the images are built first if needed).
    pub fn run(self) -> TestContainer {
        ensure_test_images();
        let args = self.run_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let id = docker_ok(&args);
        TestContainer { id, spec: self }
    }
}

/// A running test container, force-removed on drop.
pub struct TestContainer {
    pub id: String,
    pub spec: ContainerSpec,
}

impl TestContainer {
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    fn inspect(&self, format: &str) -> Result<String, String> {
        docker(&["inspect", "--format", format, &self.id])
    }

    /// Its address on the spec's network (or the default bridge), when it has one.
    pub fn ip(&self) -> Option<IpAddr> {
        let network = self.spec.network.as_deref().unwrap_or("bridge");
        let format = format!("{{{{with index .NetworkSettings.Networks \"{network}\"}}}}{{{{.IPAddress}}}}{{{{end}}}}");
        self.inspect(&format).ok()?.parse().ok()
    }

    /// `http://<ip>:8080`, panicking when the container has no address (not running).
    pub fn base_url(&self) -> String {
        let ip = self
            .ip()
            .unwrap_or_else(|| panic!("{} has no IP address", self.name()));
        format!("http://{ip}:{APP_PORT}")
    }

    /// `State.Status`: running, exited, restarting, …
    pub fn status(&self) -> String {
        self.inspect("{{.State.Status}}").unwrap_or_else(|err| err)
    }

    /// `State.Health.Status`, empty without a health check.
    pub fn health(&self) -> String {
        self.inspect("{{if .State.Health}}{{.State.Health.Status}}{{end}}")
            .unwrap_or_default()
    }

    pub fn wait_healthy(&self, timeout: Duration) {
        super::wait::wait_until_blocking(
            timeout,
            &format!("{} to be healthy", self.name()),
            || self.health() == "healthy",
        );
    }

    pub fn stop(&self, timeout_secs: u32) {
        docker_ok(&["stop", "-t", &timeout_secs.to_string(), &self.id]);
    }

    pub fn kill(&self, signal: &str) {
        docker_ok(&["kill", "-s", signal, &self.id]);
    }

    pub fn start(&self) {
        docker_ok(&["start", &self.id]);
    }

    pub fn restart(&self, timeout_secs: u32) {
        docker_ok(&["restart", "-t", &timeout_secs.to_string(), &self.id]);
    }

    pub fn pause(&self) {
        docker_ok(&["pause", &self.id]);
    }

    pub fn unpause(&self) {
        docker_ok(&["unpause", &self.id]);
    }

    /// `docker rm -f` now (the drop then has nothing left to do).
    pub fn remove(&self) {
        docker_ok(&["rm", "-f", "-v", &self.id]);
    }

    /// `docker rm -f` + `docker run` with the same spec (same name and labels; a new ID, and
    /// possibly a new IP).
    pub fn recreate(&mut self) {
        let _ = docker(&["rm", "-f", "-v", &self.id]);
        let args = self.spec.run_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.id = docker_ok(&args);
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        if let Err(err) = docker(&["rm", "-f", "-v", &self.id]) {
            if !err.contains("No such container") {
                eprintln!(
                    "warning: test container {} not removed: {err}",
                    self.spec.name
                );
            }
        }
    }
}
