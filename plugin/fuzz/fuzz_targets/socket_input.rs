//! Everything Kong's side of the socket can put in front of the plugin
//! server: a stream of frames, read as an `RpcCall` and as the replies to
//! the two PDK calls of a log event, which then go through the capturer.
//! None of it may panic.
#![no_main]

use kong_looker_core::capture::capturer::{Capturer, LogSource, PROPERTIES};
use kong_looker_core::config::Config;
use kong_looker_plugin::frame;
use kong_looker_plugin::rpc::Call;
use kong_looker_plugin::source::Snapshot;
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// What the plugin answers besides what the capturer asks.
const PLUGIN_PROPERTIES: [&str; 1] = ["kong.node.id"];

fuzz_target!(|data: &[u8]| {
    let mut frames = Vec::new();
    let mut rest = data;
    while frames.len() < 3 {
        match frame::split(rest) {
            Ok(Some((body, used))) => {
                frames.push(body);
                rest = rest.get(used..).unwrap_or_default();
            }
            _ => break,
        }
    }
    let call = frames.first().copied().unwrap_or(data);
    let _ = Call::decode(call);
    let serialized = frames.get(1).copied().unwrap_or(call);
    let headers = frames.get(2).copied().unwrap_or_default();
    let Ok(mut snapshot) = Snapshot::decode(serialized, headers) else {
        return;
    };
    for p in PROPERTIES.iter().chain(&PLUGIN_PROPERTIES) {
        let _ = snapshot.property(p);
    }
    let _ = snapshot.response_header(":status");
    let Ok(config) = Config::parse(br#"{"collector":"127.0.0.1:9","request_id":true}"#) else {
        return;
    };
    let mut capturer = Capturer::new(config, 7);
    let started = snapshot.started_at_ms().unwrap_or(0);
    let facts = capturer.request_facts(snapshot.header_map(), started);
    capturer.capture(&facts, &mut snapshot, started, |_| {});
});
