//! Recreating a container with only the image changed, for `roll`.
//!
//! [`DockerClient::recreate`] sets the stopped old container aside (renamed, see
//! [`super::set_aside`]), creates the new one under the name from [`super::plan::user_config`],
//! and only then removes the old one. If creating the new one fails, the old one gets its name
//! back and is started, and the error says so. If haproxy-drain dies in between, the container
//! set aside is still there and the next start finishes or undoes the swap
//! ([`DockerClient::recover_interrupted_recreates`]): no moment loses the container.

use bollard::errors::Error as BollardError;
use bollard::models::{ContainerInspectResponse, ImageInspect, NetworkConnectRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, RemoveContainerOptionsBuilder,
    RenameContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::client::DockerClient;
use super::error::DockerError;
use super::plan::{user_config, RecreatePlan};
use super::set_aside::set_aside_name;

impl DockerClient {
    /// Fails with [`DockerError::ContainerNotFound`] unless the container exists (running or
    /// not).
    ///
    /// A container still set aside by a recreate that failed half-way (the create's connection
    /// cut while the engine went on, so the name could not be given back) is dealt with first,
    /// as the next start would: the container ends under its name and running.
    pub async fn require_container(&self, name: &str) -> Result<(), DockerError> {
        if self.inspect(&set_aside_name(name)).await?.is_some() {
            let ops = self.finish_interrupted_roll(name).await?;
            tracing::warn!(
                container = name,
                ?ops,
                "finished a recreate an earlier roll left half-way"
            );
        }
        self.inspect_full(name).await.map(drop)
    }

    /// Fails with [`DockerError::ImageMissing`] unless the engine has the image locally.
    pub async fn require_image(&self, image: &str) -> Result<(), DockerError> {
        self.inspect_image(image).await.map(drop)
    }

    /// `docker pull`; the engine's reason when it fails (no registry reachable, unknown tag).
    pub async fn pull(&self, image: &str) -> Result<(), DockerError> {
        let options = CreateImageOptionsBuilder::default()
            .from_image(image)
            .build();
        let mut progress = self.docker.create_image(Some(options), None, None);
        while let Some(item) = progress.next().await {
            item.map_err(|e| match e {
                // A socket proxy refused: say which permission is missing.
                BollardError::DockerResponseServerError {
                    status_code: 403, ..
                } => self.error(format!("pull {image:?}"), e),
                e => DockerError::Pull {
                    image: image.to_string(),
                    message: e.to_string(),
                },
            })?;
        }
        Ok(())
    }

    /// Replaces the stopped container `name` with one made from `new_image`; does not start it.
    /// Returns the new container's id.
    pub async fn recreate(&self, name: &str, new_image: &str) -> Result<String, DockerError> {
        let container = self.inspect_full(name).await?;
        let old_image_id = container.image.clone().ok_or(DockerError::Incomplete {
            name: name.to_string(),
            missing: "Image",
        })?;
        let old_image = self.inspect_image(&old_image_id).await?;
        self.inspect_image(new_image).await?;
        let plan = user_config(&container, &old_image)?;
        let mut new_plan = plan.clone();
        new_plan.body.image = Some(new_image.to_string());
        let mut old_plan = plan;
        old_plan.body.image = Some(old_image_id.clone());

        let aside = set_aside_name(name);
        self.rename(name, &aside).await?;
        match self.create(&new_plan).await {
            Ok(id) => {
                if let Err(error) = self.remove(&aside, false).await {
                    // Only a stopped leftover: the next start of haproxy-drain removes it.
                    tracing::warn!(container = name, set_aside = aside, %error, "cannot remove the replaced container");
                }
                Ok(id)
            }
            Err(message) => {
                // A half-created container (created, a network connect failed) holds the name.
                let _ = self.remove(name, true).await;
                let restore = match self.rename(&aside, name).await {
                    Ok(()) => match self.start(name).await {
                        Ok(()) => format!("the old container ({old_image_id}) got its name back and was started"),
                        Err(e) => format!("the old container ({old_image_id}) got its name back but did not start: {e}"),
                    },
                    Err(e) => format!("the old container is kept as {aside}: {e}; the next roll of it or start of haproxy-drain finishes the swap"),
                };
                Err(DockerError::Recreate {
                    name: name.to_string(),
                    image: new_image.to_string(),
                    message,
                    restore,
                })
            }
        }
    }

    pub(super) async fn rename(&self, name: &str, to: &str) -> Result<(), DockerError> {
        let options = RenameContainerOptionsBuilder::default().name(to).build();
        self.docker
            .rename_container(name, options)
            .await
            .map_err(|e| self.container_error(&format!("rename (to {to:?})"), name, e))
    }

    pub(super) async fn remove(&self, name: &str, force: bool) -> Result<(), DockerError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(force)
            .build();
        self.docker
            .remove_container(name, Some(options))
            .await
            .map_err(|e| self.container_error("remove", name, e))
    }

    /// The full inspect output (the typed [`DockerClient::inspect`] keeps only what the
    /// controller needs; recreating needs everything).
    /// The ID of the image `name` runs (for a roll that may have to put it back).
    pub async fn image_id(&self, name: &str) -> Result<String, DockerError> {
        let container = self.inspect_full(name).await?;
        container.image.ok_or(DockerError::Incomplete {
            name: name.to_string(),
            missing: "Image",
        })
    }

    pub(super) async fn inspect_full(
        &self,
        name: &str,
    ) -> Result<ContainerInspectResponse, DockerError> {
        self.docker
            .inspect_container(name, None)
            .await
            .map_err(|e| self.container_error("inspect", name, e))
    }

    pub(super) async fn inspect_image(&self, image: &str) -> Result<ImageInspect, DockerError> {
        match self.docker.inspect_image(image).await {
            Ok(found) => Ok(found),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Err(DockerError::ImageMissing {
                image: image.to_string(),
            }),
            Err(e) => Err(self.error(format!("inspect image {image:?}"), e)),
        }
    }

    /// Creates the container and connects its extra networks; the message says which step failed.
    pub(super) async fn create(&self, plan: &RecreatePlan) -> Result<String, String> {
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

    /// A 404 names the container; anything else is classified like every other call.
    pub(super) fn container_error(
        &self,
        action: &str,
        name: &str,
        error: BollardError,
    ) -> DockerError {
        match error {
            BollardError::DockerResponseServerError {
                status_code: 404, ..
            } => DockerError::ContainerNotFound {
                name: name.to_string(),
            },
            other => self.error(format!("{action} container {name:?}"), other),
        }
    }
}
