//! Where the API listens: TCP addresses and unix sockets. Owns the
//! `--listen` syntax, binding (a unix socket file left by a dead collector
//! is replaced, a live one is not, and a new one appears only once it
//! accepts), and serving every listener, with or
//! without TLS, until one shutdown signal stops them all.

use std::fmt;
use std::net::SocketAddr;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use axum::serve::Listener;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio_rustls::rustls::ServerConfig;

use crate::tls::TlsListener;

/// One `--listen` value: `ip:port`, `[v6]:port` or `unix:/absolute/path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A unix socket path, for gateways and plugin servers on this host.
    Unix(PathBuf),
}

impl FromStr for Listen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            return if path.starts_with('/') && path.len() > 1 {
                Ok(Listen::Unix(PathBuf::from(path)))
            } else {
                Err(format!(
                    "{s:?}: a unix socket needs an absolute path, as in unix:/run/kong-looker.sock"
                ))
            };
        }
        s.parse().map(Listen::Tcp).map_err(|_| {
            format!("{s:?}: give ip:port, [v6]:port or unix:/path (host names are not resolved)")
        })
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Tcp(a) => write!(f, "{a}"),
            Listen::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// A bound listener, not yet serving.
#[derive(Debug)]
pub enum Bound {
    /// TCP, with the address it got (port 0 becomes a real port).
    Tcp(TcpListener, SocketAddr),
    /// A unix socket, removed again when serving ends.
    Unix(UnixListener, PathBuf),
}

impl Bound {
    /// What clients connect to, as `--listen` spells it.
    pub fn address(&self) -> Listen {
        match self {
            Bound::Tcp(_, a) => Listen::Tcp(*a),
            Bound::Unix(_, p) => Listen::Unix(p.clone()),
        }
    }
}

/// Binds `listen`. A socket file that nothing answers on is a dead
/// collector's and is replaced; anything else in the way is an error.
pub async fn bind(listen: &Listen) -> Result<Bound, String> {
    match listen {
        Listen::Tcp(addr) => {
            let tcp = TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            let local = tcp.local_addr().map_err(|e| e.to_string())?;
            Ok(Bound::Tcp(tcp, local))
        }
        Listen::Unix(path) => {
            clear_stale(path)?;
            Ok(Bound::Unix(bind_in_place(path)?, path.clone()))
        }
    }
}

/// Binds under a temporary name beside `path` and renames it into place:
/// bind() makes the path before listen() makes it accept, and a client
/// that waits for the path would be refused in between.
fn bind_in_place(path: &Path) -> Result<UnixListener, String> {
    let shown = path.display();
    // Shorter than most socket names, so it fits where the path fits.
    let staged = path.with_file_name(format!(".klc{}", std::process::id()));
    let _ = std::fs::remove_file(&staged);
    let unix =
        UnixListener::bind(&staged).map_err(|e| format!("cannot listen on unix:{shown}: {e}"))?;
    std::fs::rename(&staged, path).map_err(|e| {
        let _ = std::fs::remove_file(&staged);
        format!("cannot listen on unix:{shown}: moving the socket into place: {e}")
    })?;
    Ok(unix)
}

fn clear_stale(path: &Path) -> Result<(), String> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    let shown = path.display();
    if !meta.file_type().is_socket() {
        return Err(format!(
            "cannot listen on unix:{shown}: the path exists and is not a socket"
        ));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(format!(
            "cannot listen on unix:{shown}: another process is listening there"
        ));
    }
    std::fs::remove_file(path)
        .map_err(|e| format!("cannot replace the stale socket unix:{shown}: {e}"))
}

/// Closes listeners that will not serve, removing their socket files.
pub fn release(bound: Vec<Bound>) {
    for b in bound {
        if let Bound::Unix(l, path) = b {
            drop(l);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Serves `router` on every listener until `shutdown` completes, then
/// lets each finish its connections (axum's graceful shutdown).
pub async fn serve_all(
    bound: Vec<Bound>,
    router: axum::Router,
    tls: Option<Arc<ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let mut servers = tokio::task::JoinSet::new();
    let mut sockets = Vec::new();
    for b in bound {
        let (router, tls, stopped) = (router.clone(), tls.clone(), stopped.clone());
        match b {
            Bound::Tcp(l, _) => servers.spawn(serve_one(l, router, tls, stopped)),
            Bound::Unix(l, path) => {
                sockets.push(path);
                servers.spawn(serve_one(l, router, tls, stopped))
            }
        };
    }
    drop(router);
    let mut result = Ok(());
    while let Some(done) = servers.join_next().await {
        let outcome = match done {
            Ok(r) => r.map_err(|e| format!("server: {e}")),
            Err(e) => Err(format!("server task: {e}")),
        };
        if result.is_ok() {
            result = outcome;
        }
    }
    for path in sockets {
        let _ = std::fs::remove_file(path);
    }
    result
}

async fn serve_one<L>(
    listener: L,
    router: axum::Router,
    tls: Option<Arc<ServerConfig>>,
    mut stopped: watch::Receiver<bool>,
) -> std::io::Result<()>
where
    L: Listener,
    L::Addr: Clone + fmt::Debug + Sync,
{
    let stop = async move {
        // A dropped sender means the signal task is gone: stop too.
        let _ = stopped.wait_for(|s| *s).await;
    };
    match tls {
        Some(config) => {
            axum::serve(TlsListener::new(listener, config)?, router)
                .with_graceful_shutdown(stop)
                .await
        }
        None => {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_and_sockets() {
        assert_eq!(
            "127.0.0.1:9400".parse::<Listen>(),
            Ok(Listen::Tcp("127.0.0.1:9400".parse().unwrap()))
        );
        assert_eq!(
            "[::1]:9400".parse::<Listen>(),
            Ok(Listen::Tcp("[::1]:9400".parse().unwrap()))
        );
        assert_eq!(
            "unix:/run/kl.sock".parse::<Listen>(),
            Ok(Listen::Unix("/run/kl.sock".into()))
        );
        assert_eq!(
            Listen::Unix("/run/kl.sock".into()).to_string(),
            "unix:/run/kl.sock"
        );
        for bad in [
            "unix:",
            "unix:rel.sock",
            "unix:/",
            "localhost:9400",
            "9400",
            "",
        ] {
            let e = bad.parse::<Listen>().unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_live_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let listen = Listen::Unix(path.clone());
        // A socket file that nothing listens on, as a SIGKILL leaves it.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let live = bind(&listen).await.unwrap();
        let e = bind(&listen).await.unwrap_err();
        assert!(e.contains("another process is listening"), "{e}");
        drop(live);
        let file = dir.path().join("plain");
        std::fs::write(&file, "x").unwrap();
        let e = bind(&Listen::Unix(file.clone())).await.unwrap_err();
        assert!(e.contains("not a socket"), "{e}");
        assert_eq!(std::fs::read_to_string(file).unwrap(), "x");
    }
}
