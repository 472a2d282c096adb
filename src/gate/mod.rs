//! The Docker API gate: haproxy-drain serves the Docker Engine API on a Unix socket of its own
//! and forwards every request to the real engine, except that a request that would stop a
//! mapped, running container first drains that container's server on every HAProxy and waits
//! for 0 sessions (or the container's drain timeout). Docker has no pre-stop hook; this is one,
//! for every client that can be pointed at `DOCKER_HOST=unix://<gate socket>`.
//!
//! - [`classify`]: method + path + query → gated (stop, restart, kill with a terminating signal,
//!   `DELETE ?force=1`) or pass-through. Pure, table-tested.
//! - [`guard`]: the step before forwarding a gated request: one inspect (through `src/docker`),
//!   the mapping, a bounded HAProxy reachability check, the drain (through the controller's
//!   [`ControllerHandle`](crate::controller::ControllerHandle), trigger `gate`).
//! - [`proxy`]: the hyper server and the forwarding (streamed bodies, upgrades spliced).
//! - [`engine`]: where the engine is (`DOCKER_HOST` or `/var/run/docker.sock`).
//!
//! # Semantics
//!
//! - **What is gated.** `POST /containers/{ref}/stop`, `/restart`, `/kill` when the signal ends the
//!   container (the default SIGKILL, TERM, INT, QUIT, or the container's own stop signal), and
//!   `DELETE /containers/{ref}` with `force` set — with or without `/v1.NN`, by name, full id or
//!   id prefix (the engine's inspect resolves the reference the way the stop will). docker-compose
//!   1.29.2 stops with `POST /v1.41/containers/{id}/stop?t=N` before it renames the old container
//!   and creates the new one; `down`/`rm -f` use the same calls. Nothing else waits.
//! - **Unmapped or stopped containers** pass at once; the only added cost is that one inspect, on
//!   those request kinds only (every other request is forwarded without any look-up). No cache:
//!   names move (compose renames the old container and gives its name to the new one), so a
//!   cached reference could drain the wrong server, and the inspect is ~1 ms.
//! - **The drain** is `roll`'s: not sticky (the server comes back by itself once the container is
//!   started and healthy again — a restart, compose's new container), and it ignores the
//!   availability budget (the container goes away whatever we answer; refusing would only lose
//!   requests). Every drain outcome forwards: drained, drain timeout, an operator's hold.
//! - **The engine refuses the request after the drain** (any status but 2xx/304, e.g. a 409 or
//!   500): the container is still running, so the server is asked back with `ready` (health-gated).
//! - **The client disconnects mid-drain: the request is still forwarded** when the drain ends.
//!   The engine carries out a stop whose client went away (it does not cancel on disconnect), so
//!   a gate that abandoned it would behave differently from the engine — and a tool that timed
//!   out (compose's HTTP timeout) and retries finds the container stopping as it asked. Nothing
//!   is held: the container stops, and the watcher's normal path (die → maint, start → gate →
//!   restore) takes over; were the stop refused, `ready` gives the server back.
//! - **HAProxy unreachable** (no `show info` answer within [`guard::REACH_BOUND`]): fail-open by
//!   default — forward without a drain, logged and counted (`result="haproxy_unreachable"`).
//!   Some HAProxies answer but not all: drain what answers and wait [`guard::PARTIAL_WAIT`] at
//!   most (sessions cannot be summed). `--docker-gate-fail-closed`: refuse with 503 and a Docker
//!   error message instead, before anything is drained.
//! - **Streaming.** Request and response bodies are forwarded frame by frame (`build`, `load`,
//!   `cp` uploads are never buffered; `/events`, `logs -f`, `stats` chunks flow as they come).
//!   A `101` answer to `Connection: Upgrade` (attach, exec, `run -it`) splices the two connections
//!   with half-close passed on. Malformed HTTP gets hyper's 400 and ends that connection only.
//! - **The watcher is unchanged**: a stop that bypasses the gate is handled exactly as before, and
//!   the `kill`/`die` events of a gated stop find the server already out.
//! - Each request is counted in `haproxy_drain_gate_requests_total{kind,result}`.

pub mod classify;
pub mod engine;
pub mod guard;
pub mod proxy;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::task::JoinHandle;

pub use classify::{classify, Class, Gated, Kind};
pub use engine::{Engine, EngineError};

use crate::api::{self, ListenError};
use crate::controller::{Context, ControllerHandle};
use crate::shutdown::Shutdown;

/// Like docker.sock: owner and group may connect.
pub const GATE_SOCKET_MODE: u32 = 0o660;

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("--docker-gate {gate} is the engine's own socket ({engine}); the gate needs the real engine behind it (set DOCKER_HOST for haproxy-drain to the engine, not to the gate)")]
    Loop { gate: PathBuf, engine: String },
}

pub struct GateSettings {
    pub socket: PathBuf,
    pub mode: u32,
    /// Group name or gid; `None`: the engine socket's group, when it can be given.
    pub group: Option<String>,
    pub fail_closed: bool,
}

/// Binds the gate's socket and serves it until `shutdown`; the socket file is removed at the end.
pub async fn start(
    settings: GateSettings,
    ctx: Arc<Context>,
    controller: ControllerHandle,
    shutdown: Shutdown,
) -> Result<JoinHandle<()>, GateError> {
    let engine = Engine::from_env()?;
    if engine
        .socket_path()
        .is_some_and(|p| same_file(p, &settings.socket))
    {
        return Err(GateError::Loop {
            gate: settings.socket.clone(),
            engine: engine.to_string(),
        });
    }
    let explicit = match &settings.group {
        Some(group) => Some(api::resolve_group(group, "--docker-gate-group")?),
        None => None,
    };
    let listener =
        api::bind_unix(&settings.socket, settings.mode, explicit, "--docker-gate").await?;
    if explicit.is_none() {
        inherit_group(&settings.socket, &engine);
    }
    tracing::info!(socket = %settings.socket.display(), mode = format!("{:o}", settings.mode), %engine, fail_closed = settings.fail_closed, "docker gate listening");
    let metrics = ctx.metrics.clone();
    let service = Arc::new(proxy::GateService {
        engine,
        guard: guard::Guard {
            ctx,
            controller,
            fail_closed: settings.fail_closed,
        },
        metrics,
    });
    let socket = settings.socket.clone();
    let task = proxy::serve(listener, service, shutdown);
    Ok(tokio::spawn(async move {
        let _ = task.await;
        let _ = std::fs::remove_file(&socket);
    }))
}

/// Gives the gate socket the engine socket's group (the `docker` group, usually), so the users who
/// may use docker.sock may use the gate. Best effort: only root or a member may chown to it.
fn inherit_group(socket: &Path, engine: &Engine) {
    use std::os::unix::fs::MetadataExt;
    let Some(gid) = engine
        .socket_path()
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.gid())
    else {
        return;
    };
    if let Err(error) = std::os::unix::fs::chown(socket, None, Some(gid)) {
        tracing::warn!(socket = %socket.display(), gid, %error, "docker gate: cannot give the socket the engine socket's group; set --docker-gate-group");
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
