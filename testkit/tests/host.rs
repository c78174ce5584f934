//! The host's own behaviour, checked with the probe filter: each
//! ngx_wasm_module rule the kong_looker filter depends on, and each trap.

mod common;

use std::time::Duration;

use common::{kong, messages, probe, server};
use kong_looker_testkit::{Kong, MetricKind, Profile, Request};

#[test]
fn each_chain_is_a_root_context_that_starts_and_configures_in_every_worker() {
    let k = kong(Profile::Kong39, 2, &["a", "b"]);
    let m = messages(&k);
    assert_eq!(
        m.iter().filter(|l| l.starts_with("vm_start")).count(),
        4,
        "{m:?}"
    );
    assert!(m.iter().any(|l| l.contains("config=a")));
    assert!(m.iter().any(|l| l.contains("config=b")));
    let workers: Vec<usize> = k
        .logs()
        .iter()
        .filter(|l| l.message.starts_with("configure"))
        .map(|l| l.worker)
        .collect();
    assert_eq!(workers, [0, 0, 1, 1]);
}

#[test]
fn a_request_runs_headers_response_then_done_then_log() {
    let mut k = kong(Profile::Kong39, 1, &["x"]);
    let out = k.request(
        0,
        &Request::get("/orders/1")
            .header("User-Agent", "curl/8.0")
            .respond(201),
    );
    assert_eq!(out.status, 201);
    assert_eq!(out.trap, None);
    let m = messages(&k);
    let order: Vec<&str> = m
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| ["headers", "response_headers", "done", "log"].contains(w))
        .collect();
    assert_eq!(order, ["headers", "response_headers", "done", "log"]);
    assert!(m.iter().any(|l| l.contains("user-agent=curl/8.0")), "{m:?}");
    assert!(
        m.iter().any(|l| l == "response_headers status=201"),
        "{m:?}"
    );
}

#[test]
fn dispatch_from_on_log_traps_and_the_next_request_gets_a_fresh_instance() {
    let mut k = kong(Profile::Kong39, 1, &["dispatch_in_log"]);
    assert_eq!(k.instances(0), 1);
    let out = k.request(0, &Request::get("/"));
    // The log phase comes after the response: the client had its 200, as
    // in the engine (an `unreachable` in on_log, 2026-12-07).
    assert_eq!(out.status, 200);
    let trap = out.trap.expect("a trap");
    assert!(trap.contains("dispatch_http_call in on_log"), "{trap}");
    assert_eq!(k.traps().len(), 1);
    assert_eq!(k.traps()[0].callback, "on_log");

    let out = k.request(0, &Request::get("/").header("x-trap", "1"));
    assert_eq!(
        out.status, 500,
        "a panic in on_http_request_headers is a trap"
    );
    assert_eq!(k.instances(0), 2, "the next context got a fresh instance");
    let m = messages(&k);
    assert_eq!(
        m.iter().filter(|l| l.starts_with("vm_start")).count(),
        2,
        "roots ran on_vm_start again"
    );
    assert_eq!(
        m.iter().filter(|l| l.starts_with("configure")).count(),
        2,
        "and on_configure again"
    );
    // The first request trapped inside on_log; the second trapped in its
    // headers, so its on_done and on_log never ran.
    assert_eq!(
        m.iter().filter(|l| l.starts_with("done ctx")).count(),
        1,
        "{m:?}"
    );
    assert_eq!(
        m.iter().filter(|l| l.starts_with("log ctx")).count(),
        1,
        "{m:?}"
    );
}

#[test]
fn ticks_fire_per_root_context_on_the_test_clock() {
    let mut k = kong(Profile::Kong39, 2, &["tick:100", "tick:250"]);
    k.advance(Duration::from_millis(520));
    let ticks = messages(&k)
        .iter()
        .filter(|l| l.starts_with("tick root"))
        .count();
    // Per worker: 5 ticks of the 100 ms root and 2 of the 250 ms root.
    assert_eq!(ticks, 2 * (5 + 2));
}

#[test]
fn only_a_root_may_set_a_tick_period_and_only_once() {
    let k = kong(Profile::Kong39, 1, &["tick_twice"]);
    let traps = k.traps();
    assert!(
        traps
            .iter()
            .any(|t| t.callback == "on_configure" && t.message.contains("already set")),
        "{traps:?}"
    );

    let mut k = kong(Profile::Kong39, 1, &["tick_in_request"]);
    let out = k.request(0, &Request::get("/"));
    assert_eq!(out.status, 500);
    assert!(
        out.trap
            .unwrap()
            .contains("only a root context may set a tick period")
    );
}

#[test]
fn kong_properties_exist_only_in_http_contexts_and_names_only_on_3_9() {
    for (profile, name) in [
        (Profile::Kong39, "Some(\"orders-list\")"),
        (Profile::Kong38, "None"),
    ] {
        let mut k = kong(profile, 1, &["props,kong_prop_on_tick,tick:100"]);
        let req = Request::get("/")
            .property("kong.route_id", "0f1a4101-3327-4274-b1e4-484a4ab0c030")
            .property("kong.route_name", "orders-list")
            .property("ngx.request_time", "0.020");
        k.request(0, &req);
        k.advance(Duration::from_millis(100));
        let m = messages(&k);
        assert!(
            m.contains(
                &"prop kong.route_id=Some(\"0f1a4101-3327-4274-b1e4-484a4ab0c030\")".to_owned()
            ),
            "{m:?}"
        );
        assert!(
            m.contains(&format!("prop kong.route_name={name}")),
            "{profile:?}: {m:?}"
        );
        assert!(m.contains(&format!(
            "prop kong.version=Some(\"{}\")",
            profile.kong_version()
        )));
        assert!(m.contains(&"prop ngx.request_time=Some(\"0.020\")".to_owned()));
        assert!(m.contains(&"prop plugin_name=Some(\"probe\")".to_owned()));
        assert!(
            m.contains(&"tick kong.route_id=Err(InternalFailure)".to_owned()),
            "no kong.* on a tick: {m:?}"
        );
    }
}

#[test]
fn a_map_variable_is_worked_out_when_read() {
    let mut k = Kong::builder(&probe(), Profile::Kong39)
        .start_at_ms(1_767_614_400_007)
        .chain("props")
        .nginx_map(
            "probe_map",
            "v1|$status|$request_time|$upstream_status|$msec|end",
        )
        .build();
    let req = Request::get("/")
        .respond(404)
        .property("response.code", "404")
        .property("ngx.request_time", "0.020");
    k.request(0, &Request::get("/").property("ngx.request_time", "0.001"));
    k.request(0, &req);
    let m = messages(&k);
    let values: Vec<&String> = m.iter().filter(|l| l.contains("ngx.probe_map")).collect();
    // Each read has its own request's values; what nginx lacks is empty,
    // and $msec is the clock at the log phase, in seconds to the ms.
    assert_eq!(values.len(), 2, "{m:?}");
    assert!(
        values[0].starts_with("prop ngx.probe_map=Some(\"v1||0.001||1767614400."),
        "{m:?}"
    );
    assert!(
        values[1].starts_with("prop ngx.probe_map=Some(\"v1|404|0.020||1767614400."),
        "{m:?}"
    );
    assert!(values[1].ends_with("|end\")"), "{m:?}");
    // Not defined: as any unknown variable.
    let mut k = kong(Profile::Kong39, 1, &["props"]);
    k.request(0, &req);
    assert!(messages(&k).contains(&"prop ngx.probe_map=None".to_owned()));
}

#[test]
fn a_map_variable_reads_the_request_as_the_filter_sees_it() {
    let mut k = Kong::builder(&probe(), Profile::Kong39)
        .chain("props")
        .nginx_map(
            "probe_map",
            "$request_method|$uri|$is_args|$args|$scheme|$http_host|$http_x_consumer_id|$http_x_absent|$http_accept",
        )
        .build();
    let req = Request::get("/v1/a%20b?x=1&y=2")
        .header("X-Consumer-ID", "c-1")
        .header("Accept", "text/html")
        .header("accept", "*/*");
    k.request(0, &req);
    k.request(0, &Request::get("/plain"));
    let m = messages(&k);
    let values: Vec<&String> = m.iter().filter(|l| l.contains("ngx.probe_map")).collect();
    // `$http_*` matches any case, `-` as `_`, and joins repeats as nginx
    // 1.23 and later do; without arguments `$is_args` is empty.
    assert_eq!(
        values,
        [
            "prop ngx.probe_map=Some(\"GET|/v1/a%20b|?|x=1&y=2|http|api.example.com|c-1||text/html, */*\")",
            "prop ngx.probe_map=Some(\"GET|/plain|||http|api.example.com|||\")",
        ],
        "{m:?}"
    );
}

#[test]
fn dispatch_from_on_tick_is_real_http_with_connection_close() {
    let srv = server(200, "ok", Duration::ZERO);
    let mut k = kong(
        Profile::Kong39,
        1,
        &[&format!("tick:100,dispatch_on_tick:{}", srv.addr)],
    );
    k.advance(Duration::from_millis(100));
    let m = messages(&k);
    assert!(
        m.iter().any(|l| l.starts_with("response token=0")
            && l.contains("status=200 dispatch_status=ok body=ok")),
        "{m:?}"
    );
    let got = srv.received.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let head = &got[0].head;
    assert!(head.starts_with("POST /v1/probe HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("Host: collector\r\n"), "{head}");
    assert!(head.contains("Connection: close\r\n"), "{head}");
    assert!(head.contains("x-probe: 1\r\n"), "{head}");
    assert_eq!(got[0].body, b"hello");
    let d = &k.dispatches()[0];
    assert_eq!(
        (d.method.as_str(), d.path.as_str(), d.timeout_ms),
        ("POST", "/v1/probe", 1000)
    );
}

#[test]
fn a_failed_dispatch_calls_back_on_3_9_and_never_on_3_8() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    for (profile, expect) in [(Profile::Kong39, true), (Profile::Kong38, false)] {
        let mut k = kong(
            profile,
            1,
            &[&format!("tick:100,dispatch_on_tick:{closed}")],
        );
        k.advance(Duration::from_millis(100));
        let m = messages(&k);
        let called = m.iter().any(|l| {
            l.starts_with("response token=0 headers=0 status= dispatch_status=broken connection")
        });
        assert_eq!(called, expect, "{profile:?}: {m:?}");
    }
}

#[test]
fn a_slow_upstream_times_out_after_the_call_timeout() {
    let srv = server(200, "late", Duration::from_millis(400));
    let mut k = kong(
        Profile::Kong39,
        1,
        &[&format!(
            "tick:100,timeout:100,dispatch_on_tick:{}",
            srv.addr
        )],
    );
    k.advance(Duration::from_millis(100));
    let m = messages(&k);
    assert!(
        m.iter().any(|l| l.contains("dispatch_status=timeout")),
        "{m:?}"
    );
}

#[test]
fn dispatch_reaches_a_unix_socket() {
    let dir = std::env::temp_dir().join(format!("kl-testkit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("collector.sock");
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        use std::io::Write;
        let (mut s, _) = listener.accept().unwrap();
        let request = common::read_request(&mut s);
        assert_eq!(request.body, b"hello");
        s.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
    });
    let mut k = kong(
        Profile::Kong39,
        1,
        &[&format!(
            "tick:100,dispatch_on_tick:unix:{}",
            path.display()
        )],
    );
    k.advance(Duration::from_millis(100));
    assert!(
        messages(&k)
            .iter()
            .any(|l| l.contains("status=204 dispatch_status=ok")),
        "{:?}",
        messages(&k)
    );
}

#[test]
fn metrics_are_shared_by_workers_and_named_as_kong_exports_them() {
    let mut k = kong(Profile::Kong38, 2, &["count"]);
    for i in 0..5 {
        k.request(i, &Request::get("/"));
    }
    let metrics = k.metrics();
    let m = &metrics["pw:probe:requests"];
    assert_eq!((m.kind, m.value), (MetricKind::Counter, 5));
}

#[test]
fn shared_data_follows_ngx_wasm_module_cas_rules_across_workers() {
    let mut k = Kong::builder(&probe(), Profile::Kong39)
        .workers(2)
        .shm_zone("probe")
        .any_zone(false)
        .chain("shared,tick:100")
        .build();
    k.advance(Duration::from_millis(200));
    let m: Vec<String> = messages(&k)
        .into_iter()
        .filter(|l| l.starts_with("shared"))
        .collect();
    // Two workers, two ticks each: the counter goes 0..4, every first set
    // succeeds and every stale CAS fails.
    assert_eq!(m.len(), 4, "{m:?}");
    for (i, line) in m.iter().enumerate() {
        assert_eq!(
            line,
            &format!("shared n={i} set=Ok(()) stale=Err(CasMismatch)")
        );
    }
}

#[test]
fn keys_outside_a_configured_zone_trap() {
    let mut k = Kong::builder(&probe(), Profile::Kong39)
        .any_zone(false)
        .chain("shared,tick:100")
        .build();
    k.advance(Duration::from_millis(100));
    assert!(
        k.traps()
            .iter()
            .any(|t| t.message.contains("no such shm_kv zone")),
        "{:?}",
        k.traps()
    );
}

#[test]
fn a_local_response_reaches_the_client() {
    let mut k = kong(Profile::Kong39, 1, &["deny"]);
    let out = k.request(0, &Request::get("/"));
    assert_eq!(out.status, 403);
    let local = out.local_response.unwrap();
    assert_eq!(local.body, b"no");
    assert!(local.headers.contains(&("x-probe".into(), "denied".into())));
}

#[test]
fn unimplemented_functions_trap() {
    let k = kong(Profile::Kong39, 1, &["log_level"]);
    assert!(
        k.traps()
            .iter()
            .any(|t| t.message.contains("proxy_get_log_level is not implemented")),
        "{:?}",
        k.traps()
    );
}

#[test]
fn a_chain_whose_configuration_is_refused_fails_its_requests() {
    let mut k = kong(Profile::Kong39, 1, &["refuse", "x"]);
    assert_eq!(k.request(0, &Request::get("/")).status, 500);
    assert_eq!(k.request(0, &Request::get("/").on_chain(1)).status, 200);
}

#[test]
fn the_filter_reads_the_test_clock_in_milliseconds() {
    let mut k = Kong::builder(&probe(), Profile::Kong39)
        .start_at_ms(1_767_614_400_123)
        .chain("now")
        .build();
    k.clock().advance(Duration::from_micros(4_500));
    k.request(0, &Request::get("/").lasting(20));
    assert!(
        messages(&k).contains(&"now=1767614400147".to_owned()),
        "{:?}",
        messages(&k)
    );
}

#[test]
fn a_rebuild_gives_every_worker_a_fresh_instance_with_the_new_config() {
    let mut k = kong(Profile::Kong39, 2, &["old"]);
    k.reconfigure(&["new"]);
    assert_eq!((k.instances(0), k.instances(1)), (2, 2));
    assert_eq!(
        messages(&k)
            .iter()
            .filter(|l| l.contains("config=new"))
            .count(),
        2
    );
    assert!(k.memory_bytes(0) > 0);
}

#[test]
fn header_maps_can_be_added_to_replaced_and_removed_from() {
    let mut k = kong(Profile::Kong39, 1, &["mutate"]);
    k.request(
        0,
        &Request::get("/")
            .header("X-Replaced", "old")
            .header("x-removed", "1")
            .header("x-kept", "yes"),
    );
    assert!(
        // A replace rewrites the first match in place, under the filter's
        // name, as nginx does; an add appends.
        messages(&k).contains(&"mutated x-replaced=new x-kept=yes x-added=1".to_owned()),
        "{:?}",
        messages(&k)
    );
}
