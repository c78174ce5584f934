//! Start-up and shutdown: open and migrate the store, start the committer,
//! serve the API, and on a signal stop accepting, let in-flight requests
//! get their verdicts, drain the queue, and return.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kong_looker_core::capture::privacy::AddressMode;
use kong_looker_proto::Limits;

use crate::api::{self, Api, Gate};
use crate::http_log::Mapper;
use crate::listen::{self, Listen};
use crate::metrics::Metrics;
use crate::pipeline::{self, CommitterConfig};
use crate::store::{Store, StoreUrl};

/// Everything `serve` needs, from flags or the environment. Its Debug
/// leaves the keys and the token out.
#[derive(Clone)]
pub struct Settings {
    /// Where to listen: one or more TCP addresses and unix sockets.
    pub listen: Vec<Listen>,
    /// The store.
    pub store: StoreUrl,
    /// Who may post batches.
    pub hmac_key: Gate<Vec<u8>>,
    /// Who may post http-log entries.
    pub http_log_token: Gate<String>,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Allowed clock difference for signatures, seconds.
    pub max_skew_s: i64,
    /// How old a batch's records may be.
    pub max_age: Duration,
    /// Committer settings.
    pub committer: CommitterConfig,
    /// How long a request waits for its commit.
    pub commit_timeout: Duration,
    /// Bytes of request bodies held at once before new ones get 429.
    pub max_inflight_bytes: usize,
    /// Client addresses of http-log rows.
    pub client_address: AddressMode,
    /// Key for hashed client addresses.
    pub hash_key: Option<Vec<u8>>,
    /// TLS certificate and key (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Trigger a Looker datagroup after commits.
    pub looker: Option<crate::looker::LookerSettings>,
}

/// The API over a migrated store, with its committer running.
#[derive(Debug)]
pub struct App {
    /// The routes; every clone holds the committer's queue open.
    pub router: axum::Router,
    committer: tokio::task::JoinHandle<()>,
}

impl App {
    /// Opens and migrates the store and starts the committer.
    pub async fn start(settings: &Settings) -> Result<App, String> {
        let mut store = Store::open(&settings.store)
            .await
            .map_err(|e| format!("{}: {e}", settings.store))?;
        let applied = store
            .migrate()
            .await
            .map_err(|e| format!("{}: {e}", settings.store))?;
        for m in &applied {
            tracing::info!(migration = m.name, "applied");
        }
        let metrics = Arc::new(Metrics::default());
        metrics.store_up.set(1);
        let prober = store.prober();
        let limits = Limits {
            max_batch_bytes: settings.max_body_bytes,
            max_age_ms: i64::try_from(settings.max_age.as_millis()).unwrap_or(i64::MAX),
            ..settings.committer.limits.clone()
        };
        let trigger = match &settings.looker {
            Some(l) => Some(
                crate::looker::Trigger::start(l.clone(), metrics.clone())
                    .map_err(|e| format!("Looker trigger: {e}"))?,
            ),
            None => None,
        };
        let committer_config = CommitterConfig {
            limits: limits.clone(),
            trigger,
            ..settings.committer.clone()
        };
        let (pipeline, committer) = pipeline::channel(store, committer_config, metrics.clone());
        let committer = tokio::spawn(committer.run());
        let api = Arc::new(Api {
            pipeline,
            metrics,
            prober,
            hmac_key: settings.hmac_key.clone(),
            http_log_token: settings.http_log_token.clone(),
            limits,
            max_body_bytes: settings.max_body_bytes,
            max_skew_s: settings.max_skew_s,
            commit_timeout: settings.commit_timeout,
            mapper: Mapper::new(settings.client_address, settings.hash_key.as_deref()),
            body_budget: tokio::sync::Semaphore::new(
                (settings.max_inflight_bytes / api::BUDGET_UNIT)
                    .max(settings.max_body_bytes.div_ceil(api::BUDGET_UNIT))
                    .min(tokio::sync::Semaphore::MAX_PERMITS),
            ),
        });
        Ok(App {
            router: api::router(api),
            committer,
        })
    }

    /// Once every router clone is gone, waits for the committer to finish
    /// what it holds.
    pub async fn drain(self) -> Result<(), String> {
        drop(self.router);
        self.committer.await.map_err(|e| format!("committer: {e}"))
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("store", &self.store)
            .field("batches", &self.hmac_key)
            .field("http_log", &self.http_log_token)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("committer", &self.committer)
            .field("looker", &self.looker)
            .finish_non_exhaustive()
    }
}

/// Serves until `shutdown` completes, then drains and returns.
pub async fn serve(
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    // A bad certificate stops start-up before anything listens.
    let tls = match &settings.tls {
        Some((cert, key)) => Some(crate::tls::server_config(cert, key)?),
        None => None,
    };
    if settings.listen.is_empty() {
        return Err("nowhere to listen: give --listen".into());
    }
    // Bound before the store opens: a taken address fails fast.
    let mut bound = Vec::with_capacity(settings.listen.len());
    for l in &settings.listen {
        bound.push(listen::bind(l).await?);
    }
    let app = match App::start(&settings).await {
        Ok(app) => app,
        Err(e) => {
            listen::release(bound);
            return Err(e);
        }
    };
    let router = app.router.clone();
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    // One plain line per listener on stdout, for scripts and tests
    // waiting for start-up.
    let mut out = std::io::stdout();
    for b in &bound {
        let address = b.address();
        tracing::info!(
            %address,
            store = %settings.store,
            batches = settings.hmac_key.describe(),
            http_log = settings.http_log_token.describe(),
            "listening"
        );
        let _ = writeln!(
            out,
            "kong-looker-collector listening on {scheme}://{address}"
        );
    }
    let _ = out.flush();
    listen::serve_all(bound, router, tls, shutdown).await?;
    // The server's router, and with it its queue handles, is gone: the
    // committer finishes what it holds and stops.
    tracing::info!("draining the commit queue");
    app.drain().await?;
    tracing::info!("stopped");
    Ok(())
}
