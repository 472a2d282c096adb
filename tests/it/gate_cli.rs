//! Everything that is not a stop passes through the gate unchanged: the docker CLI's own output
//! (and exit code) through the gate is compared with the same command straight at the engine —
//! ps, run -i / -it, exec -i / -it, attach, logs -f, events, build, cp both ways. Unmapped
//! containers are stopped without delay.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::gate_world::{
    assert_ok, docker_at, engine_host, ensure_shell_image, gate_count, shell_context, text,
    GateSocket, SHELL_IMAGE,
};
use crate::support::daemon::Daemon;
use crate::support::docker::{docker, unique_name};
use crate::support::haproxy::HaproxyFixture;
use crate::support::roll::blocking;

/// `docker <args>` at `host` with `stdin` written to it, then closed.
fn docker_stdin(host: &str, args: &[&str], stdin: &[u8]) -> Output {
    docker_input(host, args, stdin, false)
}

/// With `keep_open`, stdin stays open until docker exits: `docker attach` stops relaying the
/// container's output once its own stdin ends, even when the container is still answering.
fn docker_input(host: &str, args: &[&str], stdin: &[u8], keep_open: bool) -> Output {
    let mut child = Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", host)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker runs");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).expect("write stdin");
    let held = keep_open.then_some(input);
    let output = child.wait_with_output().expect("docker finishes");
    drop(held);
    output
}

/// `docker <command>` under a pseudo-terminal (`script`), so `-t` gets a real tty.
/// `script` itself echoes the end of its (empty) stdin into the tty as `^@`, earlier or later
/// depending on timing: that echo is dropped, it is no output of docker's.
fn docker_tty(host: &str, command: &str) -> Output {
    let mut output = Command::new("script")
        .args(["-q", "-e", "-c", &format!("docker {command}"), "/dev/null"])
        .env("DOCKER_HOST", host)
        .stdin(Stdio::null())
        .output()
        .expect("script runs");
    let text = String::from_utf8_lossy(&output.stdout).replace("^@", "");
    output.stdout = text.into_bytes();
    output
}

/// Runs `run` against the gate and against the engine; both must agree on exit code and stdout.
fn same(gate: &GateSocket, what: &str, run: impl Fn(&str) -> Output) -> Output {
    let through = run(&gate.host());
    let direct = run(&engine_host());
    assert_eq!(
        (through.status.code(), &through.stdout),
        (direct.status.code(), &direct.stdout),
        "{what}: through the gate\n{}\nstraight at the engine\n{}",
        text(&through),
        text(&direct)
    );
    through
}

/// A detached shell-image container (removed on drop).
struct Shell {
    name: String,
}

impl Shell {
    fn run(tag: &str, script: &str, extra: &[&str]) -> Self {
        let name = unique_name("shell");
        let mut args = vec![
            "run",
            "-d",
            "--name",
            &name,
            "--label",
            "hdt.test=1",
            "--label",
            tag,
        ];
        args.extend(extra);
        args.extend([SHELL_IMAGE, "/bin/sh", "-c", script]);
        docker(&args).unwrap_or_else(|e| panic!("{e}"));
        Self { name }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.name]);
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docker_cli_sees_the_same_through_the_gate_as_at_the_engine() {
    blocking(ensure_shell_image).await;
    let gate = GateSocket::new();
    let haproxy = HaproxyFixture::start("backend be_gate_cli\n").await;
    let daemon = Daemon::start(&[haproxy.admin_url().to_string()], &[gate.flag()]).await;
    let tag = format!("hdt.gatecli={}", unique_name("cli"));

    blocking(move || {
        let idle = Shell::run(&tag, "sleep 3600", &[]);
        let filter = format!("label={tag}");
        same(&gate, "docker ps", |host| {
            docker_at(
                host,
                &[
                    "ps",
                    "-a",
                    "--no-trunc",
                    "--filter",
                    &filter,
                    "--format",
                    "{{.ID}} {{.Names}} {{.Image}} {{.State}} {{.Command}}",
                ],
            )
        });
        let ps = docker_at(&gate.host(), &["ps", "-q", "--filter", &filter]);
        assert_eq!(
            String::from_utf8_lossy(&ps.stdout).lines().count(),
            1,
            "{}",
            text(&ps)
        );

        same(&gate, "docker run -i", |host| {
            docker_stdin(
                host,
                &["run", "--rm", "-i", SHELL_IMAGE, "/bin/cat"],
                b"stdin through\n",
            )
        });
        let tty = same(&gate, "docker run -it", |host| {
            docker_tty(
                host,
                &format!("run --rm -it {SHELL_IMAGE} /bin/sh -c 'echo in a tty; exit 3'"),
            )
        });
        assert_eq!(tty.status.code(), Some(3));
        assert!(
            String::from_utf8_lossy(&tty.stdout).contains("in a tty\r\n"),
            "{}",
            text(&tty)
        );
        same(&gate, "docker exec -i", |host| {
            docker_stdin(host, &["exec", "-i", &idle.name, "/bin/cat"], b"to exec\n")
        });
        let exec = same(&gate, "docker exec -it", |host| {
            docker_tty(
                host,
                &format!("exec -it {} /bin/sh -c 'echo exec tty; exit 4'", idle.name),
            )
        });
        assert_eq!(exec.status.code(), Some(4));

        // attach: stdin goes in through the hijacked connection, the answer comes back out.
        let attached = same(&gate, "docker attach", |host| {
            let reader = Shell::run(&tag, "read line; echo got:$line; exit 5", &["-i"]);
            docker_input(host, &["attach", &reader.name], b"hello\n", true)
        });
        assert_eq!(String::from_utf8_lossy(&attached.stdout), "got:hello\n");
        assert_eq!(attached.status.code(), Some(5));

        // logs -f of a container that writes once more a second later: a live chunked stream.
        let talker = Shell::run(&tag, "echo one; echo two; sleep 1; echo three", &[]);
        let (a, b) = std::thread::scope(|scope| {
            let through = scope.spawn(|| docker_at(&gate.host(), &["logs", "-f", &talker.name]));
            let direct = scope.spawn(|| docker_at(&engine_host(), &["logs", "-f", &talker.name]));
            (through.join().expect("logs"), direct.join().expect("logs"))
        });
        assert_eq!(a.stdout, b.stdout, "logs -f:\n{}\n{}", text(&a), text(&b));
        assert_eq!(String::from_utf8_lossy(&a.stdout), "one\ntwo\nthree\n");

        // events: both streams open while a container lives and dies, closed by --until.
        let since = now_secs();
        let until = (since + 8).to_string();
        let name = unique_name("events");
        let filter = format!("container={name}");
        // `--since` too: a subscriber that connects after the container started still gets
        // its events replayed; the stream then stays open, live, until `--until`.
        let since = since.to_string();
        let args = [
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            &filter,
            "--format",
            "{{.Action}}",
        ];
        let (a, b) = std::thread::scope(|scope| {
            let through = scope.spawn(|| docker_at(&gate.host(), &args));
            let direct = scope.spawn(|| docker_at(&engine_host(), &args));
            let _ = docker(&[
                "run",
                "--rm",
                "--name",
                &name,
                "--label",
                "hdt.test=1",
                SHELL_IMAGE,
                "/bin/echo",
                "x",
            ]);
            (
                through.join().expect("events"),
                direct.join().expect("events"),
            )
        });
        assert_eq!(a.stdout, b.stdout, "events:\n{}\n{}", text(&a), text(&b));
        // On a loaded machine the container may outlive the window; its start is always in it.
        assert!(
            String::from_utf8_lossy(&a.stdout).contains("start"),
            "{}",
            text(&a)
        );

        // build: the same context through both gives the same layers.
        let context = shell_context();
        let context = context.path().display().to_string();
        let layers = |host: &str| {
            let image = unique_name("build");
            let built = docker_at(host, &["build", "-q", "-t", &image, &context]);
            assert_ok(&built, "docker build");
            let layers = docker(&["image", "inspect", "-f", "{{.RootFS.Layers}}", &image]);
            let _ = docker(&["rmi", "-f", &image]);
            layers.unwrap_or_else(|e| e)
        };
        assert_eq!(
            layers(&gate.host()),
            layers(&engine_host()),
            "docker build layers"
        );

        // cp: 5 MB in through the gate and out straight at the engine, and the other way round.
        let dir = tempfile::tempdir().expect("temp dir");
        let payload: Vec<u8> = (0..5_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let file = dir.path().join("payload");
        std::fs::write(&file, &payload).expect("payload");
        let file = file.display().to_string();
        for (into, out_of) in [(gate.host(), engine_host()), (engine_host(), gate.host())] {
            let back = dir.path().join("back");
            let _ = std::fs::remove_file(&back);
            assert_ok(
                &docker_at(&into, &["cp", &file, &format!("{}:/payload", idle.name)]),
                "docker cp in",
            );
            assert_ok(
                &docker_at(
                    &out_of,
                    &[
                        "cp",
                        &format!("{}:/payload", idle.name),
                        &back.display().to_string(),
                    ],
                ),
                "docker cp out",
            );
            assert!(
                std::fs::read(&back).expect("copied back") == payload,
                "docker cp changed the bytes"
            );
        }

        // Unmapped containers: a stop and a non-terminating kill pass without a drain.
        assert_ok(
            &docker_at(&gate.host(), &["kill", "-s", "HUP", &idle.name]),
            "kill -s HUP",
        );
        assert_ok(
            &docker_at(&gate.host(), &["stop", "-t", "0", &idle.name]),
            "stop",
        );
    })
    .await;
    let metrics = daemon.metrics_text().await;
    assert_eq!(gate_count(&metrics, "stop", "unmapped"), 1.0, "{metrics}");
    assert_eq!(
        gate_count(&metrics, "kill", "not_terminating"),
        1.0,
        "{metrics}"
    );
    assert!(
        gate_count(&metrics, "other", "forwarded") > 10.0,
        "{metrics}"
    );
}
