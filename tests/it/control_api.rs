//! The control API's shape against a fake controller task: statuses per error, JSON bodies,
//! socket file mode and permissions, the TCP bearer token, rolls through the API.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use haproxy_drain::api::client::{ClientError, ControlClient};
use haproxy_drain::api::wire::{DrainBody, ErrorBody, ReadyBody};
use haproxy_drain::api::{serve_tcp, serve_unix, ApiState, ListenError, SOCKET_MODE};
use haproxy_drain::controller::handle::{
    ControlError, ControlRequest, DrainReport, ReadyReport, ServerView,
};
use haproxy_drain::controller::{ControllerHandle, Owner, Target};
use haproxy_drain::haproxy::types::ServerId;
use haproxy_drain::shutdown::{self, Shutdown, ShutdownTrigger};
use hyper::{Method, StatusCode};
use tokio::sync::mpsc;

/// The uid of `nobody`: a client without permission on a root-owned 0660 socket.
const NOBODY: u32 = 65534;

fn server(name: &str) -> ServerId {
    ServerId::new("be", name)
}

fn view(name: &str) -> ServerView {
    ServerView {
        backend: "be".into(),
        server: name.into(),
        container: Some(format!("{name}-container")),
        addr: "172.18.0.2".into(),
        port: Some(8080),
        state: "UP".into(),
        weight: 10,
        initial_weight: 10,
        sessions: 2,
        check: "L7OK".into(),
        owner: Owner::None,
        phase: "in_rotation".into(),
    }
}

/// The error the fake controller answers for a target named like it.
fn scripted_error(target: &Target) -> Option<ControlError> {
    let name = match target {
        Target::Container(name) => name.as_str(),
        Target::Server(id) => id.server.as_str(),
    };
    Some(match name {
        "missing" => ControlError::NotFound(target.to_string()),
        "last" => ControlError::Budget {
            server: server("last"),
            backend: "be".into(),
            ready_after: 0,
            max_out: 0,
        },
        "busy" => ControlError::Conflict("a roll holds it".into()),
        "slow" => ControlError::DrainTimeout {
            server: server("slow"),
            sessions_left: 3,
            waited_ms: 100,
        },
        "sick" => ControlError::ReadyTimeout {
            server: server("sick"),
            waited_ms: 100,
            reason: "unhealthy".into(),
        },
        "refused" => ControlError::Haproxy("Permission denied".into()),
        "gone" => ControlError::Unavailable,
        _ => return None,
    })
}

fn fake_controller() -> ControllerHandle {
    let (tx, mut rx) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Some(request) = rx.recv().await {
            match request {
                ControlRequest::Status { reply } => {
                    let _ = reply.send(vec![view("web1"), view("web2")]);
                }
                ControlRequest::Drain { request, reply } => {
                    let answer = match scripted_error(&request.target) {
                        Some(error) => Err(error),
                        None => Ok(DrainReport {
                            server: server("web1"),
                            container: Some("web1-container".into()),
                            drained: request.wait,
                            sessions_left: if request.wait { 0 } else { 2 },
                            elapsed_ms: 5,
                        }),
                    };
                    let _ = reply.send(answer);
                }
                ControlRequest::Ready { request, reply } => {
                    let answer = match scripted_error(&request.target) {
                        Some(error) => Err(error),
                        None => Ok(ReadyReport {
                            server: server("web1"),
                            container: None,
                            in_rotation: true,
                            elapsed_ms: 5,
                        }),
                    };
                    let _ = reply.send(answer);
                }
            }
        }
    });
    ControllerHandle::new(tx)
}

struct Served {
    dir: tempfile::TempDir,
    socket: PathBuf,
    _trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<()>,
}

async fn serve(controller: ControllerHandle) -> Served {
    let dir = tempfile::tempdir().unwrap();
    // Traversable by others, so that only the socket's own mode decides who may connect.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.path().join("run/control.sock");
    let (trigger, listener) = shutdown::channel();
    let state = ApiState {
        controller,
        rolls: None,
    };
    let task = serve_unix(&socket, SOCKET_MODE, state, listener)
        .await
        .unwrap();
    Served {
        dir,
        socket,
        _trigger: trigger,
        task,
    }
}

async fn status_of(client: &ControlClient, method: Method, path: &str, body: &str) -> StatusCode {
    let payload = (!body.is_empty()).then(|| body.as_bytes().to_vec());
    let (status, bytes) = client.request(method, path, payload).await.unwrap();
    if !status.is_success() {
        let error: ErrorBody = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{path} {body}: error body is not JSON ({e})"));
        assert!(!error.error.is_empty());
    }
    status
}

#[tokio::test]
async fn every_controller_error_maps_to_its_status() {
    let served = serve(fake_controller()).await;
    let client = ControlClient::unix(&served.socket);
    let cases = [
        ("web1", StatusCode::OK),
        ("missing", StatusCode::NOT_FOUND),
        ("last", StatusCode::CONFLICT),
        ("busy", StatusCode::CONFLICT),
        ("slow", StatusCode::GATEWAY_TIMEOUT),
        ("be/sick", StatusCode::GATEWAY_TIMEOUT),
        ("refused", StatusCode::BAD_GATEWAY),
        ("gone", StatusCode::SERVICE_UNAVAILABLE),
    ];
    for (target, expected) in cases {
        for path in ["/v1/drain", "/v1/ready"] {
            let body = format!(r#"{{"target":"{target}","wait":true}}"#);
            assert_eq!(
                status_of(&client, Method::POST, path, &body).await,
                expected,
                "{path} {target}"
            );
        }
    }
    let bad_requests = [
        "{not json",
        r#"{"target":"web1","wiat":true}"#,
        r#"{"target":"  "}"#,
        r#"{"wait":true}"#,
    ];
    for body in bad_requests {
        assert_eq!(
            status_of(&client, Method::POST, "/v1/drain", body).await,
            StatusCode::BAD_REQUEST,
            "{body}"
        );
    }
    assert_eq!(
        status_of(&client, Method::GET, "/v1/nothing", "").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status_of(
            &client,
            Method::POST,
            "/v1/rolls",
            r#"{"containers":["a"]}"#
        )
        .await,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn typed_answers_round_trip_through_the_client() {
    let served = serve(fake_controller()).await;
    let client = ControlClient::unix(&served.socket);
    let servers = client.servers().await.unwrap();
    assert_eq!(servers, vec![view("web1"), view("web2")]);

    let drain = |target: &str| DrainBody {
        target: target.into(),
        wait: true,
        timeout_ms: Some(100),
        force: false,
    };
    let report = client.drain(&drain("web1-container")).await.unwrap();
    assert!(report.drained);
    match client.drain(&drain("slow")).await.unwrap_err() {
        ClientError::Api { status, body } => {
            assert_eq!(status, 504);
            assert!(matches!(
                body.detail,
                Some(ControlError::DrainTimeout {
                    sessions_left: 3,
                    ..
                })
            ));
            assert_eq!(body.error, "be/slow still has 3 session(s) after 100 ms");
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    let ready = ReadyBody {
        target: "be/web1".into(),
        wait: true,
        timeout_ms: None,
    };
    assert!(client.ready(&ready).await.unwrap().in_rotation);
}

#[tokio::test]
async fn a_stopped_controller_answers_503() {
    let (tx, rx) = mpsc::channel(1);
    drop(rx);
    let served = serve(ControllerHandle::new(tx)).await;
    let client = ControlClient::unix(&served.socket);
    match client.servers().await.unwrap_err() {
        ClientError::Api { status, .. } => assert_eq!(status, 503),
        other => panic!("expected 503, got {other:?}"),
    }
}

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
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
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

#[tokio::test]
async fn shutdown_stops_the_server_and_removes_the_socket() {
    let Served {
        dir: _dir,
        socket,
        _trigger: trigger,
        task,
    } = serve(fake_controller()).await;
    trigger.fire();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert!(!socket.exists());
    let error = ControlClient::unix(&socket).servers().await.unwrap_err();
    assert!(error.is_no_daemon(), "{error:?}");
    assert!(error
        .to_string()
        .contains("is `haproxy-drain run` running?"));
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
