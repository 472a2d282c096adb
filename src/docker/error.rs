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

    /// HTTP 403: a socket proxy (or an authorization plugin) in front of the engine refused it.
    #[error(
        "Docker at {endpoint} refused to {operation}: HTTP 403: {message}; the Docker socket \
         haproxy-drain was given does not allow it: this needs {needs}"
    )]
    Forbidden {
        endpoint: String,
        operation: String,
        message: String,
        needs: &'static str,
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

    #[error("container {name} cannot run twice at once, so `roll --surge` refuses it: {reason}; roll it without --surge")]
    NotDuplicable { name: String, reason: String },

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
                status_code: 403,
                message,
            } => DockerError::Forbidden {
                needs: permission_needed(&operation),
                endpoint,
                operation,
                message,
            },
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

    /// HTTP 403: the socket (proxy) does not grant this operation.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, DockerError::Forbidden { .. })
    }

    /// The daemon could not be reached at all (as opposed to rejecting the request).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, DockerError::Unreachable { .. })
    }
}

/// Which Docker API access an operation needs, in the terms of a socket proxy like Tecnativa's
/// docker-socket-proxy (whose `POST=0` allows only GET and HEAD). `operation` is the text our
/// callers pass (`stop container "web1"`, `image inspect`, …); the first word decides.
pub fn permission_needed(operation: &str) -> &'static str {
    let mut words = operation.split_whitespace();
    let word = match (words.next().unwrap_or_default(), words.next()) {
        ("inspect", Some("image")) => "image",
        (word, _) => word,
    };
    match word {
        "stop" | "start" | "kill" | "restart" => {
            "POST /containers/{id}/stop|start (docker-socket-proxy: CONTAINERS=1 and POST=1); only `roll` and `drain --force` of a dead container need it"
        }
        "rm" | "remove" => {
            "DELETE /containers/{id} (docker-socket-proxy: CONTAINERS=1 and POST=1); only `roll` with --image needs it"
        }
        "create" | "recreate" => {
            "POST /containers/create (docker-socket-proxy: CONTAINERS=1 and POST=1); only `roll` with --image needs it"
        }
        "image" => {
            "GET /images/{name}/json (docker-socket-proxy: IMAGES=1); only `roll` with --image needs it"
        }
        "pull" => "POST /images/create (docker-socket-proxy: IMAGES=1 and POST=1); only `roll --pull` needs it",
        "network" | "connect" => {
            "POST /networks/{id}/connect (docker-socket-proxy: NETWORKS=1 and POST=1); only `roll` of a container on several networks needs it"
        }
        "events" | "watch" => "GET /events (docker-socket-proxy: EVENTS=1); the watcher cannot run without it",
        "ping" | "version" => "GET /_ping and /version (docker-socket-proxy: PING=1 and VERSION=1, its defaults)",
        _ => "GET /containers/json and /containers/{id}/json (docker-socket-proxy: CONTAINERS=1); the watcher cannot run without it",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_403_says_which_permission_is_missing() {
        let err = DockerError::classify(
            "unix:///run/proxy.sock",
            "stop container \"web1\"".into(),
            BollardError::DockerResponseServerError {
                status_code: 403,
                message: "Request forbidden by administrative rules.".into(),
            },
        );
        assert!(err.is_forbidden());
        let text = err.to_string();
        assert!(
            text.contains("POST=1") && text.contains("web1") && text.contains("403"),
            "{text}"
        );
        assert!(permission_needed("list containers").contains("CONTAINERS=1"));
        assert!(permission_needed("image inspect").contains("IMAGES=1"));
        assert!(permission_needed("inspect image \"app:v2\"").contains("IMAGES=1"));
        assert!(permission_needed("inspect container \"x\"").contains("CONTAINERS=1"));
    }

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
