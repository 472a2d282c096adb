//! The sockets and files the daemon itself exposes: the control socket's group (its members get
//! in, with mode 0660 nobody else but the owner), and the TCP token file that must not be
//! readable by others (the daemon refuses to start).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use crate::control_fake::NOBODY;
use crate::support::daemon::Daemon;
use crate::support::haproxy::{free_loopback_port, HaproxyFixture};

/// `nogroup` on Debian: a group root's test process is not in.
const NOGROUP: u32 = 65534;

fn socat_as(uid: u32, gid: u32, socket: &str) -> (bool, String) {
    let output = Command::new("/usr/bin/setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .arg("--")
        .args(["/usr/bin/socat", "-u", "/dev/null"])
        .arg(format!("UNIX-CONNECT:{socket}"))
        .output()
        .expect("setpriv runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_socket_belongs_to_the_configured_group() {
    let haproxy = HaproxyFixture::start("backend be\n    server s1 127.0.0.1:1 weight 1\n").await;
    let daemon = Daemon::start(
        &[haproxy.admin_url().to_string()],
        &["--control-socket-group=nogroup".to_string()],
    )
    .await;
    let socket = daemon.control_socket();
    let meta = std::fs::metadata(&socket).expect("control socket exists");
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), NOGROUP, "group set by name");
    let path = socket.to_str().expect("utf-8 path").to_string();
    let (member, other) = tokio::task::block_in_place(|| {
        (
            socat_as(NOBODY, NOGROUP, &path),
            socat_as(NOBODY, 4242, &path),
        )
    });
    assert!(member.0, "a member of the group connects: {}", member.1);
    assert!(!other.0, "anyone else is refused");
    assert!(other.1.contains("Permission denied"), "{}", other.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_refuses_a_token_file_others_can_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let token = dir.path().join("token");
    std::fs::write(&token, "correct-horse-battery-staple\n").expect("write token");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let args = [
        "run".to_string(),
        "--haproxy=unix:///nonexistent/haproxy.sock".to_string(),
        format!("--state-file={}", dir.path().join("state.json").display()),
        format!(
            "--control-socket={}",
            dir.path().join("control.sock").display()
        ),
        format!("--metrics-listen=127.0.0.1:{}", free_loopback_port()),
        format!("--control-listen=127.0.0.1:{}", free_loopback_port()),
        format!("--control-token-file={}", token.display()),
    ];
    let output = tokio::task::block_in_place(|| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_haproxy-drain"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("daemon starts");
        // It must exit by itself; a daemon that serves instead is killed after the deadline.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while child.try_wait().expect("wait").is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait_with_output().expect("output")
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "the daemon must not start: {stderr}"
    );
    assert!(
        stderr.contains("others may read it") && stderr.contains(&token.display().to_string()),
        "{stderr}"
    );
}
