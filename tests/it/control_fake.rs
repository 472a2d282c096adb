//! A fake controller task for the control API tests: answers `ControlRequest`s from a script
//! (the target's name picks the error), and serves the API on a Unix socket in a temp dir.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use haproxy_drain::api::{serve_unix, ApiState, SOCKET_MODE};
use haproxy_drain::controller::handle::{
    ControlError, ControlRequest, DrainReport, ReadyReport, ServerView,
};
use haproxy_drain::controller::{ControllerHandle, Owner, Target};
use haproxy_drain::haproxy::types::ServerId;
use haproxy_drain::shutdown::{self, ShutdownTrigger};
use tokio::sync::mpsc;

/// The uid of `nobody`: a client without permission on a root-owned 0660 socket.
pub const NOBODY: u32 = 65534;

pub fn server(name: &str) -> ServerId {
    ServerId::new("be", name)
}

pub fn view(name: &str) -> ServerView {
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

pub fn fake_controller() -> ControllerHandle {
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
                // Not used by the control API's tests.
                ControlRequest::SurgeAdd { reply, .. } => {
                    let _ = reply.send(Err(ControlError::Unavailable));
                }
                ControlRequest::SurgeRemove { reply, .. } => {
                    let _ = reply.send(Err(ControlError::Unavailable));
                }
                ControlRequest::DrainHoldingSlot { reply, .. } => {
                    let _ = reply.send(Err(ControlError::Unavailable));
                }
                ControlRequest::FleetStatus { reply } => {
                    let _ = reply.send(None);
                }
                ControlRequest::Adopt { reply, .. } => {
                    let _ = reply.send(Err(ControlError::Unavailable));
                }
            }
        }
    });
    ControllerHandle::new(tx)
}

pub struct Served {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub trigger: ShutdownTrigger,
    pub task: tokio::task::JoinHandle<()>,
}

pub async fn serve(controller: ControllerHandle) -> Served {
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
        trigger,
        task,
    }
}
