//! A Docker engine with 500 extra containers that do not exist: a proxy in front of the real
//! engine that adds synthetic containers to `GET /containers/json`, answers their inspect, and
//! merges a storm of their events into the real `/events` stream, so that a whole daemon sees
//! the storm and a real container's events at the same time.
//!
//! The synthetic containers are labelled for one backend (`haproxy-drain.backend`, `.server`,
//! `.port`), run at 127.0.0.1 and report a healthy Docker health check, so the daemon's gate
//! passes without a listener. Their list and inspect answers follow the events sent so far (the
//! last one wins), as the real engine's would.

#![allow(dead_code)] // benches include tests/it/support and use none of this

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, BodyStream, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::proxy::DOCKER_SOCKET;

type Body = BoxBody<Bytes, hyper::Error>;

/// One synthetic container's state, as its last event left it.
#[derive(Debug, Clone)]
struct Synthetic {
    name: String,
    port: u16,
    running: bool,
    started_at_nanos: i64,
}

struct State {
    backend: String,
    containers: Mutex<Vec<Synthetic>>,
    /// The storm goes to the first `/events` stream only (a reconnect replays real events).
    storm: Mutex<Option<mpsc::Receiver<Bytes>>>,
}

pub struct StormEngine {
    _dir: tempfile::TempDir,
    path: PathBuf,
    state: Arc<State>,
    storm_tx: mpsc::Sender<Bytes>,
    task: JoinHandle<()>,
}

impl Drop for StormEngine {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl StormEngine {
    /// `count` synthetic containers `storm-{i}` for `backend`, server `s{i}` on `base_port + i`.
    pub fn start(backend: &str, count: usize, base_port: u16) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the storm engine");
        let path = dir.path().join("storm.sock");
        let listener = UnixListener::bind(&path).expect("bind the storm engine socket");
        let started = now_nanos();
        let containers = (0..count)
            .map(|i| Synthetic {
                name: format!("storm-{i}"),
                port: base_port + i as u16,
                running: true,
                started_at_nanos: started,
            })
            .collect();
        let (storm_tx, storm_rx) = mpsc::channel(1024);
        let state = Arc::new(State {
            backend: backend.to_string(),
            containers: Mutex::new(containers),
            storm: Mutex::new(Some(storm_rx)),
        });
        let task = tokio::spawn(accept_loop(listener, state.clone()));
        Self {
            _dir: dir,
            path,
            state,
            storm_tx,
            task,
        }
    }

    /// `unix:///…/storm.sock`, for `DOCKER_HOST`.
    pub fn url(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// Sends one event of synthetic container `i` now (`kill` with SIGTERM, `die`, `stop`,
    /// `start`), after updating what list and inspect report, as the engine does.
    pub async fn send(&self, i: usize, action: &str) {
        let time_nano = now_nanos();
        let (name, backend) = {
            let mut containers = self.state.containers.lock().unwrap();
            let c = &mut containers[i];
            match action {
                "die" | "stop" => c.running = false,
                "start" => {
                    c.running = true;
                    c.started_at_nanos = time_nano;
                }
                _ => {}
            }
            (c.name.clone(), self.state.backend.clone())
        };
        let extra = match action {
            "kill" => r#","signal":"15""#,
            "die" => r#","exitCode":"0""#,
            _ => "",
        };
        let line = format!(
            r#"{{"Type":"container","Action":"{action}","Actor":{{"ID":"{name}","Attributes":{{"name":"{name}","haproxy-drain.backend":"{backend}"{extra}}}}},"scope":"local","time":{},"timeNano":{time_nano}}}"#,
            time_nano / 1_000_000_000
        ) + "\n";
        let _ = self.storm_tx.send(Bytes::from(line)).await;
    }

    /// Which synthetic containers run now.
    pub fn running(&self) -> Vec<bool> {
        let containers = self.state.containers.lock().unwrap();
        containers.iter().map(|c| c.running).collect()
    }
}

async fn accept_loop(listener: UnixListener, state: Arc<State>) {
    while let Ok((stream, _)) = listener.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, hyper::Error>(handle(request, &state).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The path without an API version prefix (`/v1.47/containers/json` → `/containers/json`).
fn unversioned(path: &str) -> &str {
    match path.strip_prefix("/v") {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => {
            rest.find('/').map_or(path, |slash| &rest[slash..])
        }
        _ => path,
    }
}

async fn handle(request: Request<Incoming>, state: &State) -> Response<Body> {
    let path = unversioned(request.uri().path()).to_string();
    if let Some(name) = path
        .strip_prefix("/containers/storm-")
        .and_then(|rest| rest.strip_suffix("/json"))
    {
        return match inspect(state, &format!("storm-{name}")) {
            Some(body) => json(200, body),
            None => json(404, r#"{"message":"No such container"}"#.to_string()),
        };
    }
    let is_list = path == "/containers/json";
    let is_events = path == "/events";
    let Ok(response) = forward(request).await else {
        return json(
            502,
            r#"{"message":"storm engine: the real engine did not answer"}"#.into(),
        );
    };
    if is_list {
        let (parts, body) = response.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut list: Vec<serde_json::Value> = serde_json::from_slice(&bytes).unwrap_or_default();
        list.extend(summaries(state));
        let body = serde_json::to_vec(&list).unwrap_or_default();
        let mut response = Response::from_parts(parts, full(body));
        response.headers_mut().remove(hyper::header::CONTENT_LENGTH);
        return response;
    }
    if is_events {
        if let Some(storm) = state.storm.lock().unwrap().take() {
            let (parts, body) = response.into_parts();
            let storm = futures_util::stream::unfold(storm, |mut rx| async move {
                rx.recv().await.map(|bytes| (Ok(Frame::data(bytes)), rx))
            });
            let merged = futures_util::stream::select(BodyStream::new(body), storm);
            return Response::from_parts(parts, BodyExt::boxed(StreamBody::new(merged)));
        }
    }
    response.map(BodyExt::boxed)
}

async fn forward(request: Request<Incoming>) -> Result<Response<Incoming>, String> {
    let stream = UnixStream::connect(DOCKER_SOCKET)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())
}

fn labels(state: &State, c: &Synthetic, i: usize) -> serde_json::Value {
    serde_json::json!({
        "haproxy-drain.backend": state.backend,
        "haproxy-drain.server": format!("s{i}"),
        "haproxy-drain.port": c.port.to_string(),
    })
}

fn networks() -> serde_json::Value {
    serde_json::json!({ "storm": { "IPAddress": "127.0.0.1" } })
}

fn summaries(state: &State) -> Vec<serde_json::Value> {
    let containers = state.containers.lock().unwrap();
    containers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            serde_json::json!({
                "Id": c.name,
                "Names": [format!("/{}", c.name)],
                "Image": "storm:latest",
                "State": if c.running { "running" } else { "exited" },
                "Status": if c.running { "Up 1 minute (healthy)" } else { "Exited (0) 1 second ago" },
                "Labels": labels(state, c, i),
                "NetworkSettings": { "Networks": networks() },
            })
        })
        .collect()
}

fn inspect(state: &State, name: &str) -> Option<String> {
    let containers = state.containers.lock().unwrap();
    let (i, c) = containers
        .iter()
        .enumerate()
        .find(|(_, c)| c.name == name)?;
    let started = humantime::format_rfc3339_nanos(
        UNIX_EPOCH + Duration::from_nanos(c.started_at_nanos as u64),
    )
    .to_string();
    let body = serde_json::json!({
        "Id": c.name,
        "Name": format!("/{}", c.name),
        "Image": "sha256:storm",
        "State": {
            "Status": if c.running { "running" } else { "exited" },
            "Running": c.running,
            "StartedAt": started,
            "Health": { "Status": if c.running { "healthy" } else { "unhealthy" } },
        },
        "Config": {
            "Image": "storm:latest",
            "Labels": labels(state, c, i),
            "Healthcheck": { "Test": ["CMD", "true"] },
        },
        "NetworkSettings": { "Networks": networks() },
    });
    Some(body.to_string())
}

fn full(body: Vec<u8>) -> Body {
    Full::new(Bytes::from(body))
        .map_err(|never| match never {})
        .boxed()
}

fn json(status: u16, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(full(body.into_bytes()))
        .expect("a valid response")
}
