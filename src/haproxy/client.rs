//! [`Client`]: typed calls on one runtime API address.
//!
//! Each call opens one connection, runs its command(s) in prompt mode and closes; a
//! [`Client::batch`] puts any number of commands on that one connection, so reading or changing
//! 500 servers is one round trip. Every call is bounded in time (connect + write + read) and in
//! reply size.

use std::net::IpAddr;
use std::time::Duration;

use super::addr::HaproxyAddr;
use super::command::Command;
use super::error::{CommandError, HaproxyError, ParseError};
use super::reply::Reply;
use super::transport;
use super::types::{
    AdminState, AgentState, Health, Info, ServerId, ServerState, StatRow, Weight, WeightSpec,
};

/// Default limit for one call, connect to last byte.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default limit for one reply (`show stat` for 1,000 servers is about 0.5 MiB).
pub const DEFAULT_MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;

/// A runtime API client for one address. Cheap to clone; holds no connection.
#[derive(Debug, Clone)]
pub struct Client {
    addr: HaproxyAddr,
    timeout: Duration,
    max_reply_bytes: usize,
}

impl Client {
    pub fn new(addr: HaproxyAddr) -> Self {
        Self {
            addr,
            timeout: DEFAULT_TIMEOUT,
            max_reply_bytes: DEFAULT_MAX_REPLY_BYTES,
        }
    }

    /// Limit for a whole call (one command, or a whole batch), from connect to the last reply.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Limit for any single reply.
    pub fn with_max_reply_bytes(mut self, limit: usize) -> Self {
        self.max_reply_bytes = limit;
        self
    }

    pub fn addr(&self) -> &HaproxyAddr {
        &self.addr
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs `commands` on one connection, pipelined, and returns one result per command, in
    /// order. The outer error means the conversation failed (nothing can be trusted); an inner
    /// error means HAProxy refused that one command. Commands are not atomic: earlier ones have
    /// run even when a later one fails.
    pub async fn batch(
        &self,
        commands: &[Command],
    ) -> Result<Vec<Result<Reply, CommandError>>, HaproxyError> {
        let prefix = self
            .addr
            .worker
            .map(|w| w.command_prefix())
            .unwrap_or_default();
        let mut lines = Vec::with_capacity(commands.len());
        let mut sent = Vec::with_capacity(commands.len());
        let mut results: Vec<Option<Result<Reply, CommandError>>> =
            Vec::with_capacity(commands.len());
        for (index, command) in commands.iter().enumerate() {
            match command.render() {
                Ok(line) if command.is_master_command() => lines.push(line),
                Ok(line) => lines.push(format!("{prefix}{line}")),
                Err(error) => {
                    results.push(Some(Err(error)));
                    continue;
                }
            }
            sent.push(index);
            results.push(None);
        }
        if !lines.is_empty() {
            let exchange = transport::exchange(&self.addr, &lines, self.max_reply_bytes);
            let replies = tokio::time::timeout(self.timeout, exchange)
                .await
                .map_err(|_| HaproxyError::Timeout {
                    addr: self.addr.to_string(),
                    after: self.timeout,
                })??;
            let addr = self.addr.to_string();
            for (position, &index) in sent.iter().enumerate() {
                let command = &commands[index];
                results[index] = Some(match replies.get(position) {
                    Some(reply) => command.classify(reply, &addr),
                    None => Err(CommandError::NoReply {
                        command: command.to_string(),
                    }),
                });
            }
        }
        Ok(results
            .into_iter()
            .zip(commands)
            .map(|(result, command)| {
                result.unwrap_or_else(|| {
                    Err(CommandError::NoReply {
                        command: command.to_string(),
                    })
                })
            })
            .collect())
    }

    /// Runs one command.
    pub async fn call(&self, command: Command) -> Result<Reply, HaproxyError> {
        let mut results = self.batch(std::slice::from_ref(&command)).await?;
        match results.pop() {
            Some(result) => Ok(result?),
            None => Err(CommandError::NoReply {
                command: command.to_string(),
            }
            .into()),
        }
    }

    pub async fn show_info(&self) -> Result<Info, HaproxyError> {
        match self.call(Command::ShowInfo).await? {
            Reply::Info(info) => Ok(info),
            other => Err(mismatch(Command::ShowInfo, other)),
        }
    }

    /// Every `show stat` row: frontends, backends and servers.
    pub async fn show_stat(&self) -> Result<Vec<StatRow>, HaproxyError> {
        match self.call(Command::ShowStat).await? {
            Reply::Stat(rows) => Ok(rows),
            other => Err(mismatch(Command::ShowStat, other)),
        }
    }

    pub async fn show_servers_state(
        &self,
        backend: Option<&str>,
    ) -> Result<Vec<ServerState>, HaproxyError> {
        let command = Command::ShowServersState(backend.map(str::to_string));
        match self.call(command.clone()).await? {
            Reply::ServersState(servers) => Ok(servers),
            other => Err(mismatch(command, other)),
        }
    }

    /// Backend names (`show backend`).
    pub async fn show_backends(&self) -> Result<Vec<String>, HaproxyError> {
        match self.call(Command::ShowBackends).await? {
            Reply::Backends(names) => Ok(names),
            other => Err(mismatch(Command::ShowBackends, other)),
        }
    }

    pub async fn get_weight(&self, server: &ServerId) -> Result<Weight, HaproxyError> {
        let command = Command::GetWeight(server.clone());
        match self.call(command.clone()).await? {
            Reply::Weight(weight) => Ok(weight),
            other => Err(mismatch(command, other)),
        }
    }

    pub async fn set_weight(
        &self,
        server: &ServerId,
        weight: WeightSpec,
    ) -> Result<(), HaproxyError> {
        self.call(Command::SetWeight(server.clone(), weight))
            .await
            .map(drop)
    }

    pub async fn set_state(
        &self,
        server: &ServerId,
        state: AdminState,
    ) -> Result<(), HaproxyError> {
        self.call(Command::SetState(server.clone(), state))
            .await
            .map(drop)
    }

    /// Returns HAProxy's message (`IP changed from …` or `no need to change the addr…`).
    pub async fn set_addr(
        &self,
        server: &ServerId,
        ip: IpAddr,
        port: Option<u16>,
    ) -> Result<String, HaproxyError> {
        let command = Command::SetAddr {
            server: server.clone(),
            ip,
            port,
        };
        match self.call(command.clone()).await? {
            Reply::Message(message) => Ok(message),
            other => Err(mismatch(command, other)),
        }
    }

    pub async fn set_health(&self, server: &ServerId, health: Health) -> Result<(), HaproxyError> {
        self.call(Command::SetHealth(server.clone(), health))
            .await
            .map(drop)
    }

    pub async fn set_agent(
        &self,
        server: &ServerId,
        agent: AgentState,
    ) -> Result<(), HaproxyError> {
        self.call(Command::SetAgent(server.clone(), agent))
            .await
            .map(drop)
    }

    pub async fn shutdown_sessions(&self, server: &ServerId) -> Result<(), HaproxyError> {
        self.call(Command::ShutdownSessions(server.clone()))
            .await
            .map(drop)
    }

    /// `add server <b>/<s> <addr> <options…>`. Dynamic servers ignore `default-server` and start
    /// in MAINT with checks off unless `enabled` is among the options.
    pub async fn add_server(
        &self,
        server: &ServerId,
        addr: &str,
        options: &[String],
    ) -> Result<(), HaproxyError> {
        let command = Command::AddServer {
            server: server.clone(),
            addr: addr.to_string(),
            options: options.to_vec(),
        };
        self.call(command).await.map(drop)
    }

    pub async fn del_server(&self, server: &ServerId) -> Result<(), HaproxyError> {
        self.call(Command::DelServer(server.clone()))
            .await
            .map(drop)
    }

    pub async fn enable_health(&self, server: &ServerId) -> Result<(), HaproxyError> {
        self.call(Command::EnableHealth(server.clone()))
            .await
            .map(drop)
    }

    pub async fn disable_health(&self, server: &ServerId) -> Result<(), HaproxyError> {
        self.call(Command::DisableHealth(server.clone()))
            .await
            .map(drop)
    }

    /// Master CLI `reload`. HAProxy 2.6 gives no feedback: compare `show info` pids afterwards.
    pub async fn reload(&self) -> Result<(), HaproxyError> {
        self.call(Command::Reload).await.map(drop)
    }

    /// Any command, reply returned verbatim.
    pub async fn raw(&self, command: &str) -> Result<String, HaproxyError> {
        match self.call(Command::Raw(command.to_string())).await? {
            Reply::Raw(text) => Ok(text),
            other => Err(mismatch(Command::Raw(command.to_string()), other)),
        }
    }
}

/// A reply of the wrong type for its command: cannot happen with `classify`, but not a panic.
fn mismatch(command: Command, reply: Reply) -> HaproxyError {
    CommandError::UnexpectedReply {
        command: command.to_string(),
        source: ParseError::new("typed", format!("got {reply:?}")),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn client_futures_can_be_spawned() {
        let client = Client::new(HaproxyAddr::unix("/nonexistent.sock"));
        let batch = client.batch(&[]);
        assert_send(&batch);
        assert_send(&client.show_stat());
        assert_eq!(client.timeout(), DEFAULT_TIMEOUT);
    }

    #[tokio::test]
    async fn an_empty_batch_does_not_connect() {
        let client = Client::new(HaproxyAddr::unix("/nonexistent.sock"));
        assert_eq!(client.batch(&[]).await.unwrap(), vec![]);
    }

    #[tokio::test]
    async fn unsafe_commands_fail_alone_without_connecting() {
        let client = Client::new(HaproxyAddr::unix("/nonexistent.sock"));
        let bad = Command::GetWeight(ServerId::new("be", "a;b"));
        let results = client.batch(&[bad]).await.unwrap();
        assert!(matches!(results[0], Err(CommandError::NotSent { .. })));
    }
}
