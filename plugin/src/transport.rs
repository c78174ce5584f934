//! How a lane reaches its collector: the HTTP agent and URL for a
//! destination. As in the filter, `collector` says where to connect and
//! `collector_host` what to call it: the URL carries the name (so it is the
//! Host header, the TLS server name and the name the certificate must
//! match), and the resolver sends every connection to `collector` instead.
//! `unix:/path` connects to a socket on this host, TLS on top when asked.
//! Owns the resolver, the unix-socket connector and the trusted roots.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kong_looker_core::destination::Destination;
use kong_looker_proto::wire;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, DefaultConnector, Either, LazyBuffers, NextTimeout,
    RustlsConnector, Transport,
};
use ureq::{Agent, Error, Timeout};

/// Certificate authorities that `https` collectors are checked against.
#[derive(Clone, Debug, Default)]
pub enum Roots {
    /// The Mozilla roots bundled with the binary (webpki-roots).
    #[default]
    Bundled,
    /// Only these (`-ca-file`), for a private CA.
    Only(Arc<Vec<Certificate<'static>>>),
}

impl Roots {
    /// The certificates of a PEM file; an error names the file.
    pub fn from_pem_file(path: &Path) -> Result<Roots, String> {
        let pem = std::fs::read(path).map_err(|e| format!("-ca-file {}: {e}", path.display()))?;
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(&pem) {
            match item {
                Ok(PemItem::Certificate(c)) => certs.push(c),
                Ok(_) => {}
                Err(e) => return Err(format!("-ca-file {}: {e}", path.display())),
            }
        }
        if certs.is_empty() {
            return Err(format!("-ca-file {}: no PEM certificate", path.display()));
        }
        Ok(Roots::Only(Arc::new(certs)))
    }
}

/// The agent that reaches `d`, and the URL batches are posted to.
pub fn agent(d: &Destination, timeout: Duration, roots: &Roots) -> Result<(Agent, String), String> {
    let scheme = if d.tls { "https" } else { "http" };
    let url = format!("{scheme}://{}{}", d.authority, wire::BATCHES_PATH);
    url.parse::<Uri>().map_err(|e| {
        format!(
            "collector_host: {:?} cannot name a server: {e}",
            d.authority
        )
    })?;
    let tls = TlsConfig::builder().root_certs(match roots {
        Roots::Bundled => RootCerts::WebPki,
        Roots::Only(certs) => RootCerts::Specific(Arc::clone(certs)),
    });
    let config = Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .tls_config(tls.build())
        .build();
    let agent = match d.upstream.strip_prefix("unix:") {
        Some(path) => Agent::with_parts(
            config,
            UnixConnector(PathBuf::from(path)).chain(RustlsConnector::default()),
            // Nothing to look up; the connector ignores the address.
            Fixed,
        ),
        None => {
            let target = format!("http://{}/", d.upstream)
                .parse::<Uri>()
                .map_err(|e| format!("collector: {:?}: {e}", d.upstream))?;
            Agent::with_parts(config, DefaultConnector::new(), Pinned(target))
        }
    };
    Ok((agent, url))
}

/// Resolves `collector` whatever host the URL names.
#[derive(Debug)]
struct Pinned(Uri);

impl Resolver for Pinned {
    fn resolve(
        &self,
        _uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, Error> {
        DefaultResolver::default().resolve(&self.0, config, timeout)
    }
}

/// One placeholder address, for connectors that do not use it.
#[derive(Debug)]
struct Fixed;

impl Resolver for Fixed {
    fn resolve(&self, _: &Uri, _: &Config, _: NextTimeout) -> Result<ResolvedSocketAddrs, Error> {
        let mut addrs = self.empty();
        addrs.push(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        Ok(addrs)
    }
}

/// Connects to a unix socket.
#[derive(Debug)]
struct UnixConnector(PathBuf);

impl<In: Transport> Connector<In> for UnixConnector {
    type Out = Either<In, UnixTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, Error> {
        if let Some(c) = chained {
            return Ok(Some(Either::A(c)));
        }
        // A local connect does not block on the network; the socket's
        // backlog is the only wait, and reads and writes have deadlines.
        let stream = UnixStream::connect(&self.0)?;
        let config = details.config;
        Ok(Some(Either::B(UnixTransport {
            stream,
            buffers: LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size()),
        })))
    }
}

/// HTTP/1.1 over a unix socket.
#[derive(Debug)]
pub struct UnixTransport {
    stream: UnixStream,
    buffers: LazyBuffers,
}

/// The deadline a call has left for the next read or write; a spent
/// budget is a timeout now.
fn deadline(timeout: NextTimeout) -> Result<Option<Duration>, Error> {
    if timeout.after.is_zero() {
        return Err(Error::Timeout(timeout.reason));
    }
    Ok(timeout.not_zero().map(|d| *d))
}

fn timed_out(e: std::io::Error, reason: Timeout) -> Error {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Error::Timeout(reason),
        _ => Error::Io(e),
    }
}

impl Transport for UnixTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        let timeout = timeout.for_write();
        self.stream.set_write_timeout(deadline(timeout)?)?;
        let output = self.buffers.output();
        let Some(bytes) = output.get(..amount) else {
            return Err(Error::Io(std::io::Error::other("output past the buffer")));
        };
        self.stream
            .write_all(bytes)
            .map_err(|e| timed_out(e, timeout.reason))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        let timeout = timeout.for_read();
        self.stream.set_read_timeout(deadline(timeout)?)?;
        let n = loop {
            match self.stream.read(self.buffers.input_append_buf()) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r.map_err(|e| timed_out(e, timeout.reason))?,
            }
        };
        self.buffers.input_appended(n);
        Ok(n > 0)
    }

    fn is_open(&mut self) -> bool {
        // Open means: no EOF and no stray bytes waiting.
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let mut probe = [0u8; 1];
        let open = matches!(
            self.stream.read(&mut probe),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
        );
        open && self.stream.set_nonblocking(false).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kong_looker_core::config::Config as FilterConfig;

    fn destination(json: &str) -> Destination {
        Destination::of(&FilterConfig::parse(json.as_bytes()).unwrap())
    }

    #[test]
    fn the_url_names_collector_host_and_the_connection_goes_to_collector() {
        let d = destination(
            r#"{"collector":"127.0.0.1:9400","collector_host":"collector.internal","tls":true}"#,
        );
        let (_, url) = agent(&d, Duration::from_secs(1), &Roots::Bundled).unwrap();
        assert_eq!(url, "https://collector.internal/v1/batches");
        let d = destination(r#"{"collector":"127.0.0.1:9400"}"#);
        let (_, url) = agent(&d, Duration::from_secs(1), &Roots::Bundled).unwrap();
        assert_eq!(url, "http://127.0.0.1:9400/v1/batches");
        let d = destination(r#"{"collector":"unix:/run/kl.sock"}"#);
        let (_, url) = agent(&d, Duration::from_secs(1), &Roots::Bundled).unwrap();
        assert_eq!(url, "http://localhost/v1/batches");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem\n").unwrap();
        let e = Roots::from_pem_file(&empty).unwrap_err();
        assert!(
            e.contains("empty.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
        let e = Roots::from_pem_file(&dir.path().join("missing.pem")).unwrap_err();
        assert!(e.contains("missing.pem"), "{e}");
    }
}
