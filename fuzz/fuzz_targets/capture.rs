//! A whole request from arbitrary bytes, through the capturer and into the
//! outbox: the header map, then each of Kong's properties in turn,
//! separated by 0xff. Whatever comes in, a record or nothing, never a
//! panic.
#![no_main]

use std::borrow::Cow;

use kong_looker_core::capture::capturer::{Capturer, LogSource};
use kong_looker_core::config::Config;
use kong_looker_core::outbox::{Limits, Outbox};
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
}

fuzz_target!(|data: &[u8]| {
    let parts: Vec<&[u8]> = data.split(|&b| b == 0xff).collect();
    let config = Config::parse(
        br#"{"collector":"127.0.0.1:9400","privacy":{"client_address":"hash","pseudonymize":true,"hash_key":"0123456789abcdef"},"identity":{"trusted_headers":["x-forwarded-user"]}}"#,
    )
    .unwrap();
    let mut capturer = Capturer::new(config, 1);
    let facts = capturer.request_facts(parts[0].to_vec(), 1_767_614_400_000);
    let mut outbox = Outbox::new(
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
    );
    capturer.capture(&facts, &Source(parts), 1_767_614_400_500, |r| {
        outbox.push(r, 1_767_614_400_500)
    });
    outbox.tick(1_767_614_402_000);
    assert!(outbox.buffered_bytes() <= 65536 + 4096);
});
