//! `kong-looker-collector`: serve, migrate, stats.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::{Parser, Subcommand, ValueEnum};
use kong_looker_collector::api::Gate;
use kong_looker_collector::listen::Listen;
use kong_looker_collector::pipeline::CommitterConfig;
use kong_looker_collector::server::{self, Settings};
use kong_looker_collector::store::{Store, StoreUrl};
use kong_looker_core::config::{AddressMode, MIN_KEY_BYTES};

/// Receives kong_looker filter batches and Kong http-log entries, and
/// commits each exactly once to SQLite (the default) or PostgreSQL (for
/// Looker).
// No Debug: the arguments hold secrets.
#[derive(Parser)]
#[command(name = "kong-looker-collector", version, about, long_about = None)]
struct Cli {
    /// Log format.
    #[arg(long, env = "KONG_LOOKER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain, global = true)]
    log_format: LogFormat,
    /// Log filter, e.g. `info` or `kong_looker_collector=debug`.
    #[arg(long, env = "KONG_LOOKER_LOG", default_value = "info", global = true)]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Plain,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Receive and commit. Creates or migrates the store first.
    Serve(Box<ServeArgs>),
    /// Create or upgrade the store's tables, then exit.
    Migrate {
        #[command(flatten)]
        store: StoreArg,
    },
    /// Print what the store holds: rows, producers, gaps, drops, newest commit.
    Stats {
        #[command(flatten)]
        store: StoreArg,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
struct StoreArg {
    /// `sqlite:PATH` (embedded; Looker cannot read it) or
    /// `postgres://USER:PASSWORD@HOST:PORT/DB` (the Looker path).
    #[arg(
        long,
        env = "KONG_LOOKER_STORE",
        default_value = "sqlite:kong_looker.sqlite"
    )]
    store: StoreUrl,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Where to listen: `ip:port` or `unix:/path`, repeated or
    /// comma-separated for several. Kong dispatches to it from every
    /// worker; a plugin server on the same host can use a unix socket.
    #[arg(
        long,
        env = "KONG_LOOKER_LISTEN",
        default_value = "127.0.0.1:9400",
        value_delimiter = ','
    )]
    listen: Vec<Listen>,
    #[command(flatten)]
    store: StoreArg,
    /// File holding the key the filters sign batches with (their
    /// `signing_key`); surrounding whitespace is ignored.
    #[arg(long, env = "KONG_LOOKER_HMAC_KEY_FILE")]
    hmac_key_file: Option<PathBuf>,
    /// The signing key itself, for environments that inject secrets as
    /// variables. Prefer --hmac-key-file.
    #[arg(long, env = "KONG_LOOKER_SIGNING_KEY", hide_env_values = true)]
    signing_key: Option<String>,
    /// File holding the bearer token Kong's http-log plugin sends.
    #[arg(long, env = "KONG_LOOKER_HTTP_LOG_TOKEN_FILE")]
    http_log_token_file: Option<PathBuf>,
    /// The http-log token itself. Prefer --http-log-token-file.
    #[arg(long, env = "KONG_LOOKER_HTTP_LOG_TOKEN", hide_env_values = true)]
    http_log_token: Option<String>,
    /// Accept unsigned batches and http-log posts without a token, when no
    /// key or token is given. For trials on one machine only. Without it,
    /// each endpoint is on only when its credential is given:
    /// /v1/batches with --hmac-key-file, /v1/kong/http-log with
    /// --http-log-token-file; an endpoint that is off answers 403 and says
    /// which flag turns it on.
    #[arg(long, env = "KONG_LOOKER_ALLOW_UNAUTHENTICATED")]
    allow_unauthenticated: bool,
    /// Largest request body, bytes; larger ones get 413.
    #[arg(long, env = "KONG_LOOKER_MAX_BODY_BYTES", default_value_t = 8 * 1024 * 1024)]
    max_body_bytes: usize,
    /// How far a batch signature's time may be from this machine's clock.
    #[arg(long, env = "KONG_LOOKER_MAX_SKEW_SECONDS", default_value_t = 300)]
    max_skew_seconds: i64,
    /// Oldest records accepted, in hours (older ones are refused as
    /// time_out_of_range).
    #[arg(long, env = "KONG_LOOKER_MAX_AGE_HOURS", default_value_t = 168)]
    max_age_hours: u64,
    /// Requests that may wait for the committer before the rest get 429.
    #[arg(long, env = "KONG_LOOKER_QUEUE", default_value_t = 256)]
    queue: usize,
    /// Bytes of request bodies held at once (being read, queued or
    /// committing); past it, new requests get 429. Bounds the memory.
    #[arg(long, env = "KONG_LOOKER_MAX_INFLIGHT_BYTES", default_value_t = 256 * 1024 * 1024)]
    max_inflight_bytes: usize,
    /// Most requests committed in one transaction [default: 64; 8192 on
    /// ClickHouse].
    #[arg(long, env = "KONG_LOOKER_MAX_GROUP")]
    max_group: Option<usize>,
    /// Rows past which a commit starts without waiting for more [default:
    /// unbounded; 1000000 on ClickHouse].
    #[arg(long, env = "KONG_LOOKER_GROUP_ROWS")]
    group_rows: Option<usize>,
    /// How long after the previous commit began the next may wait to
    /// gather more, ms [default: 0; 1000 on ClickHouse, which wants about
    /// one insert a second].
    #[arg(long, env = "KONG_LOOKER_GROUP_LINGER_MS")]
    group_linger_ms: Option<u64>,
    /// Producer dictionaries held in memory.
    #[arg(long, env = "KONG_LOOKER_MAX_DICTIONARIES", default_value_t = 4096)]
    max_dictionaries: usize,
    /// How long a request waits for its commit before getting 503, ms.
    #[arg(long, env = "KONG_LOOKER_COMMIT_TIMEOUT_MS", default_value_t = 10_000)]
    commit_timeout_ms: u64,
    /// How http-log rows record the client address (filter rows follow the
    /// filter's own `privacy.client_address`).
    #[arg(
        long,
        env = "KONG_LOOKER_CLIENT_ADDRESS",
        default_value = "keep",
        value_parser = clap::builder::PossibleValuesParser::new(AddressMode::CHOICES.map(|(n, _)| n))
            .map(|name| AddressMode::named(&name).unwrap_or_default())
    )]
    client_address: AddressMode,
    /// Key file for `--client-address hash`.
    #[arg(long, env = "KONG_LOOKER_HASH_KEY_FILE")]
    hash_key_file: Option<PathBuf>,
    /// Looker instance to notify after commits, e.g.
    /// https://example.cloud.looker.com (optional; see README).
    #[arg(long, env = "KONG_LOOKER_LOOKER_URL", requires_all = ["looker_client_id", "looker_datagroup_id"])]
    looker_url: Option<String>,
    /// Looker API key id.
    #[arg(long, env = "KONG_LOOKER_LOOKER_CLIENT_ID")]
    looker_client_id: Option<String>,
    /// File holding the Looker API key secret.
    #[arg(long, env = "KONG_LOOKER_LOOKER_CLIENT_SECRET_FILE")]
    looker_client_secret_file: Option<PathBuf>,
    /// The Looker API key secret itself. Prefer --looker-client-secret-file.
    #[arg(long, env = "KONG_LOOKER_LOOKER_CLIENT_SECRET", hide_env_values = true)]
    looker_client_secret: Option<String>,
    /// The id of the model's datagroup (GET /api/4.0/datagroups lists them).
    #[arg(long, env = "KONG_LOOKER_LOOKER_DATAGROUP_ID")]
    looker_datagroup_id: Option<String>,
    /// Least seconds between two datagroup triggers.
    #[arg(
        long,
        env = "KONG_LOOKER_LOOKER_DEBOUNCE_SECONDS",
        default_value_t = 30
    )]
    looker_debounce_seconds: u64,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, env = "KONG_LOOKER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "KONG_LOOKER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format, &cli.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kong-looker-collector: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("kong-looker-collector: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Serve(args) => {
            let settings = settings(*args)?;
            server::serve(settings, shutdown_signal()).await
        }
        Command::Migrate { store } => {
            let mut s = Store::open(&store.store).await.map_err(|e| e.to_string())?;
            let applied = s.migrate().await.map_err(|e| e.to_string())?;
            if applied.is_empty() {
                println!("{}: up to date", store.store);
            }
            for m in applied {
                println!("{}: applied {}", store.store, m.name);
            }
            Ok(())
        }
        Command::Stats { store, json } => {
            let mut s = Store::open(&store.store).await.map_err(|e| e.to_string())?;
            let summary = s.summary().await.map_err(|e| e.to_string())?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?
                );
            } else {
                println!("store            {}", store.store);
                println!(
                    "rows             {} ({} from the filter, {} from http-log only)",
                    summary.rows, summary.filter_rows, summary.http_log_rows
                );
                println!(
                    "batches          {} from {} producers",
                    summary.batches, summary.producers
                );
                println!(
                    "missing batches  {} (besides {} their producers reported abandoning)",
                    summary.missing_batches, summary.abandoned_batches
                );
                println!(
                    "producer drops   buffer_full {}, dispatch_failed {}, capture_error {}, instance_reset {}",
                    summary.drops_buffer_full,
                    summary.drops_dispatch_failed,
                    summary.drops_capture_error,
                    summary.drops_instance_reset
                );
                println!(
                    "newest commit    {}",
                    summary.newest_commit.as_deref().unwrap_or("none")
                );
            }
            Ok(())
        }
    }
}

fn settings(a: ServeArgs) -> Result<Settings, String> {
    let hmac_key = match (&a.hmac_key_file, a.signing_key) {
        (Some(path), _) => Some(secret_file(path, "--hmac-key-file")?.into_bytes()),
        (None, Some(key)) => Some(key.trim().as_bytes().to_vec()),
        (None, None) => None,
    };
    if hmac_key.as_ref().is_some_and(|k| k.len() < MIN_KEY_BYTES) {
        return Err(format!(
            "the signing key must be at least {MIN_KEY_BYTES} bytes, as in the filter"
        ));
    }
    let http_log_token = match (&a.http_log_token_file, a.http_log_token) {
        (Some(path), _) => Some(secret_file(path, "--http-log-token-file")?),
        (None, Some(token)) => Some(token.trim().to_owned()),
        (None, None) => None,
    };
    if hmac_key.is_none() && http_log_token.is_none() && !a.allow_unauthenticated {
        return Err(
            "every endpoint would be off: give --hmac-key-file (batches from the filter), \
             --http-log-token-file (Kong's http-log plugin), or both (or their KONG_LOOKER_* \
             variables); or --allow-unauthenticated for a trial on one machine"
                .into(),
        );
    }
    let hmac_key = Gate::from(hmac_key, a.allow_unauthenticated);
    let http_log_token = Gate::from(http_log_token, a.allow_unauthenticated);
    let hash_key = match &a.hash_key_file {
        Some(path) => Some(secret_file(path, "--hash-key-file")?.into_bytes()),
        None => None,
    };
    let client_address = a.client_address;
    if client_address == AddressMode::Hash && hash_key.is_none() {
        return Err("--client-address hash needs --hash-key-file".into());
    }
    let looker = match a.looker_url {
        Some(base_url) => {
            let client_secret = match (&a.looker_client_secret_file, a.looker_client_secret) {
                (Some(path), _) => secret_file(path, "--looker-client-secret-file")?,
                (None, Some(s)) => s.trim().to_owned(),
                (None, None) => {
                    return Err("--looker-url needs --looker-client-secret-file".into());
                }
            };
            Some(kong_looker_collector::looker::LookerSettings {
                base_url,
                client_id: a.looker_client_id.unwrap_or_default(),
                client_secret,
                datagroup_id: a.looker_datagroup_id.unwrap_or_default(),
                debounce: Duration::from_secs(a.looker_debounce_seconds),
            })
        }
        None => None,
    };
    let grouping = a.store.store.grouping();
    Ok(Settings {
        listen: a.listen,
        store: a.store.store,
        hmac_key,
        http_log_token,
        max_body_bytes: a.max_body_bytes,
        max_skew_s: a.max_skew_seconds,
        max_age: Duration::from_secs(a.max_age_hours.saturating_mul(3600)),
        committer: CommitterConfig {
            queue_jobs: a.queue.max(1),
            max_group: a.max_group.unwrap_or(grouping.max_group).max(1),
            max_rows: a.group_rows.unwrap_or(grouping.max_rows).max(1),
            linger: a
                .group_linger_ms
                .map_or(grouping.linger, Duration::from_millis),
            max_dictionaries: a.max_dictionaries.max(1),
            ..CommitterConfig::default()
        },
        commit_timeout: Duration::from_millis(a.commit_timeout_ms),
        max_inflight_bytes: a.max_inflight_bytes,
        client_address,
        hash_key,
        tls: a.tls_cert.zip(a.tls_key),
        looker,
    })
}

fn secret_file(path: &Path, flag: &str) -> Result<String, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("{flag} {}: the file is empty", path.display()));
    }
    Ok(secret.to_owned())
}

fn init_logs(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: no new connections; finishing commits in flight");
}
