//! The root context of one filter entry: parses its config (or stays inert
//! and says why), hands HTTP contexts their chain, and on each tick lets
//! the elected flusher cut batches, send them and read the answers.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use super::http::Http;
use super::metrics::Metrics;

use super::{log, now_ms, stage, worker};
use kong_looker_core::capture::capturer::Capturer;
use kong_looker_core::config::Config;
use kong_looker_core::destination::Destination;
use kong_looker_core::log_limit::{Kind, held_note};
use kong_looker_core::outbox::{Reply, ReplyCode, Stats};

/// The longest tick period: one call per tick makes it the throughput cap.
const MAX_TICK_MS: i64 = 100;

/// A configured chain: what its HTTP contexts share.
pub struct Chain {
    /// Capture state.
    pub capturer: RefCell<Capturer>,
    /// The worker lane its records go to.
    pub lane: usize,
}

/// One root context.
pub struct Root {
    id: u32,
    chain: Option<Rc<Chain>>,
    tick_ms: i64,
    ticking: bool,
}

impl Root {
    /// A root that captures nothing until configured.
    pub fn new(id: u32) -> Self {
        Root {
            id,
            chain: None,
            tick_ms: 0,
            ticking: false,
        }
    }

    /// Cuts and expires every lane's batches, then sends at most one: the
    /// next due batch, taking the lanes in turn, and only when no call of
    /// any lane is out. ngx_wasm_module frees a root context's call only
    /// when no other call of that root is pending, so a second call in
    /// flight leaks a connection slot (and clients then get 500s): one call
    /// at a time per worker is the rule, whatever the lanes; the tick
    /// period and the batch size set the throughput instead.
    fn flush(&self, now: i64) {
        worker::with(|w| {
            for lane in &mut w.lanes {
                lane.outbox.tick(now);
            }
            // Tokens whose call the outbox gave up on (past its deadline:
            // Kong 3.8 never calls back on a failure) are forgotten.
            let lanes_ref = &w.lanes;
            w.calls.retain(|token, lane| {
                lanes_ref
                    .get(*lane)
                    .is_some_and(|l| l.outbox.is_in_flight(*token))
            });
            let busy = w.lanes.iter().any(|l| l.outbox.has_call_in_flight());
            let lanes = if busy { 0 } else { w.lanes.len() };
            for step in 0..lanes {
                let index = w
                    .next_lane
                    .saturating_add(step)
                    .checked_rem(lanes)
                    .unwrap_or(0);
                let Some(lane) = w.lanes.get_mut(index) else {
                    continue;
                };
                let Some((sequence, body)) = lane.outbox.next_send(now) else {
                    continue;
                };
                // Signed ahead, a slice per request (the outbox).
                let signature = lane.outbox.authorization(sequence, now).map(str::to_owned);
                let headers = lane.destination.call_headers(signature);
                let timeout = Duration::from_millis(
                    u64::try_from(lane.outbox.limits().timeout_ms).unwrap_or(5_000),
                );
                match hostcalls::dispatch_http_call(
                    &lane.destination.upstream,
                    headers.iter().map(|(k, v)| (*k, v.as_str())).collect(),
                    Some(body),
                    Vec::new(),
                    timeout,
                ) {
                    Ok(token) => {
                        lane.outbox.sent(sequence, token, now);
                        w.calls.insert(token, index);
                    }
                    Err(status) => {
                        lane.outbox.send_refused(sequence, now);
                        if let Some(held) = w.log_limit.admit(Kind::DispatchRefused, now) {
                            log(
                                LogLevel::Error,
                                &format!(
                                    "the host refused a call to {} ({status:?}); batches are \
                                     kept and retried{}",
                                    lane.destination.upstream,
                                    held_note(held)
                                ),
                            );
                        }
                    }
                }
                w.next_lane = index.saturating_add(1);
                break;
            }
            if !w.metrics_off {
                if w.metrics.is_none() {
                    w.metrics = Metrics::define();
                }
                let mut total = Stats::default();
                let mut bytes = 0usize;
                for lane in &w.lanes {
                    total.add(lane.outbox.stats());
                    bytes = bytes.saturating_add(lane.outbox.buffered_bytes());
                }
                let overflowed = self
                    .chain
                    .as_ref()
                    .and_then(|c| c.capturer.try_borrow().ok().map(|c| c.paths_overflowed()))
                    .unwrap_or(0);
                if let Some(m) = &mut w.metrics {
                    m.report(&total, bytes, overflowed);
                }
            }
        });
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _: usize) {
        let now = now_ms();
        let header = |name: &str| {
            hostcalls::get_map_value_bytes(
                proxy_wasm::types::MapType::HttpCallResponseHeaders,
                name,
            )
            .ok()
            .flatten()
            .and_then(|v| String::from_utf8(v).ok())
        };
        let status = header(":status");
        let body = || {
            hostcalls::get_buffer(
                proxy_wasm::types::BufferType::HttpCallResponseBody,
                0,
                body_size,
            )
            .ok()
            .flatten()
        };
        let reply = Reply::read(
            status.as_deref(),
            header("retry-after").as_deref(),
            body_size,
            body,
        );
        // Never dispatch from here: a call made in a root context's call
        // response kills the nginx worker (SIGSEGV). The next tick sends.
        worker::with(|w| {
            let Some(lane) = w.calls.remove(&token) else {
                return;
            };
            let Some(lane) = w.lanes.get_mut(lane) else {
                return;
            };
            lane.outbox.answered(token, reply, now);
            if let Some((kind, line)) = complaint(reply, &lane.destination)
                && let Some(held) = w.log_limit.admit(kind, now)
            {
                log(LogLevel::Error, &format!("{line}{}", held_note(held)));
            }
        });
    }
}

/// The error-log line a reply deserves, if any.
fn complaint(reply: Reply, d: &Destination) -> Option<(Kind, String)> {
    match reply {
        Reply::Status { status, .. } if (200..300).contains(&status) => None,
        Reply::Status { status: 401, .. } => Some((
            Kind::Unauthorized,
            format!(
                "the collector at {} refused this chain's signature (401): its signing_key \
                 must be the collector's --hmac-key-file; batches are retried for \
                 batch.max_retry_age_ms, then dropped",
                d.upstream
            ),
        )),
        Reply::Status {
            code: ReplyCode::UnknownDictionary,
            ..
        } => None,
        Reply::Status {
            code: ReplyCode::UnsupportedRevision,
            ..
        } => Some((
            Kind::Refused,
            format!(
                "the collector at {} predates this filter's schema revision: client                  addresses now travel as dictionary strings, which costs wire bytes at                  high cardinality; upgrade the collector",
                d.upstream
            ),
        )),
        Reply::Status { status, .. } => Some((
            Kind::Refused,
            format!(
                "the collector at {} answered {status}; the batch is retried or counted as dropped",
                d.upstream
            ),
        )),
        Reply::Failed => Some((
            Kind::CallFailed,
            format!(
                "no answer from the collector at {}; batches are kept and retried with backoff",
                d.upstream
            ),
        )),
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        let bytes =
            hostcalls::get_buffer(proxy_wasm::types::BufferType::PluginConfiguration, 0, size)
                .ok()
                .flatten()
                .unwrap_or_default();
        let config = match Config::parse(&bytes) {
            Ok(config) => config,
            Err(e) => {
                // Refusing (returning false) would make Kong fail every
                // request on this chain; stay inert instead and say why.
                log(
                    LogLevel::Error,
                    &format!("config refused, this chain captures nothing: {e}"),
                );
                self.chain = None;
                return true;
            }
        };
        if config.signing_key.is_empty() {
            log(
                LogLevel::Warn,
                "no signing_key: only a collector started with --allow-unauthenticated \
                 accepts this chain's batches",
            );
        }
        if !config.collector.starts_with("unix:")
            && config.collector.parse::<std::net::SocketAddr>().is_err()
        {
            log(
                LogLevel::Warn,
                "collector is a host name: ngx_wasm_module resolves it with the wasm{} \
                 resolver (8.8.8.8 unless nginx_wasm_resolver is set), and a connect that \
                 fails after resolving never ends; give an IP address",
            );
        }
        let metrics_on = config.metrics;
        let flush = i64::from(config.batch.flush_interval_ms);
        let Some((lane, seed)) = worker::with(|w| {
            if !metrics_on {
                w.metrics_off = true;
                w.metrics = None;
            }
            (w.lane_for(&config), w.next_seed())
        }) else {
            return true;
        };
        self.chain = Some(Rc::new(Chain {
            capturer: RefCell::new(Capturer::new(config, seed)),
            lane,
        }));
        // Tick often enough to honour the flush interval and to notice
        // calls past their deadline; a root may set its period only once.
        // One call leaves per tick, so the period also caps the batches
        // per second: 10 batches of up to batch.max_records each.
        self.tick_ms = (flush / 2).clamp(10, MAX_TICK_MS);
        if !self.ticking {
            let period = Duration::from_millis(u64::try_from(self.tick_ms).unwrap_or(500));
            self.ticking = hostcalls::set_tick_period(period).is_ok();
        }
        true
    }

    fn on_tick(&mut self) {
        // Records wait at most a tick, whichever root ticks.
        stage::assemble();
        let now = now_ms();
        let flusher = worker::with(|w| w.elect(self.id, now, self.tick_ms)).unwrap_or(false);
        if flusher {
            self.flush(now);
        }
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        // The SDK traps on None, so an inert chain gets an inert context.
        Some(Box::new(Http::new(self.chain.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
