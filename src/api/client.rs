//! The CLI's side of the control API: one HTTP/1 request per connection, over the Unix socket
//! (or TCP with a bearer token).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use super::wire::{DrainBody, ErrorBody, ReadyBody, RollBody, RollCreated};
use crate::controller::handle::{DrainReport, ReadyReport, ServerView};
use crate::roll::RollProgress;

#[derive(Debug, Clone)]
enum Endpoint {
    Unix(PathBuf),
    Tcp { addr: String, token: Option<String> },
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "{}", path.display()),
            Endpoint::Tcp { addr, .. } => write!(f, "tcp://{addr}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no daemon at {socket} (is `haproxy-drain run` running? is --control-socket right?)")]
    NoDaemon { socket: String },
    #[error("permission denied on the control socket {socket}: run as root or as a member of the socket's group")]
    PermissionDenied { socket: String },
    #[error("cannot connect to the control API at {socket}: {source}")]
    Connect {
        socket: String,
        source: std::io::Error,
    },
    #[error("control API at {socket}: {message}")]
    Http { socket: String, message: String },
    /// The daemon answered with an error.
    #[error("{}", .body.error)]
    Api { status: u16, body: ErrorBody },
    #[error("control API at {socket} sent an answer this CLI does not understand ({message}); are the CLI and daemon the same version?")]
    Decode { socket: String, message: String },
}

impl ClientError {
    /// True when nothing answers at all, the case where `status` falls back to HAProxy.
    pub fn is_no_daemon(&self) -> bool {
        matches!(self, ClientError::NoDaemon { .. })
    }
}

#[derive(Debug, Clone)]
pub struct ControlClient {
    endpoint: Endpoint,
}

impl ControlClient {
    pub fn unix(path: impl AsRef<Path>) -> Self {
        Self {
            endpoint: Endpoint::Unix(path.as_ref().to_path_buf()),
        }
    }

    /// `addr` is `host:port`; `token` goes into `Authorization: Bearer`.
    pub fn tcp(addr: impl Into<String>, token: Option<String>) -> Self {
        Self {
            endpoint: Endpoint::Tcp {
                addr: addr.into(),
                token,
            },
        }
    }

    pub async fn servers(&self) -> Result<Vec<ServerView>, ClientError> {
        self.call(Method::GET, "/v1/servers", None::<&()>).await
    }

    /// `GET /v1/fleet`: the fleet budget and who holds it.
    pub async fn fleet(&self) -> Result<crate::fleet_budget::FleetStatus, ClientError> {
        self.call(Method::GET, "/v1/fleet", None::<&()>).await
    }

    pub async fn drain(&self, body: &DrainBody) -> Result<DrainReport, ClientError> {
        self.call(Method::POST, "/v1/drain", Some(body)).await
    }

    pub async fn ready(&self, body: &ReadyBody) -> Result<ReadyReport, ClientError> {
        self.call(Method::POST, "/v1/ready", Some(body)).await
    }

    pub async fn start_roll(&self, body: &RollBody) -> Result<RollCreated, ClientError> {
        self.call(Method::POST, "/v1/rolls", Some(body)).await
    }

    pub async fn roll(&self, id: &str) -> Result<RollProgress, ClientError> {
        self.call(Method::GET, &format!("/v1/rolls/{id}"), None::<&()>)
            .await
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let payload = match body {
            Some(body) => Some(serde_json::to_vec(body).map_err(|e| self.http_error(e))?),
            None => None,
        };
        let (status, bytes) = self.request(method, path, payload).await?;
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
                socket: self.endpoint.to_string(),
                message: e.to_string(),
            })
        } else {
            let body = serde_json::from_slice::<ErrorBody>(&bytes).unwrap_or_else(|_| {
                ErrorBody::message(format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&bytes).trim()
                ))
            });
            Err(ClientError::Api {
                status: status.as_u16(),
                body,
            })
        }
    }

    /// One raw request: status and body bytes. Public for tests that check statuses.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        payload: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "haproxy-drain");
        if payload.is_some() {
            builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        if let Endpoint::Tcp {
            token: Some(token), ..
        } = &self.endpoint
        {
            builder = builder.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = builder
            .body(Full::new(Bytes::from(payload.unwrap_or_default())))
            .map_err(|e| self.http_error(e))?;
        match &self.endpoint {
            Endpoint::Unix(path) => {
                let stream = UnixStream::connect(path)
                    .await
                    .map_err(|e| self.connect_error(e))?;
                self.exchange(stream, request).await
            }
            Endpoint::Tcp { addr, .. } => {
                let stream = TcpStream::connect(addr.as_str())
                    .await
                    .map_err(|e| self.connect_error(e))?;
                self.exchange(stream, request).await
            }
        }
    }

    async fn exchange<S>(
        &self,
        stream: S,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), ClientError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.http_error(e))?;
        let driver = tokio::spawn(connection);
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.http_error(e))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.http_error(e))?
            .to_bytes();
        driver.abort();
        Ok((status, body))
    }

    fn connect_error(&self, source: std::io::Error) -> ClientError {
        let socket = self.endpoint.to_string();
        match source.kind() {
            ErrorKind::NotFound | ErrorKind::ConnectionRefused => ClientError::NoDaemon { socket },
            ErrorKind::PermissionDenied => ClientError::PermissionDenied { socket },
            _ => ClientError::Connect { socket, source },
        }
    }

    fn http_error(&self, error: impl std::fmt::Display) -> ClientError {
        ClientError::Http {
            socket: self.endpoint.to_string(),
            message: error.to_string(),
        }
    }
}
