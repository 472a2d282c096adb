//! The agent-check responder: HAProxy connects every `agent-inter`, sends its `agent-send`
//! text (`backend/server\n`) and reads one line; each connection gets the server's answer from
//! the [`AgentTable`] and is closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::table::AgentTable;
use crate::shutdown::Shutdown;

/// Longer than any `backend/server` line; more is not an agent request.
const MAX_REQUEST_BYTES: usize = 512;
/// HAProxy writes its `agent-send` right after connecting; a line that takes longer is answered
/// with what arrived (an agent check without `agent-send` sends nothing at all).
const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent-check responder (--agent-listen {addr}): bind failed: {source}; is another process on that port?")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

pub struct Responder {
    listener: TcpListener,
    local: SocketAddr,
}

impl Responder {
    pub async fn bind(addr: SocketAddr) -> Result<Self, AgentError> {
        let bind_error = |source| AgentError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        Ok(Self { listener, local })
    }

    /// The bound address (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Answers until `shutdown` fires; one small task per connection, so a peer that never
    /// writes costs only its own [`REQUEST_TIMEOUT`].
    pub async fn run(self, table: Arc<AgentTable>, mut shutdown: Shutdown) {
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = shutdown.recv() => return,
            };
            match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(answer(stream, table.clone()));
                }
                Err(error) => {
                    // Out of file descriptors and the like: a pause, not the end of the agent.
                    tracing::warn!(listen = %self.local, %error, "agent-check responder: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

async fn answer(mut stream: TcpStream, table: Arc<AgentTable>) {
    let request = read_request(&mut stream).await;
    let (server, line) = table.answer(&String::from_utf8_lossy(&request));
    match &server {
        Some(server) => tracing::trace!(%server, answer = line.trim_end(), "agent answer"),
        None => tracing::debug!(
            request = %String::from_utf8_lossy(&request).escape_debug(),
            "agent request names no backend/server (agent-send \"backend/server\\n\" on the server line?)"
        ),
    }
    if let Err(error) = stream.write_all(line.as_bytes()).await {
        tracing::debug!(?server, %error, "agent answer not delivered; HAProxy asks again");
    }
    let _ = stream.shutdown().await;
}

/// Bytes up to the first newline, at most [`MAX_REQUEST_BYTES`], within [`REQUEST_TIMEOUT`].
async fn read_request(stream: &mut TcpStream) -> Vec<u8> {
    let mut request = Vec::with_capacity(64);
    let read = async {
        let mut buf = [0u8; 128];
        while !request.contains(&b'\n') && request.len() < MAX_REQUEST_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, read).await;
    if let Some(end) = request.iter().position(|&b| b == b'\n') {
        request.truncate(end);
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haproxy::{AdminState, ServerId};

    async fn ask(addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.unwrap();
        reply
    }

    #[tokio::test]
    async fn answers_each_connection_with_its_servers_line() {
        let table = Arc::new(AgentTable::default());
        table.set_admin(&ServerId::new("be", "web1"), AdminState::Maint);
        let responder = Responder::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = responder.local_addr();
        let (trigger, shutdown) = crate::shutdown::channel();
        let task = tokio::spawn(responder.run(table, shutdown));
        assert_eq!(ask(addr, b"be/web1\n").await, "maint\n");
        assert_eq!(ask(addr, b"be/web2\r\n").await, "up\n");
        assert_eq!(ask(addr, &[b'x'; 520]).await, "up\n", "oversized request");
        trigger.fire();
        task.await.unwrap();
    }
}
