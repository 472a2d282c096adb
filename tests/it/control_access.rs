//! Who may use the control API: the Unix socket's file mode (0660; a client without
//! permission is refused), stale and foreign socket files, the TCP listener's bearer token.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use haproxy_drain::api::client::ControlClient;
use haproxy_drain::api::wire::ErrorBody;
use haproxy_drain::api::{serve_tcp, serve_unix, ApiState, ListenError, SOCKET_MODE};
use haproxy_drain::shutdown::Shutdown;
use hyper::{Method, StatusCode};

use crate::control_fake::{fake_controller, serve, NOBODY};

#[tokio::test]
async fn the_socket_is_0660_stale_files_are_replaced_live_ones_are_not() {
    let served = serve(fake_controller()).await;
    let mode = std::fs::metadata(&served.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);

    let state = || ApiState {
        controller: fake_controller(),
        rolls: None,
    };
    let second = serve_unix(&served.socket, SOCKET_MODE, state(), Shutdown::never()).await;
    assert!(
        matches!(second, Err(ListenError::InUse { .. })),
        "{second:?}"
    );

    // A socket file nobody listens on any more is replaced.
    let stale = served.dir.path().join("stale.sock");
    // A datagram socket file: no stream connect can ever succeed on it, even while a process
    // forked by a parallel test still holds the fd for a moment before its exec.
    drop(std::os::unix::net::UnixDatagram::bind(&stale).unwrap());
    let task = serve_unix(&stale, SOCKET_MODE, state(), Shutdown::never())
        .await
        .unwrap();
    assert_eq!(
        ControlClient::unix(&stale).servers().await.unwrap().len(),
        2
    );
    task.abort();

    let regular = served.dir.path().join("file");
    std::fs::write(&regular, "keep me").unwrap();
    let refused = serve_unix(&regular, SOCKET_MODE, state(), Shutdown::never()).await;
    assert!(matches!(refused, Err(ListenError::NotASocket { .. })));
    assert_eq!(std::fs::read_to_string(&regular).unwrap(), "keep me");
}

/// Runs `binary args…` as uid/gid `NOBODY` with no supplementary groups (root's group 0 would
/// otherwise still open a root:root 0660 socket), and returns (exit status, stderr).
fn run_as_nobody(binary: &Path, args: &[&str]) -> (std::process::ExitStatus, String) {
    let output = Command::new("/usr/bin/setpriv")
        .arg(format!("--reuid={NOBODY}"))
        .arg(format!("--regid={NOBODY}"))
        .arg("--clear-groups")
        .arg("--")
        .arg(binary)
        .args(args)
        .output()
        .unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Multi-threaded: the blocking child processes must not stall the server (were they let in).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_permission_on_the_socket_is_refused() {
    let served = serve(fake_controller()).await;
    let socket = served.socket.to_str().unwrap().to_string();
    // socat as nobody: the kernel refuses the connect on a root:root 0660 socket.
    let (status, stderr) = run_as_nobody(
        Path::new("/usr/bin/socat"),
        &["-u", "/dev/null", &format!("UNIX-CONNECT:{socket}")],
    );
    assert!(!status.success());
    assert!(stderr.contains("Permission denied"), "{stderr}");
    // Our CLI as nobody: refused, and says why.
    let (status, stderr) = run_as_nobody(
        Path::new(env!("CARGO_BIN_EXE_haproxy-drain")),
        &["drain", "web1", "--control-socket", &socket],
    );
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("permission denied on the control socket"),
        "{stderr}"
    );
    // Root (this test) still gets in: the refusal is the file mode, not a dead socket.
    assert_eq!(
        ControlClient::unix(&served.socket)
            .servers()
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn the_tcp_listener_wants_the_exact_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "correct-horse-battery-staple\n").unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let state = ApiState {
        controller: fake_controller(),
        rolls: None,
    };
    let (addr, task) = serve_tcp(
        "127.0.0.1:0".parse().unwrap(),
        &token_file,
        state,
        Shutdown::never(),
    )
    .await
    .unwrap();
    let addr = addr.to_string();
    let tokens = [
        (None, StatusCode::UNAUTHORIZED),
        (Some("wrong"), StatusCode::UNAUTHORIZED),
        (
            Some("correct-horse-battery-stapl"),
            StatusCode::UNAUTHORIZED,
        ),
        (Some("correct-horse-battery-staple"), StatusCode::OK),
    ];
    for (token, expected) in tokens {
        let client = ControlClient::tcp(addr.clone(), token.map(str::to_string));
        let started = Instant::now();
        let (status, body) = client
            .request(Method::GET, "/v1/servers", None)
            .await
            .unwrap();
        assert_eq!(status, expected, "token {token:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        if status == StatusCode::UNAUTHORIZED {
            let error: ErrorBody = serde_json::from_slice(&body).unwrap();
            assert!(error.error.contains("bearer token"), "{}", error.error);
        }
    }
    task.abort();
}
