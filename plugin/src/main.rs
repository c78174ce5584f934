//! `kong-looker-plugin`: the binary Kong starts as an external plugin
//! server. Owns the command line (go-pdk's: `-dump`, `-kong-prefix DIR`),
//! the socket's place, the runtime, and the shutdown on SIGTERM or SIGINT,
//! which flushes what the lanes hold for a bounded time.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kong_looker_plugin::delivery::{Lanes, SpoolConfig};
use kong_looker_plugin::metrics;
use kong_looker_plugin::server::{PLUGIN_NAME, Server, log};
use kong_looker_plugin::transport::Roots;
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};

const USAGE: &str = "usage: kong-looker-plugin [-dump] [-kong-prefix DIR] [-shutdown-grace-ms N] [-metrics-listen ADDR]
                          [-spool-dir DIR [-spool-max-bytes N]] [-ca-file PEM]

  -dump                 print the plugin's description for Kong and exit
  -kong-prefix DIR      Kong's prefix; the socket is DIR/kong-looker.socket
                        (default /usr/local/kong)
  -shutdown-grace-ms N  on SIGTERM, how long to flush held batches (default 5000)
  -metrics-listen ADDR  serve GET /metrics (Prometheus text) on ADDR, e.g.
                        127.0.0.1:9542 (default: off)
  -spool-dir DIR        keep on disk, under DIR, the batches that a collector
                        outage would otherwise drop (past the memory cap or
                        the retry age, or held at SIGTERM); they are sent
                        once the collector is back, by this process or the
                        next (default: off)
  -spool-max-bytes N    bound on each collector's spool (default 268435456)
  -ca-file PEM          check https collectors against the CA certificates in
                        PEM instead of the bundled Mozilla roots";

struct Args {
    dump: bool,
    prefix: PathBuf,
    grace: Duration,
    metrics: Option<SocketAddr>,
    spool: Option<SpoolConfig>,
    roots: Roots,
}

fn args() -> Result<Args, String> {
    let mut out = Args {
        dump: false,
        prefix: PathBuf::from("/usr/local/kong"),
        grace: Duration::from_millis(5000),
        metrics: None,
        spool: None,
        roots: Roots::Bundled,
    };
    let mut spool_max: u64 = 256 << 20;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        // Go's flag package takes one dash or two, and `-name=value`.
        let trimmed = arg.trim_start_matches('-');
        let (name, inline) = match trimmed.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (trimmed, None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("-{name} needs a value"))
        };
        match name {
            "dump" => out.dump = true,
            "kong-prefix" => out.prefix = PathBuf::from(value(name)?),
            "shutdown-grace-ms" => {
                let v = value(name)?;
                let ms = v
                    .parse::<u64>()
                    .map_err(|_| format!("-shutdown-grace-ms: not a number: {v:?}"))?;
                out.grace = Duration::from_millis(ms);
            }
            "metrics-listen" => {
                let v = value(name)?;
                let addr = v
                    .parse()
                    .map_err(|_| format!("-metrics-listen: not an address: {v:?}"))?;
                out.metrics = Some(addr);
            }
            "spool-dir" => {
                out.spool = Some(SpoolConfig {
                    dir: PathBuf::from(value(name)?),
                    max_bytes: 0,
                });
            }
            "spool-max-bytes" => {
                let v = value(name)?;
                spool_max = v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("-spool-max-bytes: not a positive number: {v:?}"))?;
            }
            "ca-file" => out.roots = Roots::from_pem_file(&PathBuf::from(value(name)?))?,
            "help" | "h" => return Err(String::new()),
            other => return Err(format!("unknown flag -{other}")),
        }
    }
    if let Some(s) = out.spool.as_mut() {
        s.max_bytes = spool_max;
    }
    Ok(out)
}

fn main() -> std::process::ExitCode {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("{e}");
            }
            eprintln!("{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    let lanes = Arc::new(
        match args.spool.clone() {
            Some(spool) => Lanes::with_spool(spool),
            None => Lanes::new(),
        }
        .trusting(args.roots.clone()),
    );
    let server = match Server::new(Arc::clone(&lanes)) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            log(&e);
            return std::process::ExitCode::FAILURE;
        }
    };
    if args.dump {
        return match server.dump() {
            Ok(v) => {
                println!("{v}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                log(&e);
                std::process::ExitCode::FAILURE
            }
        };
    }
    // The runtime only accepts and waits for signals; each connection
    // has a thread of its own (see the server).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            log(&format!("cannot start the runtime: {e}"));
            return std::process::ExitCode::FAILURE;
        }
    };
    let socket = args.prefix.join(format!("{PLUGIN_NAME}.socket"));
    let served = runtime.block_on(run(Arc::clone(&server), socket.clone(), args.metrics));
    let _unused = std::fs::remove_file(&socket);
    // Wait briefly for events already being answered, then flush.
    let until = Instant::now() + Duration::from_secs(1);
    while server.active_calls() > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    lanes.shutdown(args.grace);
    let (stats, held) = lanes.stats();
    let d = &stats.dropped;
    log(&format!(
        "stopped: records buffered {}, delivered {}, dropped {} (buffer_full {}, dispatch_failed {}, capture_error {}), spooled {} ({} bytes on disk), {} bytes still held and lost",
        stats.records_buffered,
        stats.records_delivered,
        d.buffer_full
            .saturating_add(d.dispatch_failed)
            .saturating_add(d.capture_error),
        d.buffer_full,
        d.dispatch_failed,
        d.capture_error,
        stats.records_spilled,
        lanes.spooled().0,
        held
    ));
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            log(&e);
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(
    server: Arc<Server>,
    socket: PathBuf,
    metrics: Option<SocketAddr>,
) -> Result<(), String> {
    if let Some(addr) = metrics {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("-metrics-listen {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        log(&format!("metrics on http://{local}/metrics"));
        let server = Arc::clone(&server);
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let server = Arc::clone(&server);
                async move {
                    let lanes = server.lanes();
                    let (stats, held_bytes) = lanes.stats();
                    let (spool_bytes, spool_batches) = lanes.spooled();
                    let process = metrics::Process {
                        held_bytes,
                        instances: server.instance_count(),
                        spool_bytes,
                        spool_batches,
                        batch_bytes_sent: lanes.bytes_sent(),
                    };
                    (
                        [("content-type", "text/plain; version=0.0.4")],
                        metrics::render(&stats, &process),
                    )
                }
            }),
        );
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                log(&format!("metrics listener stopped: {e}"));
            }
        });
    }
    let listener = listen(&socket)?;
    log(&format!("listening on socket: {}", socket.display()));
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let stop = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    server.serve(listener, stop).await;
    log("stopping: flushing held batches");
    Ok(())
}

/// Binds the socket under a temporary name and renames it into place.
/// bind() makes the path before listen() makes it accept, and a client
/// that waits for the path (Kong, the tests) would be refused in between.
fn listen(socket: &std::path::Path) -> Result<UnixListener, String> {
    // Shorter than the socket's own name, so it fits wherever that fits.
    let staged = socket.with_file_name(format!(".kl{}", std::process::id()));
    for path in [socket, staged.as_path()] {
        // A socket left by a killed predecessor would make bind fail.
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("removing {}: {e}", path.display())),
        }
    }
    let listener =
        UnixListener::bind(&staged).map_err(|e| format!("listen on {}: {e}", staged.display()))?;
    std::fs::rename(&staged, socket).map_err(|e| {
        let _unused = std::fs::remove_file(&staged);
        format!("moving {} into place: {e}", socket.display())
    })?;
    Ok(listener)
}
