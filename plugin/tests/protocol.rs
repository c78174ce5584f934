//! The plugin server binary driven as Kong drives it (testkit's
//! `plugin_server`, a copy of `pb_rpc.lua`'s steps): the query, instance
//! start, status and close, log events with their PDK calls answered from
//! a snapshot, and what bad input costs: its connection, never the server.

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use kong_looker_proto::{BatchReader, DecodedBatch, Limits};
use kong_looker_testkit::Sink;
use kong_looker_testkit::plugin_server::{
    KongWorker, LogSnapshot, PluginSocket, pb, query, read_frame, write_frame,
};
use kong_looker_testsupport::socket::connect_at_first_sight;
use prost::Message;
use support::{KEY, Plugin, binary, now_ms};

fn config(collector: &str, extra: &str) -> String {
    // What cjson makes of Kong's processed config: every field present,
    // unset ones null, Kong's own keys added.
    format!(
        r#"{{"collector":"{collector}","signing_key":"{KEY}","request_id":true,"collector_host":null,"workspace":"commerce","batch":{{"flush_interval_ms":50,"max_records":null}},"paths":{{"templates":{{}}}},"__seq__":1,"__key__":"plugins:abc","__plugin_id":"abc"{extra}}}"#
    )
}

fn snapshot(id: &str, status: i64) -> LogSnapshot {
    LogSnapshot {
        serialize: serde_json::json!({
            "request": {"id": id, "method": "GET", "uri": "/orders/12?x=1", "url": "http://api.example.com/orders/12?x=1", "size": 120, "headers": {"authorization": "REDACTED"}},
            "response": {"status": status, "size": 300},
            "route": {"id": "r1", "name": "orders"},
            "service": {"id": "s1", "name": "orders-svc"},
            "latencies": {"request": 12, "proxy": 10, "kong": 2},
            "upstream_status": "200",
            "client_ip": "203.0.113.9",
            "started_at": now_ms() - 12,
        }),
        request_headers: vec![
            ("host".into(), "api.example.com".into()),
            ("x-consumer-id".into(), "c-1".into()),
            ("x-consumer-username".into(), "alice".into()),
        ],
        response_status: status as i32,
        req_start_time: 0.0,
        node_id: "node-1".into(),
    }
}

fn decode(body: &[u8]) -> DecodedBatch {
    BatchReader::new(Limits::default()).decode(body).unwrap()
}

fn wait_for_batches(sink: &Sink, records: u32) -> Vec<kong_looker_testkit::Received> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = sink.received();
        let n: u32 = got.iter().map(|b| decode(&b.body).len() as u32).sum();
        if n >= records {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{n} of {records} records arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn dump_prints_what_kong_reads() {
    let dir = tempfile::tempdir().unwrap();
    let info = query(&binary(), dir.path()).unwrap();
    assert_eq!(info["Protocol"], "ProtoBuf:1");
    let plugins = info["Plugins"].as_array().unwrap();
    assert_eq!(plugins.len(), 1);
    let p = &plugins[0];
    assert_eq!(p["Name"], "kong-looker");
    assert_eq!(p["Phases"], serde_json::json!(["log"]));
    assert!(p["Priority"].is_i64());
    assert_eq!(p["Version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(p["Schema"]["name"], "kong-looker");
    let config = &p["Schema"]["fields"][0]["config"];
    assert_eq!(config["type"], "record");
    let fields = config["fields"].as_array().unwrap();
    let collector = fields.iter().find_map(|f| f.get("collector")).unwrap();
    assert_eq!(collector["required"], true);
    let rate = fields.iter().find_map(|f| f.get("sample_rate")).unwrap();
    assert_eq!(rate["type"], "number");
    assert_eq!(rate["between"], serde_json::json!([0, 1]));
}

#[test]
fn commands_round_trip_and_events_ship_signed_batches() {
    let sink = Sink::start().unwrap();
    let plugin = Plugin::start(&[]);
    let mut kong = PluginSocket::new(plugin.socket());
    assert_eq!(kong.plugin_names().unwrap(), ["kong-looker"]);
    let info = kong.plugin_info("kong-looker").unwrap();
    assert_eq!(info.phases, ["log"]);
    let dumped = query(&binary(), plugin.prefix.path()).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&info.schema).unwrap();
    assert_eq!(schema, dumped["Plugins"][0]["Schema"]);

    let id = kong
        .start_instance("kong-looker", &config(&sink.address(), ""))
        .unwrap();
    let status = kong.instance_status(id).unwrap();
    assert_eq!(
        (status.instance_id, status.name.as_str()),
        (id, "kong-looker")
    );

    let first = kong
        .handle_event(id, "log", &snapshot("req-1", 200))
        .unwrap();
    assert_eq!(
        first.pdk_calls,
        [
            "kong.node.get_id",
            "kong.log.serialize",
            "kong.request.get_headers"
        ]
    );
    let next = kong
        .handle_event(id, "log", &snapshot("req-2", 401))
        .unwrap();
    // At most two PDK round trips per event.
    assert_eq!(
        next.pdk_calls,
        ["kong.log.serialize", "kong.request.get_headers"]
    );
    assert_eq!(kong.connects, 1, "calls reuse the pooled connection");

    let batches = wait_for_batches(&sink, 2);
    let b = &batches[0];
    assert_eq!(b.path, "/v1/batches");
    let auth = b.header("authorization").unwrap();
    let ts = now_ms() / 1000;
    assert!(
        kong_looker_proto::signing::verify(KEY.as_bytes(), Some(auth), &b.body, ts, 300).is_ok(),
        "signed with the config's key"
    );
    assert_eq!(decode(&b.body).node_id, "node-1");

    let closed = kong.close_instance(id).unwrap();
    assert_eq!(closed.instance_id, id);
    let err = kong
        .handle_event(id, "log", &snapshot("req-3", 200))
        .unwrap_err();
    assert!(err.contains("no plugin instance"), "{err}");
    // And Kong's reset path starts a new instance and succeeds.
    let mut worker = KongWorker::new(plugin.socket(), "kong-looker");
    let cfg = config(&sink.address(), "");
    worker.log(&cfg, &snapshot("req-4", 404)).unwrap();
}

#[test]
fn the_socket_accepts_as_soon_as_it_is_there() {
    // Kong and these tests wait for the path, then connect once. A path
    // made by bind() before listen() refused some of those connects; this
    // watches for it without pause, to land in that gap if there is one.
    for _ in 0..200 {
        let prefix = tempfile::tempdir().unwrap();
        let socket = prefix.path().join("kong-looker.socket");
        let mut serve = std::process::Command::new(binary());
        serve.arg("-kong-prefix").arg(prefix.path());
        if let Err(e) = connect_at_first_sight(&mut serve, &socket) {
            panic!("connect at first sight of the socket: {e}");
        }
    }
}

#[test]
fn a_bad_config_names_its_field_and_the_server_stays_up() {
    let plugin = Plugin::start(&[]);
    let mut kong = PluginSocket::new(plugin.socket());
    let bad = r#"{"collector":"127.0.0.1:9","batch":{"max_records":0},"__seq__":1}"#;
    let err = kong.start_instance("kong-looker", bad).unwrap_err();
    assert_eq!(err, "closed");
    plugin.wait_for_log("config refused: batch.max_records");
    let err = kong
        .start_instance("kong-looker", r#"{"collector":"127.0.0.1:9","tls":"yes"}"#)
        .unwrap_err();
    assert_eq!(err, "closed");
    plugin.wait_for_log("tls");
    assert!(kong.start_instance("kong-looker", "not json").is_err());
    assert!(kong.start_instance("other", bad).is_err());
    assert_eq!(kong.plugin_names().unwrap(), ["kong-looker"]);
}

fn closes(plugin: &Plugin, bytes: &[u8], said: &str) {
    let mut c = UnixStream::connect(plugin.socket()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(bytes).unwrap();
    // Kong gone too: a frame cut short must end at end of stream.
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let n = c.read_to_end(&mut rest).unwrap_or(0);
    assert_eq!(n, 0, "no answer to bad input");
    plugin.wait_for_log(said);
}

#[test]
fn bad_frames_cost_their_connection_only() {
    let mut plugin = Plugin::start(&[]);
    // Oversized length prefix.
    closes(&plugin, &u32::MAX.to_le_bytes(), "over the limit");
    // Not an RpcCall.
    let mut garbage = 3u32.to_le_bytes().to_vec();
    garbage.extend_from_slice(&[0xff, 0xff, 0xff]);
    closes(&plugin, &garbage, "malformed RpcCall");
    // A well-formed call with a command this protocol does not have.
    let mut unknown = Vec::new();
    prost::encoding::int64::encode(1, &7, &mut unknown);
    prost::encoding::message::encode(40, &pb::CmdGetPluginNames {}, &mut unknown);
    let mut framed = (unknown.len() as u32).to_le_bytes().to_vec();
    framed.extend_from_slice(&unknown);
    closes(&plugin, &framed, "without a known command");
    // A frame cut short.
    closes(&plugin, &[10, 0, 0, 0, 1, 2], "inside a frame");

    // An event for a phase the plugin does not run.
    let sink = Sink::start().unwrap();
    let mut kong = PluginSocket::new(plugin.socket());
    let id = kong
        .start_instance("kong-looker", &config(&sink.address(), ""))
        .unwrap();
    let err = kong
        .handle_event(id, "access", &snapshot("x", 200))
        .unwrap_err();
    assert_eq!(err, "closed");
    plugin.wait_for_log("undefined phase");

    // A PDK reply that is not what was asked: the event is answered, the
    // request counted as a capture error.
    let mut c = UnixStream::connect(plugin.socket()).unwrap();
    let call = pb::RpcCall {
        sequence: 5,
        call: Some(pb::Call::CmdHandleEvent(pb::CmdHandleEvent {
            instance_id: id,
            event_name: "log".into(),
        })),
    };
    write_frame(&mut c, &call.encode_to_vec()).unwrap();
    loop {
        let method = read_frame(&mut c).unwrap();
        if method.is_empty() {
            break;
        }
        let _arg = read_frame(&mut c).unwrap();
        write_frame(&mut c, &[0xff, 0x01, 0x02]).unwrap();
    }
    let ret = pb::RpcReturn::decode(read_frame(&mut c).unwrap().as_slice()).unwrap();
    assert_eq!(ret.sequence, 5);
    plugin.wait_for_log("capture error");

    // Kong closing mid-event.
    let mut c = UnixStream::connect(plugin.socket()).unwrap();
    write_frame(&mut c, &call.encode_to_vec()).unwrap();
    let _method = read_frame(&mut c).unwrap();
    drop(c);
    plugin.wait_for_log("during kong.log.serialize");

    assert!(plugin.running());
    // Still serving, and the capture error reaches the collector.
    assert_eq!(kong.plugin_names().unwrap(), ["kong-looker"]);
    kong.handle_event(id, "log", &snapshot("ok", 200)).unwrap();
    let batches = wait_for_batches(&sink, 1);
    let drops: u64 = batches
        .iter()
        .map(|b| decode(&b.body).drops.capture_error)
        .sum();
    assert_eq!(drops, 1, "the bad reply is counted");
}

#[test]
fn sigterm_flushes_what_the_server_holds() {
    let sink = Sink::start().unwrap();
    let mut plugin = Plugin::start(&["-shutdown-grace-ms", "3000"]);
    let mut kong = PluginSocket::new(plugin.socket());
    // A long flush interval: only the shutdown sends these.
    let cfg = config(&sink.address(), "")
        .replace(r#""flush_interval_ms":50"#, r#""flush_interval_ms":600000"#);
    let id = kong.start_instance("kong-looker", &cfg).unwrap();
    for i in 0..25 {
        kong.handle_event(id, "log", &snapshot(&format!("t-{i}"), 200))
            .unwrap();
    }
    assert!(sink.received().is_empty());
    let status = plugin.terminate(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    let got: u32 = sink
        .received()
        .iter()
        .map(|b| decode(&b.body).len() as u32)
        .sum();
    assert_eq!(got, 25);
    // Its last lines may still be on their way through the pipe.
    plugin.wait_for_log("delivered 25");
    assert!(!plugin.socket().exists(), "the socket is removed");
}
