//! The shipped configuration files, checked by the tools that will read them: `haproxy -c` on
//! every HAProxy config, `systemd-analyze verify` on every unit, Docker's own parser on both
//! Dockerfiles, and the offline image's metadata. Plus the settings each must have.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::packaging_sidecar::{ensure_image, IMAGE, IMAGE_USER};
use crate::support::docker::{docker_ok, IMAGE_HC};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Lines without comments (`#` to the end) and blank lines, trimmed.
fn directives(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim().to_string())
        .filter(|line| !line.is_empty())
        .collect()
}

fn shipped_haproxy_configs() -> Vec<PathBuf> {
    let mut configs: Vec<PathBuf> = std::fs::read_dir(repo("haproxy"))
        .expect("haproxy/")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "cfg"))
        .collect();
    configs.sort();
    configs
}

/// What haproxy/demo.cfg reads from the environment (scripts/demo.sh sets the real values).
const DEMO_ENV: [(&str, &str); 7] = [
    ("DEMO_DIR", "/tmp/hdt-demo-check"),
    ("DEMO_SOCKET_GID", "60123"),
    ("DEMO_PORT", "18080"),
    ("DEMO_PROMETHEUS_PORT", "18405"),
    ("DEMO_APP_1", "192.0.2.1"),
    ("DEMO_APP_2", "192.0.2.2"),
    ("DEMO_APP_3", "192.0.2.3"),
];

#[test]
fn every_haproxy_config_passes_haproxy_check_and_has_the_settings_haproxy_drain_needs() {
    let vv = Command::new("haproxy")
        .arg("-vv")
        .output()
        .expect("haproxy -vv");
    assert!(
        String::from_utf8_lossy(&vv.stdout).contains("prometheus-exporter"),
        "this HAProxy has no Prometheus exporter: the configs' exporter frontend cannot be checked"
    );
    let configs = shipped_haproxy_configs();
    let names: Vec<String> = configs
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["agent.cfg", "compose.cfg", "demo.cfg", "haproxy.cfg"]
    );
    for config in &configs {
        let name = config.file_name().unwrap().to_string_lossy().into_owned();
        let output = Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(config)
            .envs(DEMO_ENV)
            .output()
            .expect("haproxy -c runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stdout.contains("Configuration file is valid"),
            "haproxy -c -f {name}: {stdout}{stderr}"
        );
        // The only warning allowed: compose.cfg's servers are Compose service names, which
        // resolve only on the Compose network (`init-addr libc,none` starts without them).
        for line in stderr.lines().filter(|l| l.contains("WARNING")) {
            assert!(
                name == "compose.cfg" && line.contains("could not resolve address 'app_"),
                "{name}: {line}"
            );
        }

        let lines = directives(&std::fs::read_to_string(config).unwrap());
        let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
        assert!(has("master-worker"), "{name}: master-worker");
        // Pull mode (agent.cfg) gives the sidecar a read-only socket; the others an admin one.
        let level = if name == "agent.cfg" {
            "level user"
        } else {
            "level admin"
        };
        let socket = lines
            .iter()
            .find(|l| l.starts_with("stats socket") && l.contains(level))
            .unwrap_or_else(|| panic!("{name}: a stats socket with {level}"));
        assert!(socket.contains("mode 660"), "{name}: {socket}");
        assert!(
            socket.contains(" group ") || socket.contains(" gid "),
            "{name}: the socket's group: {socket}"
        );
        let mut path = socket
            .split_whitespace()
            .nth(2)
            .unwrap()
            .trim_matches('"')
            .to_string();
        for (key, value) in DEMO_ENV {
            path = path.replace(&format!("${{{key}}}"), value);
        }
        let dir = Path::new(&path).parent().unwrap();
        assert!(
            !["/", "/run", "/var/run", "/tmp", "/var/lib"].contains(&dir.to_str().unwrap()),
            "{name}: the socket sits in a directory of its own: {socket}"
        );
        for setting in [
            "fastinter",
            "slowstart",
            "option redispatch",
            "option httpchk",
        ] {
            assert!(has(setting), "{name}: {setting}");
        }
        assert!(
            has("http-request use-service prometheus-exporter"),
            "{name}: HAProxy's exporter"
        );
        assert!(
            !lines.iter().any(|l| l.starts_with("retry-on")),
            "{name}: no retry-on by default"
        );
    }
    agent_config_asks_haproxy_drain_about_every_server();
    // The commented reason is part of the example.
    let example = read("haproxy/haproxy.cfg");
    assert!(example.contains("# No `retry-on` here, on purpose."));
}

/// agent.cfg: every server carries the agent check (through `default-server`) and names itself
/// in its `agent-send`, as `backend/server`, the way the responder looks it up.
fn agent_config_asks_haproxy_drain_about_every_server() {
    let lines = directives(&read("haproxy/agent.cfg"));
    let defaults = lines
        .iter()
        .find(|l| l.starts_with("default-server"))
        .expect("agent.cfg: default-server");
    for option in [
        "agent-check",
        "agent-addr 127.0.0.1",
        "agent-port 9749",
        "agent-inter 100ms",
    ] {
        assert!(
            defaults.contains(option),
            "agent.cfg default-server: {option}"
        );
    }
    let mut backend = "";
    let mut servers = 0;
    for line in &lines {
        if let Some(name) = line.strip_prefix("backend ") {
            backend = name.trim();
        }
        if let Some(rest) = line.strip_prefix("server ") {
            let server = rest.split_whitespace().next().unwrap();
            let send = format!("agent-send \"{backend}/{server}\\n\"");
            assert!(
                line.ends_with(&send),
                "agent.cfg: {line} should end with {send}"
            );
            servers += 1;
        }
    }
    assert_eq!(servers, 3, "agent.cfg: three servers");
}

/// Options of a unit file: `Key=value` lines (continuations joined).
fn unit_options(text: &str) -> Vec<(String, String)> {
    let joined = text.replace("\\\n", " ");
    joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn seconds_after(text: &str, flag: &str) -> Option<u64> {
    let at = text.find(flag)? + flag.len();
    text[at..].split_whitespace().next()?.parse().ok()
}

#[test]
fn the_systemd_units_run_docker_in_the_foreground_and_pass_systemd_analyze_verify() {
    for unit in ["systemd/haproxy-drain.service", "systemd/app@.service"] {
        let options = unit_options(&read(unit));
        let get = |key: &str| -> Vec<&str> {
            options
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let all = |key: &str| get(key).join(" ");
        assert!(all("Requires").contains("docker.service"), "{unit}");
        assert!(all("After").contains("docker.service"), "{unit}");
        assert!(
            !get("EnvironmentFile").is_empty(),
            "{unit}: EnvironmentFile"
        );
        assert_eq!(get("Restart"), ["always"], "{unit}");
        let pre = all("ExecStartPre");
        assert!(
            pre.starts_with("-/usr/bin/docker rm -f "),
            "{unit}: a stale container is removed, failure allowed: {pre}"
        );
        let start = all("ExecStart");
        assert!(start.starts_with("/usr/bin/docker run "), "{unit}: {start}");
        assert!(
            !start.contains(" -d ") && !start.contains("--detach"),
            "{unit}: docker run in the foreground: {start}"
        );
        let stop_timeout: u64 = all("TimeoutStopSec").parse().expect("TimeoutStopSec");
        let docker_stop =
            seconds_after(&all("ExecStop"), "docker stop -t ").expect("docker stop -t");
        // The drain timeout: haproxy-drain's default (30 s) or the unit's label.
        let drain = seconds_after(&start, "haproxy-drain.drain-timeout=").unwrap_or(30);
        assert!(
            stop_timeout > docker_stop && stop_timeout > drain,
            "{unit}: TimeoutStopSec={stop_timeout} must exceed docker stop -t {docker_stop} and the drain timeout {drain}s"
        );
    }
    let sidecar = read("systemd/haproxy-drain.service");
    for mount in [
        "/var/run/docker.sock:/var/run/docker.sock",
        "${HAPROXY_SOCKET_DIR}:/var/run/haproxy",
        "haproxy-drain-state:/var/lib/haproxy-drain",
    ] {
        assert!(
            sidecar.contains(mount),
            "haproxy-drain.service mounts {mount}"
        );
    }
    assert!(sidecar.contains("--group-add ${DOCKER_GID} --group-add ${HAPROXY_GID}"));
    let env = read("systemd/haproxy-drain.env");
    for key in [
        "HAPROXY_DRAIN_IMAGE=",
        "DOCKER_GID=",
        "HAPROXY_GID=",
        "HAPROXY_SOCKET_DIR=",
    ] {
        assert!(env.contains(key), "haproxy-drain.env sets {key}");
    }

    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "skipping systemd-analyze verify: systemd-analyze is not installed (make deps installs the systemd package)"
        );
        return;
    }
    // A template is verified as one of its instances.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        repo("systemd/haproxy-drain.service"),
        dir.path().join("haproxy-drain.service"),
    )
    .unwrap();
    std::fs::copy(
        repo("systemd/app@.service"),
        dir.path().join("app@1.service"),
    )
    .unwrap();
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("haproxy-drain.service"))
        .arg(dir.path().join("app@1.service"))
        .output()
        .expect("systemd-analyze runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // verify exits 0 on unknown keys and only prints them: any output is a finding.
    assert!(
        output.status.success() && report.trim().is_empty(),
        "systemd-analyze verify: {report}"
    );
}

/// A Dockerfile's instructions: continuations joined, comments and blank lines dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (keyword, rest) = current.split_once(' ').unwrap_or((current.as_str(), ""));
        out.push((
            keyword.to_ascii_uppercase(),
            rest.split_whitespace().collect::<Vec<_>>().join(" "),
        ));
        current.clear();
    }
    out
}

/// The instructions of the last stage that define how the image runs.
fn runtime(instructions: &[(String, String)]) -> Vec<(String, String)> {
    let last_from = instructions.iter().rposition(|(k, _)| k == "FROM").unwrap();
    instructions[last_from..]
        .iter()
        .filter(|(k, _)| {
            [
                "ENV",
                "VOLUME",
                "EXPOSE",
                "USER",
                "STOPSIGNAL",
                "HEALTHCHECK",
                "ENTRYPOINT",
                "CMD",
            ]
            .contains(&k.as_str())
        })
        .cloned()
        .collect()
}

#[test]
fn the_users_dockerfile_is_multi_stage_parses_and_runs_like_the_offline_image() {
    let users = instructions(&read("docker/Dockerfile"));
    let offline = instructions(&read("docker/scratch.Dockerfile"));
    let froms: Vec<&str> = users
        .iter()
        .filter(|(k, _)| k == "FROM")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(froms.len(), 2, "a builder and a runtime stage: {froms:?}");
    assert!(froms[0].ends_with(" AS build"), "{froms:?}");
    assert!(
        users
            .iter()
            .any(|(k, v)| k == "COPY" && v.contains("--from=build")),
        "the runtime stage takes the binary from the builder"
    );
    assert!(
        users
            .iter()
            .any(|(k, v)| k == "RUN" && v.contains("crt-static") && v.contains("--locked")),
        "a static, locked release build"
    );
    assert_eq!(
        runtime(&users),
        runtime(&offline),
        "docker/Dockerfile and docker/scratch.Dockerfile run alike"
    );
    let runtime = runtime(&offline);
    let value = |key: &str| {
        runtime
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{key}"))
    };
    assert_eq!(value("USER"), IMAGE_USER);
    assert!(value("HEALTHCHECK").ends_with(r#"CMD ["/haproxy-drain", "healthcheck"]"#));
    assert_eq!(value("STOPSIGNAL"), "SIGTERM");
    assert_eq!(value("VOLUME"), r#"["/var/lib/haproxy-drain"]"#);
    for (name, file) in [
        ("docker/Dockerfile", &users),
        ("docker/scratch.Dockerfile", &offline),
    ] {
        let labels: String = file
            .iter()
            .filter(|(k, _)| k == "LABEL")
            .map(|(_, v)| v.as_str())
            .collect();
        for key in ["title", "description", "licenses", "version", "revision"] {
            assert!(
                labels.contains(&format!("org.opencontainers.image.{key}=")),
                "{name}: org.opencontainers.image.{key}"
            );
        }
    }

    // Docker's own parser on docker/Dockerfile. No base image can be pulled here, so the FROM
    // lines are pointed at local images: the build then stops at the first RUN (the test app's
    // image has no shell), after the daemon has parsed and counted every instruction.
    ensure_image();
    let context = tempfile::tempdir().expect("temp dir");
    let local = read("docker/Dockerfile")
        .replace(
            "FROM rust:1-bookworm AS build",
            &format!("FROM {IMAGE_HC} AS build"),
        )
        .replace(
            "FROM gcr.io/distroless/static-debian12:nonroot",
            "FROM scratch",
        );
    std::fs::write(context.path().join("Dockerfile"), local).unwrap();
    let output = Command::new("docker")
        .args(["build", "--rm", "--force-rm", "-f"])
        .arg(context.path().join("Dockerfile"))
        .arg(context.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("docker build runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let count = users.len();
    assert!(
        report.contains(&format!("Step 1/{count} : FROM {IMAGE_HC} AS build")),
        "Docker counted {count} instructions:\n{report}"
    );
    assert!(
        report.contains(&format!("/{count} : RUN ")) && !report.contains("parse error"),
        "the build reached the RUN step:\n{report}"
    );

    // The offline image carries the same runtime settings, as Docker reads them.
    let inspect = |format: &str| docker_ok(&["image", "inspect", "--format", format, IMAGE]);
    assert_eq!(inspect("{{.Config.User}}"), IMAGE_USER);
    assert_eq!(
        inspect("{{json .Config.Healthcheck.Test}}"),
        r#"["CMD","/haproxy-drain","healthcheck"]"#
    );
    assert_eq!(inspect("{{.Config.StopSignal}}"), "SIGTERM");
    assert_eq!(
        inspect("{{json .Config.Volumes}}"),
        r#"{"/var/lib/haproxy-drain":{}}"#
    );
    assert_eq!(
        inspect("{{json .Config.Entrypoint}}"),
        r#"["/haproxy-drain"]"#
    );
    assert_eq!(
        inspect("{{index .Config.Labels \"org.opencontainers.image.version\"}}"),
        env!("CARGO_PKG_VERSION")
    );
}
