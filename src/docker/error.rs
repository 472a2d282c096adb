//! Typed Docker errors with messages an operator can act on.

use bollard::errors::Error as BollardError;

/// Everything that can go wrong talking to the Docker engine.
///
/// Each message names the endpoint (socket or URL), the operation and the container, and says what
/// to check.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(
        "unsupported Docker endpoint {url:?}: use unix:///path/to/docker.sock, a plain socket path, \
         or tcp://host:port (check DOCKER_HOST)"
    )]
    UnsupportedEndpoint { url: String },

    #[error(
        "the Docker socket {path} does not exist: is dockerd running, and is the socket mounted \
         into this container (-v /var/run/docker.sock:/var/run/docker.sock)?"
    )]
    SocketMissing { path: String },

    #[error("cannot set up a Docker client for {endpoint}: {source}")]
    Setup {
        endpoint: String,
        #[source]
        source: BollardError,
    },

    #[error(
        "Docker engine at {endpoint} is not reachable while trying to {operation}: {source}; \
         is dockerd running, does the socket exist and can this user read it?"
    )]
    Unreachable {
        endpoint: String,
        operation: String,
        #[source]
        source: BollardError,
    },

    #[error("Docker engine at {endpoint} refused to {operation}: HTTP {status}: {message}")]
    Api {
        endpoint: String,
        operation: String,
        status: u16,
        message: String,
    },

    #[error("Docker at {endpoint}: {operation} failed: {source}")]
    Other {
        endpoint: String,
        operation: String,
        #[source]
        source: BollardError,
    },

    #[error("container {name} does not exist")]
    ContainerNotFound { name: String },

    #[error("image {image} is not present on this host; build or load it first, or pass --pull")]
    ImageMissing { image: String },

    #[error("pulling image {image} failed: {message}")]
    Pull { image: String, message: String },

    #[error("docker inspect {name} shows no {missing}; cannot tell what to recreate")]
    Incomplete { name: String, missing: &'static str },

    #[error("creating {name} from image {image} failed: {message}; {restore}")]
    Recreate {
        name: String,
        image: String,
        message: String,
        /// What became of the old container (recreated and started, or not).
        restore: String,
    },
}

impl DockerError {
    /// Sorts a bollard error into "daemon unreachable", "daemon said no", or anything else.
    pub(crate) fn classify(endpoint: &str, operation: String, source: BollardError) -> Self {
        let endpoint = endpoint.to_string();
        match source {
            BollardError::DockerResponseServerError {
                status_code,
                message,
            } => DockerError::Api {
                endpoint,
                operation,
                status: status_code,
                message,
            },
            BollardError::HyperLegacyError { .. }
            | BollardError::IOError { .. }
            | BollardError::RequestTimeoutError
            | BollardError::SocketNotFoundError(_) => DockerError::Unreachable {
                endpoint,
                operation,
                source,
            },
            other => DockerError::Other {
                endpoint,
                operation,
                source: other,
            },
        }
    }

    /// HTTP 404 from the daemon: no such container (or image).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            DockerError::Api { status: 404, .. }
                | DockerError::ContainerNotFound { .. }
                | DockerError::ImageMissing { .. }
        )
    }

    /// The daemon could not be reached at all (as opposed to rejecting the request).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, DockerError::Unreachable { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_404_is_not_found_and_names_the_container() {
        let err = DockerError::classify(
            "unix:///var/run/docker.sock",
            "inspect container \"web1\"".into(),
            BollardError::DockerResponseServerError {
                status_code: 404,
                message: "No such container: web1".into(),
            },
        );
        assert!(err.is_not_found());
        let text = err.to_string();
        assert!(
            text.contains("web1") && text.contains("/var/run/docker.sock"),
            "{text}"
        );
    }

    #[test]
    fn a_timeout_means_unreachable() {
        let err = DockerError::classify(
            "unix:///x",
            "ping".into(),
            BollardError::RequestTimeoutError,
        );
        assert!(err.is_unreachable());
        assert!(!err.is_not_found());
    }
}
