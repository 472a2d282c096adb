//! `haproxy-drain check`: everything `run` needs, verified before it is needed.
//!
//! Config valid → Docker answers → every HAProxy answers on an admin-level socket → every mapped
//! container's backend (and server) exists. One line per finding; the exit code is the verdict.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;

use super::check_mode::{agent_gap, mode_lines};
use super::control::CliError;
use crate::agent::mode::NO_SOCKET;
use crate::agent::Mode;
use crate::config::Config;
use crate::docker::permissions::{Access, Permission};
use crate::docker::DockerClient;
use crate::haproxy::agent_state::agent_checks;
use crate::haproxy::level::{socket_level, CliLevel};
use crate::haproxy::types::ServerId;
use crate::haproxy::{Client, HaproxyAddr};
use crate::mapping;

#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The TOML config file to validate (labels-only setups have none).
    #[arg(long, env = "HAPROXY_DRAIN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// HAProxy runtime API (admin level; with --agent-listen operator/user is enough, or `none`);
    /// repeat for every HAProxy in front of the containers.
    #[arg(
        long = "haproxy",
        env = "HAPROXY_DRAIN_HAPROXY",
        value_delimiter = ',',
        default_value = "unix:///var/run/haproxy/admin.sock",
        value_name = "URL"
    )]
    pub haproxy: Vec<String>,
    /// The agent-check address `run` will serve (pull mode without an admin socket).
    #[arg(long, env = "HAPROXY_DRAIN_AGENT_LISTEN", value_name = "ADDR")]
    pub agent_listen: Option<SocketAddr>,
    /// Check only these containers (repeatable; default: every container on the engine).
    #[arg(long = "container", value_name = "NAME")]
    pub containers: Vec<String>,
}

/// Backends and servers one HAProxy has.
struct Inventory {
    url: String,
    backends: HashSet<String>,
    servers: HashSet<ServerId>,
    /// Pull mode only: servers without an agent check, which pull mode cannot reach.
    without_agent: HashSet<ServerId>,
}

pub async fn check(args: CheckArgs) -> Result<(), CliError> {
    let mut problems = 0usize;
    let mut say = |verdict: &str, what: &str, line: String| {
        if verdict == "FAIL" {
            problems += 1;
        }
        println!("{what:<8} {verdict:<7} {line}");
    };
    let mut report =
        |ok: bool, what: &str, line: String| say(if ok { "ok" } else { "FAIL" }, what, line);

    // The config. A broken one fails the check, but the rest still runs with the defaults,
    // so one run shows every problem.
    let config = match &args.config {
        None => {
            report(
                true,
                "config",
                "no config file: labels only, default settings".into(),
            );
            Config::default()
        }
        Some(path) => match Config::load(path) {
            Ok(config) => {
                let line = format!("{}: {} rule(s)", path.display(), config.rules.len());
                report(true, "config", line);
                config
            }
            Err(error) => {
                report(false, "config", error.to_string());
                Config::default()
            }
        },
    };

    if let Some(fleet) = &config.fleet {
        match crate::fleet_budget::probe(fleet).await {
            Ok(line) => report(true, "fleet", line),
            Err(error) => report(false, "fleet", error.to_string()),
        }
    }

    let mut inventories = Vec::new();
    let mut levels = Vec::new();
    let pull = args.agent_listen.is_some();
    for url in args.haproxy.iter().filter(|url| url.as_str() != NO_SOCKET) {
        match inspect_haproxy(url, pull).await {
            Ok((inventory, level, line)) => {
                report(true, "haproxy", line);
                inventories.push(inventory);
                levels.push(Some(level));
            }
            Err(line) => {
                report(false, "haproxy", line);
                levels.push(None);
            }
        }
    }
    let mode = Mode::decide(&levels, pull);
    for (ok, line) in mode_lines(mode, args.agent_listen) {
        report(ok, "mode", line);
    }

    let docker = match DockerClient::connect() {
        Ok(docker) => docker,
        Err(error) => {
            report(false, "docker", error.to_string());
            return verdict(problems);
        }
    };
    let containers = match docker.ping().await {
        Ok(()) => docker.list_containers(true).await,
        Err(error) => Err(error),
    };
    let containers = match containers {
        Ok(containers) => {
            report(
                true,
                "docker",
                format!("{}: {} container(s)", docker.endpoint(), containers.len()),
            );
            containers
        }
        Err(error) => {
            report(false, "docker", error.to_string());
            return verdict(problems);
        }
    };
    for (permission, access) in docker.probe_permissions().await {
        let (verdict, line) = permission_line(permission, &access);
        report_docker(&mut report, verdict, line);
    }

    let wanted: HashSet<&str> = args.containers.iter().map(String::as_str).collect();
    for name in &wanted {
        if !containers.iter().any(|c| c.name == *name) {
            report(false, "mapping", format!("container {name} does not exist"));
        }
    }
    let mut mapped = 0usize;
    let selected = containers
        .iter()
        .filter(|c| wanted.is_empty() || wanted.contains(c.name.as_str()));
    for container in selected {
        match mapping::resolve(&container.name, &container.labels, &config) {
            Ok(None) => {}
            Ok(Some(found)) => {
                mapped += 1;
                let (ok, line) = placement(&container.name, &found.server, &inventories);
                report(ok, "mapping", line);
                let lacking: Vec<&str> = inventories
                    .iter()
                    .filter(|i| i.without_agent.contains(&found.server))
                    .map(|i| i.url.as_str())
                    .collect();
                match agent_gap(&container.name, &found.server, &lacking) {
                    Some(line) if mode != Mode::Push => report(false, "mapping", line),
                    _ => {}
                }
            }
            Err(error) => {
                // Unlabelled containers that a rule half-matches are someone else's problem;
                // ours carry our labels.
                let ours = mapping::has_our_labels(&container.labels);
                report(!ours, "mapping", error.to_string());
            }
        }
    }
    if mapped == 0 {
        report(
            true,
            "mapping",
            "no container is mapped (no haproxy-drain labels, no rule matches)".into(),
        );
    }
    verdict(problems)
}

/// A missing permission the watcher needs is a failure; one only `roll` needs is a limit.
fn permission_line(permission: Permission, access: &Access) -> (&'static str, String) {
    let name = format!("{} ({})", permission.as_str(), permission.request());
    match access {
        Access::Allowed => ("ok", format!("may {name}")),
        Access::Denied(message) => (
            if permission.watcher_needs() {
                "FAIL"
            } else {
                "limited"
            },
            format!(
                "may not {name}: HTTP 403 ({}); disabled: {}",
                message.trim(),
                permission.disables()
            ),
        ),
        Access::Unknown(error) => (
            "FAIL",
            format!("could not tell whether it may {name}: {error}"),
        ),
    }
}

fn report_docker(report: &mut impl FnMut(bool, &str, String), verdict: &str, line: String) {
    match verdict {
        "limited" => report(true, "docker", format!("(limited) {line}")),
        verdict => report(verdict == "ok", "docker", line),
    }
}

fn verdict(problems: usize) -> Result<(), CliError> {
    if problems == 0 {
        println!("check passed");
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "check found {problems} problem(s)"
        )))
    }
}

/// Connects, reads version and servers, and probes the privilege level (below admin is enough
/// in pull mode).
async fn inspect_haproxy(url: &str, pull: bool) -> Result<(Inventory, CliLevel, String), String> {
    let addr = HaproxyAddr::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let client = Client::new(addr);
    let info = client.show_info().await.map_err(|e| e.to_string())?;
    let states = client
        .show_servers_state(None)
        .await
        .map_err(|e| e.to_string())?;
    let backends: HashSet<String> = client
        .show_backends()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .collect();
    let level = socket_level(&client)
        .await
        .map_err(|e| format!("{url}: privilege probe failed: {e}"))?;
    if level != CliLevel::Admin && !pull {
        return Err(format!(
            "{url}: HAProxy {}, level {}: the socket is not `level admin`: haproxy-drain cannot change weights or states there, so it can neither drain nor restore (`set server`, `set weight`, `add server` need admin; this level {}); add `level admin` to its `stats socket` line, or let HAProxy ask haproxy-drain through agent checks (--agent-listen, pull mode)",
            info.version,
            level.as_str(),
            level.can(),
        ));
    }
    let servers: HashSet<ServerId> = states.into_iter().map(|s| s.id).collect();
    let line = format!(
        "{url}: HAProxy {} (pid {}), level {}{}, {} backend(s), {} server(s)",
        info.version,
        info.pid,
        level.as_str(),
        if level.is_admin() {
            ""
        } else {
            " (read-only: pull mode)"
        },
        backends.len(),
        servers.len()
    );
    let without_agent = match pull {
        true => agent_checks(&client)
            .await
            .map_err(|e| format!("{url}: {e}"))?
            .into_iter()
            .filter_map(|(id, agent)| (!agent).then_some(id))
            .collect(),
        false => HashSet::new(),
    };
    let inventory = Inventory {
        url: url.to_string(),
        backends,
        servers,
        without_agent,
    };
    Ok((inventory, level, line))
}

/// Whether `server` exists on every HAProxy; a missing server in an existing backend is fine
/// (the controller adds it dynamically), a missing backend is not.
fn placement(container: &str, server: &ServerId, inventories: &[Inventory]) -> (bool, String) {
    let mut notes: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut ok = true;
    for inventory in inventories {
        let note = if inventory.servers.contains(server) {
            "present"
        } else if inventory.backends.contains(&server.backend) {
            "absent (will be added with `add server`)"
        } else {
            ok = false;
            "NO SUCH BACKEND"
        };
        notes.entry(note).or_default().push(&inventory.url);
    }
    let mut parts: Vec<String> = notes
        .into_iter()
        .map(|(note, urls)| format!("{note} on {}", urls.join(", ")))
        .collect();
    parts.sort();
    if inventories.is_empty() {
        parts.push("no HAProxy to check against".into());
    }
    (ok, format!("{container} → {server}: {}", parts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_missing_watcher_permission_fails_the_check() {
        let denied = Access::Denied("forbidden".into());
        let (verdict, line) = permission_line(Permission::Events, &denied);
        assert_eq!(verdict, "FAIL");
        assert!(
            line.contains("GET /events") && line.contains("watcher"),
            "{line}"
        );
        let (verdict, line) = permission_line(Permission::Stop, &denied);
        assert_eq!(verdict, "limited");
        assert!(line.contains("`roll`"), "{line}");
        assert_eq!(permission_line(Permission::List, &Access::Allowed).0, "ok");
    }

    fn inventory(url: &str, servers: &[(&str, &str)]) -> Inventory {
        Inventory {
            url: url.into(),
            backends: servers.iter().map(|(b, _)| b.to_string()).collect(),
            servers: servers.iter().map(|(b, s)| ServerId::new(*b, *s)).collect(),
            without_agent: HashSet::new(),
        }
    }

    #[test]
    fn a_missing_backend_fails_a_missing_server_does_not() {
        let both = [
            inventory("a", &[("be", "web1")]),
            inventory("b", &[("be", "web2")]),
        ];
        let (ok, line) = placement("web1", &ServerId::new("be", "web1"), &both);
        assert!(ok);
        assert_eq!(
            line,
            "web1 → be/web1: absent (will be added with `add server`) on b; present on a"
        );
        let (ok, line) = placement("x", &ServerId::new("nope", "x"), &both);
        assert!(!ok);
        assert!(line.ends_with("NO SUCH BACKEND on a, b"), "{line}");
    }
}
