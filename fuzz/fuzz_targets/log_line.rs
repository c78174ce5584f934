//! Any bytes as `$kong_looker_log`: split into nginx's figures or refused
//! by name, read in one pass to the same figures as split, its request
//! fields exactly as many as the format has or none, and, as the line of a
//! request, a record or nothing through the capturer (with the header map
//! read only where the line's fields were not), never a panic.
#![no_main]

use std::borrow::Cow;

use kong_looker_core::capture::capturer::{Capturer, LineUse, LogSource, Reads};
use kong_looker_core::capture::log_line;
use kong_looker_core::config::Config;
use libfuzzer_sys::fuzz_target;

/// nginx with the line only: every single read finds nothing.
struct Line<'a>(&'a [u8]);

impl LogSource for Line<'_> {
    fn property(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        (name == log_line::PROPERTY).then_some(Cow::Borrowed(self.0))
    }
    fn response_header(&self, _name: &str) -> Option<Cow<'_, [u8]>> {
        None
    }
}

fuzz_target!(|data: &[u8]| {
    let parsed = log_line::parse(data);
    if let Ok(l) = &parsed {
        assert!(data.starts_with(b"kl1|") || data.starts_with(b"kl2|"));
        assert!(l.remote_addr.start <= l.remote_addr.end && l.remote_addr.end <= data.len());
        if let Some(at) = l.request_at {
            assert!(data.starts_with(b"kl2|") && data.get(at - 1) == Some(&b'\n'));
            assert!(!data[l.remote_addr.clone()].contains(&b'\n'));
            if let Some(fields) = log_line::request_fields(data, at) {
                let mut end = at;
                for field in fields {
                    assert!(field.start <= field.end && field.end <= data.len());
                    assert!(!data[field.clone()].contains(&b'\n'));
                    end = field.end;
                }
                assert_eq!(end, data.len());
            }
        }
        for figure in [
            l.status,
            l.request_time,
            l.upstream_status,
            l.upstream_response_time,
            l.request_length,
            l.bytes_sent,
        ] {
            assert!(!figure.contains(&b'|'));
        }
    }
    assert_eq!(
        log_line::figures(data),
        parsed
            .as_ref()
            .map(log_line::Figures::of)
            .map_err(Clone::clone)
    );
    let config = Config::parse(br#"{"collector":"127.0.0.1:9400"}"#).unwrap();
    let mut capturer = Capturer::new(config, 1);
    let facts = capturer.request_facts(Vec::new(), 1_767_614_400_000);
    capturer.capture(&facts, &Line(data), 1_767_614_400_500, |r| {
        assert!(r.latency_total_us <= kong_looker_core::capture::timing::MAX_DURATION_US);
    });
    let used = capturer.line_use().clone();
    match &used {
        LineUse::Read | LineUse::FiguresOnly(_) => assert!(parsed.is_ok()),
        LineUse::Refused(e) => assert_eq!(Err(e), parsed.as_ref().map(|_| ())),
        other => panic!("{other:?} after a line was there"),
    }
    // As the Wasm filter reads it: the header map only where the line's
    // request fields were not read.
    let config = Config::parse(br#"{"collector":"127.0.0.1:9400"}"#).unwrap();
    let mut capturer = Capturer::new(config, 1);
    let source = Line(data);
    let mut reads = Reads::empty();
    let mut map_read = false;
    let kept = capturer.read_request_into(
        &mut reads,
        &source,
        || {
            map_read = true;
            Vec::new()
        },
        || 1_767_614_400_500,
    );
    if kept {
        capturer.assemble(&reads, |_| {});
    }
    assert_eq!(*capturer.line_use(), used);
    let fields = parsed
        .as_ref()
        .ok()
        .and_then(|l| log_line::request_fields(data, l.request_at?));
    if kept && used == LineUse::Read {
        assert_eq!(map_read, fields.is_none());
    }
});
