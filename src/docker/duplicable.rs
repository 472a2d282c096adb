//! Can a container run twice at once? `roll --surge` starts the replacement before the old one
//! stops, so both exist side by side for a while. Pure: the inspect output comes in, the first
//! reason it cannot be duplicated (if any) goes out.
//!
//! Refused: host networking and `container:` network mode (the copy would fight over the same
//! ports), a fixed host port binding (the copy cannot bind it), a fixed IP address on a network
//! (the engine refuses a second container with it), and a named volume mounted read-write (two
//! instances writing the same data at once is what most stateful apps are not built for).
//! Anonymous volumes, bind mounts and read-only named volumes are allowed.

use bollard::models::ContainerInspectResponse;

/// The first reason `container` cannot run twice at once; `None` when it can.
pub fn why_not_duplicable(container: &ContainerInspectResponse) -> Option<String> {
    let host = container.host_config.as_ref();
    if let Some(mode) = host.and_then(|h| h.network_mode.as_deref()) {
        if mode == "host" {
            return Some("it uses host networking (--network host)".into());
        }
        if let Some(other) = mode.strip_prefix("container:") {
            return Some(format!(
                "it shares the network of container {other} (--network container:…)"
            ));
        }
    }
    let bindings = host.and_then(|h| h.port_bindings.as_ref());
    for (port, list) in bindings.into_iter().flatten() {
        let fixed = list
            .iter()
            .flatten()
            .filter_map(|b| b.host_port.as_deref())
            .find(|p| !p.is_empty() && *p != "0");
        if let Some(host_port) = fixed {
            return Some(format!(
                "it publishes {port} on the fixed host port {host_port} (-p {host_port}:…)"
            ));
        }
    }
    let networks = container
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref());
    for (network, endpoint) in networks.into_iter().flatten() {
        let ipam = endpoint.ipam_config.as_ref();
        let fixed = ipam
            .and_then(|i| i.ipv4_address.as_deref())
            .or(ipam.and_then(|i| i.ipv6_address.as_deref()))
            .filter(|ip| !ip.is_empty());
        if let Some(ip) = fixed {
            return Some(format!(
                "it has the fixed address {ip} on network {network} (--ip)"
            ));
        }
    }
    for mount in container.mounts.iter().flatten() {
        let named = mount.typ.as_deref() == Some("volume")
            && mount.name.as_deref().is_some_and(|n| !is_anonymous(n));
        if named && mount.rw.unwrap_or(true) {
            return Some(format!(
                "it mounts the named volume {} read-write at {}",
                mount.name.as_deref().unwrap_or(""),
                mount.destination.as_deref().unwrap_or("?")
            ));
        }
    }
    None
}

/// Docker names anonymous volumes with 64 hex digits.
fn is_anonymous(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspect(json: serde_json::Value) -> ContainerInspectResponse {
        serde_json::from_value(json).expect("inspect fixture")
    }

    #[test]
    fn what_cannot_run_twice() {
        let anon = "a".repeat(64);
        #[rustfmt::skip]
        let cases: Vec<(serde_json::Value, Option<&str>)> = vec![
            (serde_json::json!({}), None),
            (serde_json::json!({"HostConfig": {"NetworkMode": "bridge"}}), None),
            (serde_json::json!({"HostConfig": {"NetworkMode": "host"}}), Some("host networking")),
            (serde_json::json!({"HostConfig": {"NetworkMode": "container:db"}}), Some("network of container db")),
            (serde_json::json!({"HostConfig": {"PortBindings": {"8080/tcp": [{"HostIp": "", "HostPort": ""}]}}}), None),
            (serde_json::json!({"HostConfig": {"PortBindings": {"8080/tcp": [{"HostIp": "", "HostPort": "0"}]}}}), None),
            (serde_json::json!({"HostConfig": {"PortBindings": {"8080/tcp": [{"HostIp": "", "HostPort": "18080"}]}}}), Some("fixed host port 18080")),
            (serde_json::json!({"NetworkSettings": {"Networks": {"net": {"IPAMConfig": {"IPv4Address": "10.9.0.5"}}}}}), Some("10.9.0.5 on network net")),
            (serde_json::json!({"NetworkSettings": {"Networks": {"net": {"IPAMConfig": {"IPv4Address": ""}}}}}), None),
            (serde_json::json!({"NetworkSettings": {"Networks": {"net": {"IPAMConfig": null}}}}), None),
            (serde_json::json!({"Mounts": [{"Type": "volume", "Name": "data", "Destination": "/data", "RW": true}]}), Some("named volume data read-write at /data")),
            (serde_json::json!({"Mounts": [{"Type": "volume", "Name": "data", "Destination": "/data", "RW": false}]}), None),
            (serde_json::json!({"Mounts": [{"Type": "volume", "Name": anon, "Destination": "/cache", "RW": true}]}), None),
            (serde_json::json!({"Mounts": [{"Type": "bind", "Source": "/etc/app", "Destination": "/etc/app", "RW": true}]}), None),
        ];
        for (json, expected) in cases {
            let why = why_not_duplicable(&inspect(json.clone()));
            match (expected, &why) {
                (None, None) => {}
                (Some(part), Some(why)) => assert!(why.contains(part), "{json}: {why}"),
                _ => panic!("{json}: expected {expected:?}, got {why:?}"),
            }
        }
    }
}
