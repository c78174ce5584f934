//! Everything Kong's side of the socket can put in front of the plugin
//! server: a stream of frames, read as an `RpcCall` and as the replies to
//! the two PDK calls of a log event, which then go through the capturer.
//! None of it may panic. The header reply is also read by prost: where
//! both read it and no name repeats, they must agree.
#![no_main]

use kong_looker_core::capture::capturer::{Capturer, LogSource, PROPERTIES};
use kong_looker_core::config::Config;
use kong_looker_plugin::frame;
use kong_looker_plugin::rpc::Call;
use kong_looker_plugin::source::Snapshot;
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// A `Struct`'s map entries as they are on the wire.
#[derive(Clone, PartialEq, prost::Message)]
struct Entries {
    #[prost(bytes = "vec", repeated, tag = "1")]
    fields: Vec<Vec<u8>>,
}

fn agrees_with_prost(snapshot: &Snapshot<'_>, reply: &[u8]) {
    use prost_types::value::Kind;
    let Ok(map) = prost_types::Struct::decode(reply) else {
        return;
    };
    let ours: Vec<(&[u8], &[u8])> = snapshot.headers().collect();
    let entries = Entries::decode(reply).map_or(0, |e| e.fields.len());
    if entries != map.fields.len() || ours.len() >= 1000 {
        // A repeated name (prost keeps the last) or the header cap.
        return;
    }
    let scalar = |v: &prost_types::Value| match &v.kind {
        Some(Kind::StringValue(s)) => Some(s.clone().into_bytes()),
        Some(Kind::NumberValue(n)) => Some(n.to_string().into_bytes()),
        Some(Kind::BoolValue(b)) => Some(b.to_string().into_bytes()),
        _ => None,
    };
    let mut theirs = Vec::new();
    for (name, value) in &map.fields {
        let values: Vec<Vec<u8>> = match &value.kind {
            Some(Kind::ListValue(l)) => l.values.iter().filter_map(scalar).collect(),
            _ => scalar(value).into_iter().collect(),
        };
        theirs.extend(values.into_iter().map(|v| (name.as_bytes().to_vec(), v)));
    }
    let mut ours: Vec<(Vec<u8>, Vec<u8>)> =
        ours.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
    ours.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(ours, theirs);
}

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
    let Ok(snapshot) = Snapshot::decode(serialized, headers) else {
        return;
    };
    agrees_with_prost(&snapshot, headers);
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
    capturer.capture(&facts, &snapshot, started, |_| {});
});
