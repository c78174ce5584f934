//! A whole request from arbitrary bytes, through the capturer and into the
//! outbox: the header map, then each of Kong's properties in turn,
//! separated by 0xff. Read as a native host does (the header map given)
//! and as the Wasm filter does (the request's fields from
//! `$kong_looker_log` where it has them, the header map otherwise), twice,
//! so that the second record gives its caller by key alone as the filter's
//! do. Whatever comes in, a record or nothing, never a panic.
#![no_main]

use std::borrow::Cow;

use kong_looker_core::capture::capturer::{Capturer, LogSource, Reads, RecordSink};
use kong_looker_core::config::Config;
use kong_looker_core::outbox::{Limits, Outbox};
use kong_looker_proto::Record;
use kong_looker_proto::builder::Producer;
use libfuzzer_sys::fuzz_target;

const PROPERTIES: [&str; 18] = [
    "response.code",
    "ngx.request_time",
    "ngx.upstream_status",
    "ngx.upstream_response_time",
    "request.size",
    "response.size",
    "kong.route_id",
    "kong.route_name",
    "kong.router.route",
    "kong.service_id",
    "kong.router.service",
    "ngx.remote_addr",
    "ngx.ssl_client_s_dn",
    "ngx.ssl_client_fingerprint",
    "connection.mtls",
    "kong.ctx.shared.authenticated_jwt_token",
    "ngx.kong_request_id",
    // Last, so that earlier inputs keep their meaning.
    "ngx.kong_looker_log",
];

struct Source<'a>(Vec<&'a [u8]>);

impl LogSource for Source<'_> {
    fn property(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        let i = PROPERTIES.iter().position(|p| *p == name)?;
        self.0.get(i + 1).map(|v| Cow::Borrowed(*v))
    }
    fn response_header(&self, _name: &str) -> Option<Cow<'_, [u8]>> {
        self.0.last().map(|v| Cow::Borrowed(*v))
    }
    fn request_header(&self, _name: &str) -> Option<Cow<'_, [u8]>> {
        self.0.last().map(|v| Cow::Borrowed(*v))
    }
}

fn outbox() -> Outbox {
    Outbox::new(
        &Producer::default(),
        Limits {
            max_records: 10,
            max_bytes: 4096,
            flush_interval_ms: 1000,
            max_in_flight: 1,
            max_retry_age_ms: 1000,
            max_buffer_bytes: 65536,
            max_dictionary_bytes: 65536,
            timeout_ms: 100,
            spill: false,
        },
        1,
    )
}

fuzz_target!(|data: &[u8]| {
    let parts: Vec<&[u8]> = data.split(|&b| b == 0xff).collect();
    let config = Config::parse(
        br#"{"collector":"127.0.0.1:9400","privacy":{"client_address":"hash","pseudonymize":true,"hash_key":"0123456789abcdef"},"identity":{"trusted_headers":["x-forwarded-user"]}}"#,
    )
    .unwrap();
    let mut capturer = Capturer::new(config, 1);
    let facts = capturer.request_facts(parts[0].to_vec(), 1_767_614_400_000);
    let mut out = outbox();
    let source = Source(parts);
    capturer.capture(&facts, &source, 1_767_614_400_500, |r| {
        out.push(r, 1_767_614_400_500)
    });
    out.tick(1_767_614_402_000);
    assert!(out.buffered_bytes() <= 65536 + 4096);

    // As the filter reads it, with a config whose headers the line carries.
    let config = Config::parse(
        br#"{"collector":"127.0.0.1:9400","privacy":{"client_address":"hash","pseudonymize":true,"hash_key":"0123456789abcdef"}}"#,
    )
    .unwrap();
    let mut capturer = Capturer::new(config, 1);
    let mut out = outbox();
    let mut reads = Reads::empty();
    let map = source.0.first().map(|m| m.to_vec()).unwrap_or_default();
    if capturer.read_request_into(&mut reads, &source, || map, || 1_767_614_400_500) {
        let mut sink = ToOutbox(&mut out);
        capturer.assemble_into(&reads, &mut sink);
        capturer.assemble_into(&reads, &mut sink);
    }
    out.tick(1_767_614_402_000);
    assert!(out.buffered_bytes() <= 65536 + 4096);
});

/// The outbox as the filter's stage hands it records.
struct ToOutbox<'a>(&'a mut Outbox);

impl RecordSink for ToOutbox<'_> {
    fn knows_identity(&mut self, key: u64) -> bool {
        self.0.knows_identity(key)
    }

    fn knows_endpoint(&mut self, key: u64) -> bool {
        self.0.knows_endpoint(key)
    }

    fn push(&mut self, record: &Record<'_>) -> bool {
        self.0.try_push(record, 1_767_614_400_500)
    }
}
