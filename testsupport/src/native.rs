//! The reference mix as a native host lends it to the capture core: each
//! request's header map in the host's layout and Kong's properties, behind
//! the core's `LogSource`, borrowed as the plugin server lends its
//! snapshot. For the capture bench and the allocation test.

use std::borrow::Cow;

use kong_looker_core::capture::capturer::{
    Capturer, LogSource, PROPERTIES, RecordSink, RequestFacts,
};
use kong_looker_core::capture::headers;
use kong_looker_core::config::Config;
use kong_looker_core::outbox::{Limits, Outbox, Reply, ReplyCode};
use kong_looker_proto::builder::Producer;
use kong_looker_proto::mix::{Mix, MixParams};
use kong_looker_testkit::Profile;

use crate::traffic;

/// Kong's side of one request.
pub struct NativeRequest {
    /// The chain (config) it goes through, an index into [`capturers`].
    pub chain: usize,
    /// Its request headers, serialized as the host serializes them.
    pub header_map: Vec<u8>,
    /// Answers in [`PROPERTIES`] order, in an array rather than a map, so
    /// that the stand-in host costs little next to capture itself.
    properties: [Option<Vec<u8>>; PROPERTIES.len()],
    status: String,
}

impl LogSource for NativeRequest {
    fn property(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        let i = PROPERTIES.iter().position(|p| *p == name)?;
        self.properties.get(i)?.as_deref().map(Cow::Borrowed)
    }

    fn response_header(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        (name == ":status").then_some(Cow::Borrowed(self.status.as_bytes()))
    }
}

/// The 1,000 reference-mix requests (Kong request ids on) that the capture
/// bench and its instruction count run in turn.
pub fn bench_requests() -> Vec<NativeRequest> {
    requests(
        MixParams {
            request_ids: true,
            ..MixParams::default()
        },
        1000,
    )
}

/// `n` requests of the mix made with `params`, as Kong 3.9 presents them.
pub fn requests(params: MixParams, n: usize) -> Vec<NativeRequest> {
    let mut mix = Mix::new(params);
    mix.take_requests(n)
        .iter()
        .map(|r| {
            let (req, _) = traffic::kong_request(&mix, r, Profile::Kong39);
            NativeRequest {
                chain: req.chain,
                header_map: headers::serialize(
                    req.headers
                        .iter()
                        .map(|(n, v)| (n.as_bytes(), v.as_bytes())),
                ),
                properties: PROPERTIES.map(|p| req.properties.get(p).cloned()),
                status: req.response.status.to_string(),
            }
        })
        .collect()
}

/// One capturer per chain of [`traffic::chains`].
pub fn capturers() -> Vec<Capturer> {
    traffic::chains("127.0.0.1:9400", "")
        .iter()
        .enumerate()
        .map(|(i, c)| Capturer::new(Config::parse(c.as_bytes()).unwrap(), i as u64))
        .collect()
}

/// Captures every request, the host's header map copied into one reused
/// buffer (as the plugin server does), each record handed to `push`;
/// returns how many were captured (not left out by sampling).
pub fn capture_all(
    capturers: &mut [Capturer],
    requests: &[NativeRequest],
    map: &mut Vec<u8>,
    now_ms: i64,
    mut push: impl FnMut(&kong_looker_proto::Record<'_>),
) -> usize {
    each_request(capturers, requests, map, now_ms, |capturer, facts, k| {
        capturer.capture(facts, k, now_ms, &mut push)
    })
}

/// [`capture_all`] into `outbox` as the filter's lanes take records: a
/// caller the outbox's builder knows goes by key alone.
pub fn capture_all_into(
    capturers: &mut [Capturer],
    requests: &[NativeRequest],
    map: &mut Vec<u8>,
    now_ms: i64,
    outbox: &mut Outbox,
) -> usize {
    let mut sink = OutboxSink { outbox, now_ms };
    each_request(capturers, requests, map, now_ms, |capturer, facts, k| {
        capturer.capture_into(facts, k, now_ms, &mut sink)
    })
}

/// Runs `capture` on each request with its facts picked into the reused
/// `map`; how many it kept.
fn each_request(
    capturers: &mut [Capturer],
    requests: &[NativeRequest],
    map: &mut Vec<u8>,
    now_ms: i64,
    mut capture: impl FnMut(&mut Capturer, &RequestFacts, &NativeRequest) -> bool,
) -> usize {
    let mut captured = 0;
    for k in requests {
        let capturer = &mut capturers[k.chain];
        let mut buf = std::mem::take(map);
        buf.clear();
        buf.extend_from_slice(&k.header_map);
        let facts = capturer.request_facts(buf, now_ms);
        if capture(capturer, &facts, k) {
            captured += 1;
        }
        *map = facts.into_map();
    }
    captured
}

/// An outbox that knows callers by key.
struct OutboxSink<'a> {
    outbox: &'a mut Outbox,
    now_ms: i64,
}

impl RecordSink for OutboxSink<'_> {
    fn knows_identity(&mut self, key: u64) -> bool {
        self.outbox.knows_identity(key)
    }

    fn knows_endpoint(&mut self, key: u64) -> bool {
        self.outbox.knows_endpoint(key)
    }

    fn push(&mut self, record: &kong_looker_proto::Record<'_>) -> bool {
        self.outbox.try_push(record, self.now_ms)
    }
}

/// A worker's outbox with the default batching (1,000 records, 256 KiB,
/// one second) and room for whatever a test holds back.
pub fn outbox() -> Outbox {
    let limits = Limits {
        max_records: 1000,
        max_bytes: 256 * 1024,
        flush_interval_ms: 1000,
        max_in_flight: 4,
        max_retry_age_ms: 300_000,
        max_buffer_bytes: 64 << 20,
        max_dictionary_bytes: 16 << 20,
        timeout_ms: 5000,
        spill: false,
    };
    Outbox::new(&Producer::default(), limits, 7)
}

/// An outbox with the default config's limits (a 4 MiB buffer, batches of
/// up to 5,000 records cut every second).
pub fn default_outbox() -> Outbox {
    let config = Config::parse(br#"{"collector":"collector:8080"}"#)
        .unwrap_or_else(|e| panic!("the default config: {e}"));
    Outbox::new(&Producer::default(), Limits::of(&config), 7)
}

/// Cuts what the outbox holds at `now_ms` and delivers it to a collector
/// that acknowledges at once; returns the bytes sent.
pub fn deliver_all(outbox: &mut Outbox, now_ms: i64) -> usize {
    outbox.tick(now_ms);
    let mut bytes = 0;
    while let Some((seq, body)) = outbox.next_send(now_ms) {
        bytes += body.len();
        outbox.sent(seq, seq as u32, now_ms);
        outbox.answered(
            seq as u32,
            Reply::Status {
                status: 204,
                retry_after_s: None,
                code: ReplyCode::Other,
            },
            now_ms,
        );
    }
    bytes
}
