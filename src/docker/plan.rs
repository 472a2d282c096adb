//! The configuration to recreate a container with: what the user set, not what `docker inspect`
//! shows.
//!
//! The inspect output merges the old image's env, cmd, entrypoint, labels, healthcheck, exposed
//! ports and volumes into the container's `Config`. Carrying those over would pin the old image's
//! values onto the new image, so [`user_config`] drops every value equal to the old image's (the
//! way docker-compose and Ansible's `docker_container` recreate). A user value that happens to
//! equal the image's is indistinguishable and is dropped too; the new image then supplies its own.
//! Pure: [`super::recreate`] does the I/O.

use std::collections::{HashMap, HashSet};

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, ImageInspect, NetworkingConfig,
};

use super::error::DockerError;

/// What `docker create` needs to make the container again.
#[derive(Debug, Clone, PartialEq)]
pub struct RecreatePlan {
    /// Without the leading slash.
    pub name: String,
    /// Create body; `image` is still the old image's reference until the caller sets it.
    pub body: ContainerCreateBody,
    /// Networks beyond the first: API 1.41 creates with one endpoint; the rest are connected
    /// before the container starts.
    pub extra_networks: Vec<(String, EndpointSettings)>,
}

/// The container's configuration as the user set it; see the module docs.
pub fn user_config(
    container: &ContainerInspectResponse,
    old_image: &ImageInspect,
) -> Result<RecreatePlan, DockerError> {
    let name = container
        .name
        .as_deref()
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_default();
    let config = container.config.clone().ok_or(DockerError::Incomplete {
        name: name.clone(),
        missing: "Config",
    })?;
    let id = container.id.clone().unwrap_or_default();
    let short_id: String = id.chars().take(12).collect();
    let image = old_image.config.clone().unwrap_or_default();

    let mut body = ContainerCreateBody {
        // Docker sets the hostname to the short id unless the user chose one.
        hostname: config.hostname.filter(|h| !h.is_empty() && *h != short_id),
        domainname: config.domainname.filter(|d| !d.is_empty()),
        user: unless_image(config.user.filter(|u| !u.is_empty()), &image.user),
        attach_stdin: config.attach_stdin,
        attach_stdout: config.attach_stdout,
        attach_stderr: config.attach_stderr,
        exposed_ports: minus(config.exposed_ports, &image.exposed_ports),
        tty: config.tty,
        open_stdin: config.open_stdin,
        stdin_once: config.stdin_once,
        env: minus(config.env, &image.env),
        cmd: unless_image(config.cmd, &image.cmd),
        healthcheck: unless_image(config.healthcheck, &image.healthcheck),
        image: config.image,
        volumes: minus(config.volumes, &image.volumes),
        working_dir: unless_image(
            config.working_dir.filter(|w| !w.is_empty()),
            &image.working_dir,
        ),
        entrypoint: unless_image(config.entrypoint, &image.entrypoint),
        network_disabled: config.network_disabled,
        labels: labels_minus(config.labels, &image.labels),
        stop_signal: unless_image(config.stop_signal, &image.stop_signal),
        stop_timeout: config.stop_timeout,
        ..Default::default()
    };

    let mut host_config = container.host_config.clone().unwrap_or_default();
    host_config.container_id_file = None;
    host_config.links = host_config
        .links
        .map(|links| links.iter().map(|l| create_link(l)).collect());
    let network_mode = host_config.network_mode.clone().unwrap_or_default();
    body.host_config = Some(host_config);

    let mut networks: Vec<(String, EndpointSettings)> = container
        .network_settings
        .as_ref()
        .and_then(|s| s.networks.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|(net, _)| is_user_network(net))
        .map(|(net, endpoint)| (net, user_endpoint(endpoint, &name, &short_id)))
        .collect();
    // Deterministic order; the primary network (NetworkMode) first.
    networks.sort_by(|a, b| (a.0 != network_mode, &a.0).cmp(&(b.0 != network_mode, &b.0)));
    let mut networks = networks.into_iter();
    if is_user_network(&network_mode) {
        if let Some((net, endpoint)) = networks.next() {
            body.networking_config = Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(net, endpoint)])),
            });
        }
    }
    Ok(RecreatePlan {
        name,
        body,
        extra_networks: networks.collect(),
    })
}

/// The container's value unless it is exactly what the image supplies.
fn unless_image<T: PartialEq>(value: Option<T>, image: &Option<T>) -> Option<T> {
    value.filter(|v| image.as_ref() != Some(v))
}

/// Entries the image does not supply (env `K=V`, exposed ports, volumes).
fn minus(values: Option<Vec<String>>, image: &Option<Vec<String>>) -> Option<Vec<String>> {
    let image: HashSet<&str> = image.iter().flatten().map(String::as_str).collect();
    let kept: Vec<String> = values?
        .into_iter()
        .filter(|v| !image.contains(v.as_str()))
        .collect();
    (!kept.is_empty()).then_some(kept)
}

fn labels_minus(
    labels: Option<HashMap<String, String>>,
    image: &Option<HashMap<String, String>>,
) -> Option<HashMap<String, String>> {
    let kept: HashMap<String, String> = labels?
        .into_iter()
        .filter(|(k, v)| image.as_ref().and_then(|i| i.get(k)) != Some(v))
        .collect();
    (!kept.is_empty()).then_some(kept)
}

/// Built-in modes take no endpoint configuration (no aliases, no static IPs).
fn is_user_network(mode: &str) -> bool {
    !(mode.is_empty()
        || matches!(mode, "default" | "bridge" | "host" | "none")
        || mode.starts_with("container:"))
}

/// What the user can set on an endpoint; addresses, ids and gateways are Docker's to assign.
fn user_endpoint(endpoint: EndpointSettings, name: &str, short_id: &str) -> EndpointSettings {
    // Docker adds the short id (and, newer engines, the name) as aliases by itself.
    let aliases: Vec<String> = endpoint
        .aliases
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a != short_id && a != name)
        .collect();
    let ipam_config = endpoint.ipam_config.filter(|ipam| {
        let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
        set(&ipam.ipv4_address)
            || set(&ipam.ipv6_address)
            || ipam.link_local_ips.as_ref().is_some_and(|l| !l.is_empty())
    });
    EndpointSettings {
        ipam_config,
        links: endpoint.links.filter(|l| !l.is_empty()),
        aliases: (!aliases.is_empty()).then_some(aliases),
        driver_opts: endpoint.driver_opts,
        ..Default::default()
    }
}

/// Inspect shows legacy links as `/other:/me/alias`; create wants `other:alias`.
fn create_link(link: &str) -> String {
    match link.split_once(':') {
        Some((target, alias)) => format!(
            "{}:{}",
            target.trim_start_matches('/'),
            alias.rsplit('/').next().unwrap_or(alias)
        ),
        None => link.trim_start_matches('/').to_string(),
    }
}

/// `user_config` against inspect output shaped like Docker 20.10's (API 1.41).
#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageInspect {
        serde_json::from_str(include_str!("testdata/inspect_image.json")).unwrap()
    }

    /// `docker run -d --name web1 --network net1 --network-alias api -e DELAY=5 -l tier=web
    /// -l haproxy-drain.backend=be -p 18080:8080 --restart always --init -m 64m image`
    fn container() -> ContainerInspectResponse {
        serde_json::from_str(include_str!("testdata/inspect_container.json")).unwrap()
    }

    #[test]
    fn image_supplied_values_are_not_carried_over() {
        let plan = user_config(&container(), &image()).unwrap();
        let body = &plan.body;
        assert_eq!(body.env, Some(vec!["DELAY=5".to_string()]));
        assert_eq!(body.cmd, None);
        assert_eq!(body.entrypoint, None);
        assert_eq!(body.healthcheck, None);
        assert_eq!(body.exposed_ports, None);
        assert_eq!(body.volumes, None);
        assert_eq!(body.working_dir, None);
        assert_eq!(body.stop_signal, None);
        let labels = body.labels.clone().unwrap();
        assert_eq!(labels.get("tier").map(String::as_str), Some("web"));
        assert_eq!(
            labels.get("haproxy-drain.backend").map(String::as_str),
            Some("be")
        );
        assert!(!labels.contains_key("org.opencontainers.image.title"));
    }

    #[test]
    fn docker_assigned_hostname_and_aliases_are_dropped() {
        let plan = user_config(&container(), &image()).unwrap();
        assert_eq!(plan.name, "web1");
        assert_eq!(plan.body.hostname, None);
        let endpoints = plan
            .body
            .networking_config
            .unwrap()
            .endpoints_config
            .unwrap();
        let net1 = &endpoints["net1"];
        assert_eq!(net1.aliases, Some(vec!["api".to_string()]));
        assert_eq!(net1.ip_address, None);
        assert_eq!(net1.mac_address, None);
        assert_eq!(net1.ipam_config, None);
        // The second network is connected after create, with its static address and no aliases.
        assert_eq!(plan.extra_networks.len(), 1);
        let (name, net2) = &plan.extra_networks[0];
        assert_eq!(name, "net2");
        assert_eq!(net2.aliases, None);
        assert_eq!(
            net2.ipam_config
                .as_ref()
                .and_then(|i| i.ipv4_address.as_deref()),
            Some("172.19.0.50")
        );
    }

    #[test]
    fn host_config_is_kept_with_links_in_create_form() {
        let plan = user_config(&container(), &image()).unwrap();
        let host = plan.body.host_config.unwrap();
        assert_eq!(host.init, Some(true));
        assert_eq!(host.memory, Some(67108864));
        assert_eq!(host.binds, Some(vec!["/srv/web1:/srv:ro".to_string()]));
        assert_eq!(host.network_mode.as_deref(), Some("net1"));
        assert_eq!(
            host.restart_policy
                .and_then(|p| p.name)
                .map(|n| n.to_string()),
            Some("always".to_string())
        );
        assert!(host.port_bindings.unwrap().contains_key("8080/tcp"));
        assert_eq!(host.links, Some(vec!["db:database".to_string()]));
        assert_eq!(host.container_id_file, None);
    }

    #[test]
    fn user_set_values_are_kept_even_where_the_image_has_its_own() {
        let mut container = container();
        let config = container.config.as_mut().unwrap();
        config.hostname = Some("web-one".into());
        config.cmd = Some(vec!["--port".into(), "9090".into()]);
        config.entrypoint = Some(vec!["/other".into()]);
        config.env = Some(vec!["APP_MODE=user".into(), "PATH=/usr/bin:/bin".into()]);
        config.labels = Some(HashMap::from([("tier".into(), "image".into())]));
        config.user = Some("65534".into());
        config.stop_signal = Some("SIGQUIT".into());
        config.stop_timeout = Some(3);
        let plan = user_config(&container, &image()).unwrap();
        let body = plan.body;
        assert_eq!(body.hostname.as_deref(), Some("web-one"));
        assert_eq!(
            body.cmd,
            Some(vec!["--port".to_string(), "9090".to_string()])
        );
        assert_eq!(body.entrypoint, Some(vec!["/other".to_string()]));
        assert_eq!(body.env, Some(vec!["APP_MODE=user".to_string()]));
        // Same key and value as the image's: indistinguishable from the image's, so dropped.
        assert_eq!(body.labels, None);
        assert_eq!(body.user.as_deref(), Some("65534"));
        assert_eq!(body.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(body.stop_timeout, Some(3));
    }

    #[test]
    fn default_bridge_takes_no_endpoint_config() {
        let mut container = container();
        container.host_config.as_mut().unwrap().network_mode = Some("bridge".into());
        let networks = container
            .network_settings
            .as_mut()
            .unwrap()
            .networks
            .as_mut()
            .unwrap();
        networks.remove("net1");
        networks.remove("net2");
        networks.insert("bridge".into(), EndpointSettings::default());
        let plan = user_config(&container, &image()).unwrap();
        assert_eq!(plan.body.networking_config, None);
        assert!(plan.extra_networks.is_empty());
    }

    #[test]
    fn missing_config_is_a_clear_error() {
        let mut container = container();
        container.config = None;
        let error = user_config(&container, &image()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "docker inspect web1 shows no Config; cannot tell what to recreate"
        );
    }

    #[test]
    fn legacy_links_convert_to_create_form() {
        assert_eq!(create_link("/db:/web1/database"), "db:database");
        assert_eq!(create_link("db:database"), "db:database");
        assert_eq!(create_link("/db"), "db");
    }
}
