//! The HTTP API: `POST /v1/batches` (filter batches), `POST
//! /v1/kong/http-log` (Kong's http-log plugin), and `/healthz`, `/readyz`,
//! `/metrics`. Handlers check everything that needs no store (size,
//! credentials, the batch's shape), then wait for the committer's verdict:
//! nothing is acknowledged before it is committed.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kong_looker_proto::{BatchReader, DecodeError, Limits, signing, wire};
use subtle::ConstantTimeEq;

use crate::http_log::Mapper;
use crate::metrics::Metrics;
use crate::pipeline::{Pipeline, Verdict, Work};
use crate::store::{Prober, now_ms};

/// Who may use an endpoint. Each endpoint is turned on by its own
/// credential, so an install that runs only the filter (or only http-log)
/// needs only that one.
#[derive(Clone, PartialEq, Eq)]
pub enum Gate<T> {
    /// No credential was given: the endpoint answers 403 and says how to
    /// turn it on.
    Off,
    /// Anyone may post (`--allow-unauthenticated`, for trials).
    Open,
    /// Callers that prove the credential.
    Key(T),
}

impl<T> Gate<T> {
    /// A gate from a credential, or `Open`/`Off` without one.
    pub fn from(credential: Option<T>, allow_unauthenticated: bool) -> Self {
        match credential {
            Some(key) => Gate::Key(key),
            None if allow_unauthenticated => Gate::Open,
            None => Gate::Off,
        }
    }

    /// How the endpoint is reached, for logs and Debug (never the key).
    pub fn describe(&self) -> &'static str {
        match self {
            Gate::Off => "off",
            Gate::Open => "open to anyone",
            Gate::Key(_) => "on",
        }
    }
}

impl<T> std::fmt::Debug for Gate<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

/// What the handlers share. Its Debug leaves the key and the token out.
pub struct Api {
    /// The committer's queue.
    pub pipeline: Pipeline,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Health checks.
    pub prober: Prober,
    /// The key filters sign batches with.
    pub hmac_key: Gate<Vec<u8>>,
    /// The bearer token http-log sends.
    pub http_log_token: Gate<String>,
    /// Batch limits; `now_ms` is set per request.
    pub limits: Limits,
    /// Largest body, either endpoint.
    pub max_body_bytes: usize,
    /// How far a signature's time may be from ours.
    pub max_skew_s: i64,
    /// How long a handler waits for its commit before answering 503.
    pub commit_timeout: Duration,
    /// Http-log mapping.
    pub mapper: Mapper,
    /// Bytes of request bodies held at once (read, queued or committing),
    /// so memory stays bounded however many clients connect.
    pub body_budget: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("batches", &self.hmac_key)
            .field("http_log", &self.http_log_token)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

/// The router.
pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route(wire::BATCHES_PATH, post(post_batch))
        .route(wire::HTTP_LOG_PATH, post(post_http_log))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(api)
}

/// A refusal: status, a short code, and what is wrong.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after_s: Option<u32>,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            status,
            code,
            message: message.into(),
            retry_after_s: None,
        }
    }

    fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "message": self.message });
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}

async fn post_batch(State(api): State<Arc<Api>>, headers: HeaderMap, body: Body) -> Response {
    api.metrics.batches_received.inc();
    match accept_batch(&api, &headers, body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(refusal) => {
            api.metrics.reject(refusal.code);
            refusal.into_response()
        }
    }
}

async fn accept_batch(api: &Api, headers: &HeaderMap, body: Body) -> Result<(), Refusal> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with(wire::BATCH_CONTENT_TYPE) {
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type {content_type:?}; batches are application/x-protobuf"),
        ));
    }
    if api.hmac_key == Gate::Off {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "endpoint_off",
            "POST /v1/batches is off: start the collector with --hmac-key-file (or \
             KONG_LOOKER_HMAC_KEY_FILE) holding the filters' signing_key",
        ));
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if matches!(api.hmac_key, Gate::Key(_)) && authorization.is_none() {
        return Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "missing_signature",
            "no Authorization header; set signing_key in the filter config",
        ));
    }
    let _room = admit(api, headers)?;
    let bytes = read_body(api, headers, body).await?;
    let now = now_ms();
    if let Gate::Key(key) = &api.hmac_key {
        signing::verify(key, authorization, &bytes, now / 1000, api.max_skew_s)
            .map_err(|e| Refusal::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string()))?;
    }
    let limits = Limits {
        now_ms: Some(now),
        ..api.limits.clone()
    };
    let batch = BatchReader::new(limits)
        .decode(&bytes)
        .map_err(|e| decode_refusal(&e))?;
    api.metrics.records_received.inc_by(batch.len() as u64);
    match commit(api, Work::Batch(Box::new(batch))).await? {
        Verdict::Stored | Verdict::Duplicate => Ok(()),
        Verdict::Refused(e) => Err(decode_refusal(&e)),
        other => Err(unavailable(format!("{other:?}"))),
    }
}

async fn post_http_log(State(api): State<Arc<Api>>, headers: HeaderMap, body: Body) -> Response {
    match accept_http_log(&api, &headers, body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(refusal) => {
            api.metrics.reject(refusal.code);
            refusal.into_response()
        }
    }
}

async fn accept_http_log(api: &Api, headers: &HeaderMap, body: Body) -> Result<(), Refusal> {
    if api.http_log_token == Gate::Off {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "endpoint_off",
            "POST /v1/kong/http-log is off: start the collector with --http-log-token-file \
             (or KONG_LOOKER_HTTP_LOG_TOKEN_FILE) holding the token http-log sends",
        ));
    }
    if let Gate::Key(token) = &api.http_log_token {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(sent.trim().as_bytes().ct_eq(token.as_bytes())) {
            return Err(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "bad_token",
                "missing or wrong bearer token; set it in http-log's headers option",
            ));
        }
    }
    let _room = admit(api, headers)?;
    let bytes = read_body(api, headers, body).await?;
    let rows = api
        .mapper
        .map(&bytes)
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, e.code(), e.to_string()))?;
    api.metrics.http_log_entries.inc_by(rows.len() as u64);
    match commit(api, Work::Log(rows)).await? {
        Verdict::Logged { .. } => Ok(()),
        other => Err(unavailable(format!("{other:?}"))),
    }
}

/// Reserves room for a body before reading it: its declared length, or
/// the body limit when it declares none. No room: 429.
fn admit<'a>(
    api: &'a Api,
    headers: &HeaderMap,
) -> Result<tokio::sync::SemaphorePermit<'a>, Refusal> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(api.max_body_bytes)
        .clamp(1, api.max_body_bytes.max(1));
    let units = u32::try_from(declared.div_ceil(BUDGET_UNIT)).unwrap_or(u32::MAX);
    api.body_budget.try_acquire_many(units).map_err(|_| {
        Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            "too many request bytes in flight",
        )
        .retry_after(1)
    })
}

/// The body budget counts in KiB, so that it fits a semaphore's permits.
pub const BUDGET_UNIT: usize = 1024;

/// The body, refused with 413 past the limit (early when Content-Length
/// says so, otherwise as soon as the stream passes it).
async fn read_body(api: &Api, headers: &HeaderMap, body: Body) -> Result<Bytes, Refusal> {
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("body over {} bytes", api.max_body_bytes),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > api.max_body_bytes as u64) {
        discard(body).await;
        return Err(too_large());
    }
    axum::body::to_bytes(body, api.max_body_bytes)
        .await
        .map_err(|e| {
            // The limit error sits somewhere in axum's error chain.
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(err) = source {
                if err.is::<http_body_util::LengthLimitError>() {
                    return too_large();
                }
                source = err.source();
            }
            Refusal::new(StatusCode::BAD_REQUEST, "body_read", e.to_string())
        })
}

/// Reads and drops a refused body (up to a bound), so that a client still
/// sending it reads our 413 instead of a broken pipe.
async fn discard(body: Body) {
    use http_body_util::BodyExt;
    const MAX_DISCARD: usize = 64 * 1024 * 1024;
    let drain = async {
        let mut body = body;
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            seen = seen.saturating_add(frame.data_ref().map_or(0, |d| d.len()));
            if seen > MAX_DISCARD {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
}

/// Queues work and waits for its verdict.
async fn commit(api: &Api, work: Work) -> Result<Verdict, Refusal> {
    let rx = api.pipeline.submit(work).map_err(|_| {
        Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            "queue_full",
            "the commit queue is full",
        )
        .retry_after(1)
    })?;
    match tokio::time::timeout(api.commit_timeout, rx).await {
        Ok(Ok(Verdict::Unavailable(e))) => Err(unavailable(e)),
        Ok(Ok(v)) => Ok(v),
        Ok(Err(_)) => Err(unavailable("the committer stopped")),
        Err(_) => Err(unavailable("the commit took too long")),
    }
}

fn unavailable(message: impl Into<String>) -> Refusal {
    Refusal::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        message,
    )
    .retry_after(2)
}

/// 409 for a dictionary the collector lacks (the filter then defines
/// everything again), 400 for anything else.
fn decode_refusal(e: &DecodeError) -> Refusal {
    let status = match e {
        DecodeError::UnknownDefinitions { .. } => StatusCode::CONFLICT,
        DecodeError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    Refusal::new(status, e.code(), e.to_string())
}

async fn readyz(State(api): State<Arc<Api>>) -> Response {
    match tokio::time::timeout(Duration::from_secs(3), api.prober.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}\n")).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store: no answer in 3 s\n").into_response(),
    }
}

async fn metrics(State(api): State<Arc<Api>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        api.metrics.render(),
    )
        .into_response()
}
