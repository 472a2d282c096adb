//! The HAProxy side of `roll --surge`: a temporary server for the copy of a container, added
//! beside the container's own server, health-gated, put in rotation at that server's weight, and
//! drained and deleted again once the container's own server points at the copy.
//!
//! The gate is made short without being weakened: the daemon probes the copy itself every
//! [`PROBE_EVERY`] — the container's own `HEALTHCHECK` command run through `docker exec` when it
//! has one (the same test Docker runs, without waiting for Docker's interval), else the health
//! path or a TCP connect, as for any restore — and only then lets HAProxy check it, with checks
//! every 100 ms of which one must pass ([`surge_server_options`]). While HAProxy checks, the server is
//! in DRAIN: checks run, but it takes no traffic until it is set READY.

use std::time::Duration;

use tokio::time::Instant;

use super::container_ref::ContainerRef;
use super::handle::{ControlError, SurgeAddReport};
use super::probe::Gate;
use super::Context;
use crate::docker::surge::SURGE_SUFFIX;
use crate::drain::server_options::{server_address, surge_server_options};
use crate::haproxy::{AdminState, Command, CommandError, HaproxyError, ServerId};
use crate::mapping::Mapping;

/// How often the daemon probes the copy, and polls HAProxy's check and sessions.
pub const PROBE_EVERY: Duration = Duration::from_millis(50);
/// How long a temporary server may keep connections after its drain timed out.
const DELETE_GRACE: Duration = Duration::from_secs(5);

/// The temporary server of a container's copy: `<server>.haproxy-drain-new` in the same backend.
pub fn temp_server(server: &ServerId) -> ServerId {
    ServerId::new(
        server.backend.clone(),
        format!("{}{SURGE_SUFFIX}", server.server),
    )
}

/// Adds the temporary server for the copy `copy_id` of the container behind `server`, gates it
/// and puts it in rotation. On failure nothing is left in HAProxy.
pub async fn add_temp_server(
    ctx: &Context,
    server: &ServerId,
    mapping: &Mapping,
    copy_id: &str,
    timeout: Duration,
) -> Result<SurgeAddReport, ControlError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let observed =
        ctx.fleet.observe(server).await.ok_or_else(|| {
            ControlError::Haproxy(format!("no HAProxy that answers has {server}"))
        })?;
    if observed.addr.is_some_and(|a| a.is_loopback()) {
        return Err(ControlError::Conflict(format!(
            "{server} reaches its container through a published port on this host; a copy \
             would have another port, so --surge cannot replace it (roll it without --surge)"
        )));
    }
    let weight = if observed.in_rotation() {
        observed.weight
    } else {
        observed.initial_weight
    }
    .max(1);
    let info = match ctx.docker.inspect(copy_id).await {
        Ok(Some(info)) => info,
        Ok(None) => return Err(ControlError::NotFound(format!("container {copy_id}"))),
        Err(error) => return Err(ControlError::Conflict(error.to_string())),
    };
    let copy = ContainerRef::from_info(&info, mapping);
    let port = mapping.port.or(observed.port);
    let (Some(ip), Some(port)) = (copy.ip, port) else {
        return Err(ControlError::Conflict(format!(
            "the copy {} has no address and port HAProxy could use for {server}",
            info.name
        )));
    };
    let temp = temp_server(server);
    remove_temp_server(ctx, &temp, Duration::ZERO).await?;
    let checks = observed.checks_enabled;
    let add = Command::AddServer {
        server: temp.clone(),
        addr: server_address(ip, port),
        options: surge_server_options(weight, checks),
    };
    apply(ctx, &add, false).await?;
    let gated = gate(ctx, &copy, mapping, ip, port, &temp, checks, deadline).await;
    let (probe_ms, check_ms) = match gated {
        Ok(times) => times,
        Err(error) => {
            if let Err(cleanup) = remove_temp_server(ctx, &temp, Duration::ZERO).await {
                tracing::error!(server = %temp, %cleanup, "cannot remove the temporary server");
            }
            return Err(error);
        }
    };
    apply(
        ctx,
        &Command::SetState(temp.clone(), AdminState::Ready),
        false,
    )
    .await?;
    tracing::info!(server = %temp, copy = info.name, weight, probe_ms, check_ms, "surge copy in rotation");
    Ok(SurgeAddReport {
        server: temp,
        weight,
        probe_ms,
        check_ms,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// The daemon's own probe, then (when the backend checks) one passed HAProxy check in DRAIN.
/// Returns how long each took.
#[allow(clippy::too_many_arguments)]
async fn gate(
    ctx: &Context,
    copy: &ContainerRef,
    mapping: &Mapping,
    ip: std::net::IpAddr,
    port: u16,
    temp: &ServerId,
    checks: bool,
    deadline: Instant,
) -> Result<(u64, u64), ControlError> {
    let path = mapping.settings.health_path.as_deref();
    let probe = Gate::for_container(&copy.id, copy.has_healthcheck, Some(ip), Some(port), path);
    let started = Instant::now();
    while !own_probe(ctx, copy, &probe).await {
        if Instant::now() >= deadline {
            return Err(not_ready(
                temp,
                started,
                "the daemon's probe of the copy never passed",
            ));
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
    let probe_ms = started.elapsed().as_millis() as u64;
    if !checks {
        return Ok((probe_ms, 0));
    }
    let checking = Instant::now();
    apply(ctx, &Command::EnableHealth(temp.clone()), false).await?;
    apply(
        ctx,
        &Command::SetState(temp.clone(), AdminState::Drain),
        false,
    )
    .await?;
    loop {
        if ctx.fleet.check_passed(temp).await.unwrap_or(false) {
            return Ok((probe_ms, checking.elapsed().as_millis() as u64));
        }
        if Instant::now() >= deadline {
            return Err(not_ready(
                temp,
                started,
                "HAProxy's check of the copy never passed",
            ));
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// With a Docker health check: the container's own check command, run now through `docker
/// exec` (Docker's first result may be an interval away), else Docker's verdict when the exec
/// is not possible (no permission, no command). Without one: the TCP or HTTP probe.
async fn own_probe(ctx: &Context, copy: &ContainerRef, probe: &Gate) -> bool {
    if !copy.has_healthcheck {
        return probe.probe(&ctx.docker).await;
    }
    match ctx.docker.run_healthcheck(&copy.id).await {
        Ok(Some(passed)) => passed || probe.probe(&ctx.docker).await,
        Ok(None) => probe.probe(&ctx.docker).await,
        Err(error) => {
            tracing::debug!(container = copy.name, %error, "cannot run the health check; waiting for Docker's");
            probe.probe(&ctx.docker).await
        }
    }
}

fn not_ready(temp: &ServerId, started: Instant, reason: &str) -> ControlError {
    ControlError::ReadyTimeout {
        server: temp.clone(),
        waited_ms: started.elapsed().as_millis() as u64,
        reason: reason.to_string(),
    }
}

/// Drains the temporary server (up to `timeout`, then its sessions are shut down), puts it in
/// MAINT and deletes it. A server that is not there is fine.
pub async fn remove_temp_server(
    ctx: &Context,
    temp: &ServerId,
    timeout: Duration,
) -> Result<(), ControlError> {
    let drain = Command::SetState(temp.clone(), AdminState::Drain);
    if !apply(ctx, &drain, true).await? {
        return Ok(());
    }
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ctx.fleet.sessions(temp).await.unwrap_or(1) == 0 {
            break;
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
    apply(
        ctx,
        &Command::SetState(temp.clone(), AdminState::Maint),
        true,
    )
    .await?;
    let grace = Instant::now() + DELETE_GRACE;
    loop {
        match apply(ctx, &Command::DelServer(temp.clone()), true).await {
            Ok(_) => return Ok(()),
            Err(error) if Instant::now() >= grace => return Err(error),
            Err(_) => {
                // "still has connections": a request that outlived the drain; cut it.
                apply(ctx, &Command::ShutdownSessions(temp.clone()), true).await?;
                tokio::time::sleep(PROBE_EVERY).await;
            }
        }
    }
}

/// Sends `command` to every HAProxy that is up. With `missing_ok`, a HAProxy without the server
/// is fine; returns whether any HAProxy had it.
async fn apply(ctx: &Context, command: &Command, missing_ok: bool) -> Result<bool, ControlError> {
    let mut found = false;
    for (i, result) in ctx.fleet.apply(command).await {
        match result {
            Ok(_) => found = true,
            Err(HaproxyError::Command(CommandError::NoSuchServer { .. })) if missing_ok => {}
            Err(error) => {
                let haproxy = ctx.fleet.addr(i);
                return Err(ControlError::Haproxy(format!(
                    "{command} on {haproxy}: {error}"
                )));
            }
        }
    }
    Ok(found)
}
