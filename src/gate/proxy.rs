//! The proxy: HTTP/1.1 on the gate's Unix socket, each request forwarded on a fresh connection
//! to the engine, bodies streamed frame by frame both ways (nothing is buffered), and hijacked
//! connections (`Connection: Upgrade`, `Upgrade: tcp`, answered `101`) spliced byte for byte.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use super::classify::{classify, Class, Gated};
use super::engine::Engine;
use super::guard::{Guard, Verdict};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

pub type Body = BoxBody<Bytes, hyper::Error>;

/// Everything a connection needs; shared by all of them.
pub struct GateService {
    pub engine: Engine,
    pub guard: Guard,
    pub metrics: Arc<Metrics>,
}

/// Accepts connections until `shutdown`. A connection already open keeps being served (an
/// attach or `logs -f` is not cut by a new connection's failure, nor by another's bad bytes).
pub fn serve(
    listener: UnixListener,
    service: Arc<GateService>,
    mut shutdown: Shutdown,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(serve_connection(stream, service.clone(), shutdown.clone()));
                    }
                    Err(error) => {
                        // EMFILE and friends: keep the listener, try again shortly.
                        tracing::warn!(%error, "docker gate: accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
                _ = shutdown.recv() => break,
            }
        }
    })
}

async fn serve_connection(stream: UnixStream, service: Arc<GateService>, mut shutdown: Shutdown) {
    let handler = hyper::service::service_fn(move |request| {
        let service = service.clone();
        async move { Ok::<_, Infallible>(service.handle(request).await) }
    });
    // half_close: a client that shuts its write side after the request (socat, `curl -T -`)
    // still gets its answer, as from the engine.
    let connection = hyper::server::conn::http1::Builder::new()
        .half_close(true)
        // Header names go out as the engine (or the client) wrote them.
        .preserve_header_case(true)
        .serve_connection(TokioIo::new(stream), handler)
        .with_upgrades();
    tokio::pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        _ = shutdown.recv() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = served {
        // Malformed requests end here, after hyper answered them 400.
        tracing::debug!(%error, "docker gate: client connection ended with an error");
    }
}

impl GateService {
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Body> {
        tracing::debug!(method = %request.method(), uri = %request.uri(), "docker gate request");
        let class = classify(
            request.method().as_str(),
            request.uri().path(),
            request.uri().query(),
        );
        match class {
            Class::PassThrough => {
                let response = self.forward(request).await;
                let result = if response.status() == StatusCode::BAD_GATEWAY
                    && response.headers().contains_key(GATE_ERROR)
                {
                    "engine_unreachable"
                } else {
                    "forwarded"
                };
                self.metrics.gate_request("other", result);
                response
            }
            Class::Gated(gated) => {
                // Its own task: a client that goes away mid-drain does not cancel the stop (the
                // engine does not cancel a stop on disconnect either); see the module doc.
                let kind = gated.kind.as_str();
                let task = tokio::spawn(self.clone().gated(gated, request));
                task.await.unwrap_or_else(|error| {
                    tracing::error!(%error, kind, "docker gate: gated request task failed");
                    error_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "haproxy-drain docker gate: internal error (see its log)",
                    )
                })
            }
        }
    }

    async fn gated(self: Arc<Self>, gated: Gated, request: Request<Incoming>) -> Response<Body> {
        let kind = gated.kind.as_str();
        let verdict = self.guard.before(&gated).await;
        self.metrics.gate_request(kind, verdict.result());
        match verdict {
            Verdict::Refuse { message } => {
                tracing::warn!(container = gated.container, kind, "{message}");
                error_response(StatusCode::SERVICE_UNAVAILABLE, &message)
            }
            Verdict::Forward { drained, .. } => {
                let response = self.forward(request).await;
                let status = response.status();
                // 304: already stopped; 2xx: done. Anything else left the container running.
                if let Some(container) = drained {
                    if !status.is_success() && status != StatusCode::NOT_MODIFIED {
                        self.guard.give_back(&container, status.as_u16()).await;
                    }
                }
                response
            }
        }
    }

    /// Sends the request to the engine on a new connection and returns its response, its body
    /// still streaming. An upgrade (101) is spliced in a task of its own.
    async fn forward(&self, mut request: Request<Incoming>) -> Response<Body> {
        let client_upgrade = wants_upgrade(&request).then(|| hyper::upgrade::on(&mut request));
        let stream = match self.engine.connect().await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, "docker gate: engine unreachable");
                return error_response(
                    StatusCode::BAD_GATEWAY,
                    &format!("haproxy-drain docker gate: {error}"),
                );
            }
        };
        let (mut sender, connection) = match hyper::client::conn::http1::Builder::new()
            .preserve_header_case(true)
            .handshake(TokioIo::new(stream))
            .await
        {
            Ok(parts) => parts,
            Err(error) => {
                return error_response(StatusCode::BAD_GATEWAY, &format!("haproxy-drain docker gate: handshake with the engine at {} failed: {error}", self.engine));
            }
        };
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%error, "docker gate: engine connection ended with an error");
            }
        });
        let mut response = match sender.send_request(request).await {
            Ok(response) => response,
            Err(error) => {
                return error_response(
                    StatusCode::BAD_GATEWAY,
                    &format!(
                        "haproxy-drain docker gate: the engine at {} did not answer: {error}",
                        self.engine
                    ),
                );
            }
        };
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            if let Some(client_upgrade) = client_upgrade {
                let engine_upgrade = hyper::upgrade::on(&mut response);
                tokio::spawn(splice(client_upgrade, engine_upgrade));
            }
        }
        response.map(BodyExt::boxed)
    }
}

/// Copies both ways until both sides are done; a half-close (`docker exec -i` at the end of its
/// stdin) is passed on as a half-close, so the output keeps flowing.
async fn splice(client: hyper::upgrade::OnUpgrade, engine: hyper::upgrade::OnUpgrade) {
    let (client, engine) = match tokio::try_join!(client, engine) {
        Ok(both) => both,
        Err(error) => {
            tracing::debug!(%error, "docker gate: upgrade failed");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut engine = TokioIo::new(engine);
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut engine).await {
        tracing::debug!(%error, "docker gate: hijacked connection ended with an error");
    }
}

fn wants_upgrade<B>(request: &Request<B>) -> bool {
    request.headers().contains_key(header::UPGRADE)
        && request
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Marks answers the gate made itself (not the engine's).
const GATE_ERROR: &str = "x-haproxy-drain-gate";

/// An error the way the engine writes them, so clients print `Error response from daemon: …`.
fn error_response(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(GATE_ERROR, HeaderValue::from_static("1"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_requests() {
        let request = |headers: &[(&str, &str)]| {
            let mut builder = Request::builder().uri("/v1.41/containers/x/attach");
            for (k, v) in headers {
                builder = builder.header(*k, *v);
            }
            builder.body(()).unwrap()
        };
        assert!(wants_upgrade(&request(&[
            ("Connection", "Upgrade"),
            ("Upgrade", "tcp")
        ])));
        assert!(wants_upgrade(&request(&[
            ("Connection", "keep-alive, upgrade"),
            ("Upgrade", "tcp")
        ])));
        assert!(!wants_upgrade(&request(&[("Upgrade", "tcp")])));
        assert!(!wants_upgrade(&request(&[("Connection", "Upgrade")])));
        assert!(!wants_upgrade(&request(&[])));
    }

    #[test]
    fn errors_look_like_the_engines() {
        let response = error_response(StatusCode::SERVICE_UNAVAILABLE, "no \"HAProxy\"");
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }
}
