//! Recreate a container from its own configuration with only the image changed.
//!
//! "Its own configuration" is what the user set, not what `docker inspect` shows: the inspect
//! output merges the old image's env, cmd, entrypoint, labels, healthcheck, exposed ports and
//! volumes into the container's `Config`. Carrying those over would pin the old image's values
//! onto the new image, so [`user_config`] drops every value equal to the old image's (the way
//! docker-compose and Ansible's `docker_container` recreate). A user value that happens to equal
//! the image's is indistinguishable and is dropped too; the new image then supplies its own.
//!
//! [`Recreator::recreate`] removes the stopped old container, then creates the new one under the
//! same name (the event sequence the controller expects: `destroy` old, `create`/`start` new).
//! If creating the new one fails, the old one is created again from its original image and
//! started, and the error says so.

use std::collections::{HashMap, HashSet};

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, ImageInspect,
    NetworkConnectRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecreateError {
    #[error("cannot reach the Docker engine ({0}); is DOCKER_HOST right and the daemon running?")]
    Connect(String),
    #[error("container {name} does not exist")]
    ContainerNotFound { name: String },
    #[error("image {image} is not present on this host; build or load it first, or pass --pull")]
    ImageMissing { image: String },
    #[error("pulling image {image} failed: {message}")]
    Pull { image: String, message: String },
    #[error("docker {action} {name} failed: {message}")]
    Docker {
        action: &'static str,
        name: String,
        message: String,
    },
    #[error("docker {action} {name} was refused (HTTP 403: {message}): the Docker socket haproxy-drain was given does not allow it; `roll` needs {needs}")]
    Forbidden {
        action: &'static str,
        name: String,
        message: String,
        needs: &'static str,
    },
    #[error("docker inspect {name} shows no {missing}; cannot tell what to recreate")]
    Incomplete { name: String, missing: &'static str },
    #[error("creating {name} from image {image} failed: {message}; {restore}")]
    Create {
        name: String,
        image: String,
        message: String,
        restore: String,
    },
}

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
) -> Result<RecreatePlan, RecreateError> {
    let name = container
        .name
        .as_deref()
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_default();
    let config = container.config.clone().ok_or(RecreateError::Incomplete {
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

/// Docker operations a roll needs, on one bollard connection.
#[derive(Debug, Clone)]
pub struct Recreator {
    docker: Docker,
}

impl Recreator {
    pub fn new(docker: Docker) -> Self {
        Self { docker }
    }

    /// `DOCKER_HOST`, else the default local socket.
    pub fn connect() -> Result<Self, RecreateError> {
        Docker::connect_with_local_defaults()
            .map(Self::new)
            .map_err(|e| RecreateError::Connect(e.to_string()))
    }

    pub async fn inspect(&self, name: &str) -> Result<ContainerInspectResponse, RecreateError> {
        self.docker
            .inspect_container(name, None)
            .await
            .map_err(|e| docker_error("inspect", name, e))
    }

    pub async fn require_image(&self, image: &str) -> Result<ImageInspect, RecreateError> {
        match self.docker.inspect_image(image).await {
            Ok(found) => Ok(found),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Err(RecreateError::ImageMissing {
                image: image.to_string(),
            }),
            Err(e) => Err(docker_error("image inspect", image, e)),
        }
    }

    pub async fn pull(&self, image: &str) -> Result<(), RecreateError> {
        let options = CreateImageOptionsBuilder::default()
            .from_image(image)
            .build();
        let mut progress = self.docker.create_image(Some(options), None, None);
        while let Some(item) = progress.next().await {
            item.map_err(|e| match e {
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 403, ..
                } => docker_error("pull", image, e),
                e => RecreateError::Pull {
                    image: image.to_string(),
                    message: e.to_string(),
                },
            })?;
        }
        Ok(())
    }

    /// `docker stop` with the container's own stop timeout (`--stop-timeout`, else 10 s).
    pub async fn stop(&self, name: &str) -> Result<(), RecreateError> {
        self.docker
            .stop_container(name, None)
            .await
            .map_err(|e| docker_error("stop", name, e))
    }

    pub async fn start(&self, name: &str) -> Result<(), RecreateError> {
        self.docker
            .start_container(name, None)
            .await
            .map_err(|e| docker_error("start", name, e))
    }

    /// Replaces the stopped container `name` with one made from `new_image`; does not start it.
    /// Returns the new container's id.
    pub async fn recreate(&self, name: &str, new_image: &str) -> Result<String, RecreateError> {
        let container = self.inspect(name).await?;
        let old_image_id = container.image.clone().ok_or(RecreateError::Incomplete {
            name: name.to_string(),
            missing: "Image",
        })?;
        let old_image = self.require_image(&old_image_id).await?;
        self.require_image(new_image).await?;
        let plan = user_config(&container, &old_image)?;
        let mut new_plan = plan.clone();
        new_plan.body.image = Some(new_image.to_string());
        let mut old_plan = plan;
        old_plan.body.image = Some(old_image_id.clone());

        let remove = RemoveContainerOptionsBuilder::default().build();
        self.docker
            .remove_container(name, Some(remove))
            .await
            .map_err(|e| docker_error("rm", name, e))?;
        match self.create(&new_plan).await {
            Ok(id) => Ok(id),
            Err(message) => {
                let forced = RemoveContainerOptionsBuilder::default().force(true).build();
                // A half-created container (created, a network connect failed) holds the name.
                let _ = self.docker.remove_container(name, Some(forced)).await;
                let restore = match self.create(&old_plan).await {
                    Ok(_) => match self.start(name).await {
                        Ok(()) => format!("the old container was recreated from {old_image_id} and started"),
                        Err(e) => format!("the old container was recreated from {old_image_id} but did not start: {e}"),
                    },
                    Err(e) => format!("restoring the old container failed too: {e}"),
                };
                Err(RecreateError::Create {
                    name: name.to_string(),
                    image: new_image.to_string(),
                    message,
                    restore,
                })
            }
        }
    }

    async fn create(&self, plan: &RecreatePlan) -> Result<String, String> {
        let options = CreateContainerOptionsBuilder::default()
            .name(&plan.name)
            .build();
        let created = self
            .docker
            .create_container(Some(options), plan.body.clone())
            .await
            .map_err(|e| e.to_string())?;
        for (network, endpoint) in &plan.extra_networks {
            let request = NetworkConnectRequest {
                container: created.id.clone(),
                endpoint_config: Some(endpoint.clone()),
            };
            self.docker
                .connect_network(network, request)
                .await
                .map_err(|e| format!("connecting to network {network}: {e}"))?;
        }
        Ok(created.id)
    }
}

fn docker_error(action: &'static str, name: &str, error: bollard::errors::Error) -> RecreateError {
    match error {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 403,
            message,
        } => RecreateError::Forbidden {
            action,
            name: name.to_string(),
            message,
            needs: super::error::permission_needed(action),
        },
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        } if action != "image inspect" => RecreateError::ContainerNotFound {
            name: name.to_string(),
        },
        other => RecreateError::Docker {
            action,
            name: name.to_string(),
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests;
