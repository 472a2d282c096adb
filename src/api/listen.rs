//! Binding the control API: a Unix socket whose file mode is the access control, and an optional
//! TCP listener where a bearer token is.

use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio::task::JoinHandle;

use super::server::{router, ApiState, HttpError};
use crate::shutdown::Shutdown;

pub const DEFAULT_CONTROL_SOCKET: &str = "/run/haproxy-drain/control.sock";
/// Owner and group may connect; connecting to a Unix socket needs write permission.
pub const SOCKET_MODE: u32 = 0o660;

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("socket {path}: another haproxy-drain answers there already; stop it or pick another {flag}")]
    InUse { path: PathBuf, flag: &'static str },
    #[error("socket {path} ({flag}) exists and is not a socket; refusing to remove it")]
    NotASocket { path: PathBuf, flag: &'static str },
    #[error("socket {path} ({flag}): {action} failed: {source}")]
    Io {
        path: PathBuf,
        flag: &'static str,
        action: &'static str,
        source: std::io::Error,
    },
    #[error("group {group:?} for {flag}: no such group in /etc/group; give a group name or a numeric gid")]
    UnknownGroup { group: String, flag: &'static str },
    #[error("control API on {addr}: bind failed: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("token file {path}: {source}")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token file {path} is empty; put a long random token in it")]
    EmptyToken { path: PathBuf },
    #[error("token file {path} has mode {mode:o}: others may read it; refusing to start (chmod 600 it, or 640 for a group)")]
    TokenExposed { path: PathBuf, mode: u32 },
}

/// Serves the API on a Unix socket until `shutdown`; removes the socket file when it stops.
/// A stale socket file (nobody answers) is replaced; the parent directory is created.
pub async fn serve_unix(
    path: &Path,
    mode: u32,
    state: ApiState,
    shutdown: Shutdown,
) -> Result<JoinHandle<()>, ListenError> {
    serve_unix_group(path, mode, None, state, shutdown).await
}

/// [`serve_unix`], and the socket file's group set to `group` (a name from /etc/group or a
/// numeric gid), so that its members — and with mode 0660 only they and the owner — may connect.
pub async fn serve_unix_group(
    path: &Path,
    mode: u32,
    group: Option<&str>,
    state: ApiState,
    mut shutdown: Shutdown,
) -> Result<JoinHandle<()>, ListenError> {
    let gid = group
        .map(|group| resolve_group(group, "--control-socket-group"))
        .transpose()?;
    let listener = bind_unix(path, mode, gid, "--control-socket").await?;
    tracing::info!(socket = %path.display(), mode = format!("{mode:o}"), gid = ?gid, "control API listening");
    let app = router(state);
    let path = path.to_path_buf();
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.recv().await })
            .await;
        if let Err(error) = served {
            tracing::error!(socket = %path.display(), %error, "control API stopped");
        }
        let _ = std::fs::remove_file(&path);
    }))
}

/// Binds a Unix socket whose file mode (and group, when given) is its access control: creates
/// the parent directory, replaces a stale socket file (nobody answers), refuses to take over a
/// live one or to remove anything that is not a socket. `flag` names the option in errors.
pub async fn bind_unix(
    path: &Path,
    mode: u32,
    group: Option<u32>,
    flag: &'static str,
) -> Result<UnixListener, ListenError> {
    let io = |action: &'static str| {
        let path = path.to_path_buf();
        move |source| ListenError::Io {
            path,
            flag,
            action,
            source,
        }
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io("creating its directory"))?;
    }
    remove_stale(path, flag).await?;
    let listener = UnixListener::bind(path).map_err(io("bind"))?;
    // The group before the mode: between the two, the socket is never open to a wrong group.
    if let Some(gid) = group {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(io("chown (setting its group)"))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io("chmod"))?;
    Ok(listener)
}

/// A group name (looked up in /etc/group) or a numeric gid.
pub fn resolve_group(group: &str, flag: &'static str) -> Result<u32, ListenError> {
    let group = group.trim();
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    let unknown = || ListenError::UnknownGroup {
        group: group.to_string(),
        flag,
    };
    let table = std::fs::read_to_string("/etc/group").map_err(|_| unknown())?;
    gid_in_table(&table, group).ok_or_else(unknown)
}

fn gid_in_table(table: &str, group: &str) -> Option<u32> {
    table.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let gid = fields.nth(1)?;
        (name == group).then(|| gid.trim().parse().ok()).flatten()
    })
}

async fn remove_stale(path: &Path, flag: &'static str) -> Result<(), ListenError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(ListenError::NotASocket {
            path: path.to_path_buf(),
            flag,
        });
    }
    if UnixStream::connect(path).await.is_ok() {
        return Err(ListenError::InUse {
            path: path.to_path_buf(),
            flag,
        });
    }
    std::fs::remove_file(path).map_err(|source| ListenError::Io {
        path: path.to_path_buf(),
        flag,
        action: "removing the stale socket",
        source,
    })
}

/// Serves the API on TCP; every request needs `Authorization: Bearer <token>`, the token being
/// the trimmed content of `token_file`. Returns the bound address (bind port 0 in tests).
pub async fn serve_tcp(
    addr: SocketAddr,
    token_file: &Path,
    state: ApiState,
    mut shutdown: Shutdown,
) -> Result<(SocketAddr, JoinHandle<()>), ListenError> {
    let token = read_token(token_file)?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ListenError::Bind { addr, source })?;
    tracing::info!(%bound, "control API listening on TCP (bearer token required)");
    let app = router(state).layer(middleware::from_fn_with_state(
        Arc::new(token),
        require_token,
    ));
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.recv().await })
            .await;
        if let Err(error) = served {
            tracing::error!(%bound, %error, "control API (TCP) stopped");
        }
    });
    Ok((bound, task))
}

fn read_token(path: &Path) -> Result<String, ListenError> {
    // A token anyone on the host can read is no secret: refuse before serving with it.
    let mode = std::fs::metadata(path)
        .map_err(|source| ListenError::TokenFile {
            path: path.to_path_buf(),
            source,
        })?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o007 != 0 {
        return Err(ListenError::TokenExposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| ListenError::TokenFile {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(ListenError::EmptyToken {
            path: path.to_path_buf(),
        });
    }
    Ok(token)
}

async fn require_token(State(token): State<Arc<String>>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        Some(given) if same_bytes(given.as_bytes(), token.as_bytes()) => next.run(request).await,
        _ => {
            let mut response = HttpError::new(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token (Authorization: Bearer <token from the token file>)",
            )
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            response
        }
    }
}

/// Compares without an early exit, so response timing does not reveal a matching prefix.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_name_or_number() {
        let table = "root:x:0:\ndocker:x:998:alice,bob\nbroken\nweb:x:notanumber:\n";
        assert_eq!(gid_in_table(table, "docker"), Some(998));
        assert_eq!(gid_in_table(table, "root"), Some(0));
        assert_eq!(gid_in_table(table, "web"), None);
        assert_eq!(gid_in_table(table, "dock"), None);
        assert_eq!(resolve_group("1234", "--x").unwrap(), 1234);
        assert!(matches!(
            resolve_group("no-such-group-here", "--x"),
            Err(ListenError::UnknownGroup { .. })
        ));
    }

    #[test]
    fn token_comparison_is_exact() {
        assert!(same_bytes(b"s3cret", b"s3cret"));
        assert!(!same_bytes(b"s3cret", b"s3cre"));
        assert!(!same_bytes(b"s3cret", b"s3creT"));
        assert!(!same_bytes(b"", b"x"));
    }

    #[test]
    fn token_file_is_trimmed_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "  abc \n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(read_token(&file).unwrap(), "abc");
        std::fs::write(&file, " \n").unwrap();
        assert!(matches!(
            read_token(&file),
            Err(ListenError::EmptyToken { .. })
        ));
        assert!(matches!(
            read_token(&dir.path().join("missing")),
            Err(ListenError::TokenFile { .. })
        ));
    }

    #[test]
    fn a_token_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cret\n").unwrap();
        for mode in [0o644, 0o604, 0o602, 0o601] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            let error = read_token(&file).unwrap_err();
            assert!(
                matches!(error, ListenError::TokenExposed { .. }),
                "{mode:o}"
            );
            assert!(error.to_string().contains("chmod 600"), "{error}");
        }
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_token(&file).unwrap(), "s3cret");
    }
}
