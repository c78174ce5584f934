//! Issue 14, "testkit must agree with the engine": each place where Kong's
//! real engine (nginx + ngx_wasm_module, prebuilt in ../shared/ngx-wasm)
//! was seen to differ from the host, pinned with the probe filter.

mod common;

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use common::{kong, messages, server};
use kong_looker_testkit::{Filter, Kong, Profile, Request};

/// A `127.0.0.1` port nothing listens on.
fn closed_port() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string()
}

/// The `request_headers [...]` line the probe logs.
fn header_line(k: &Kong) -> String {
    messages(k)
        .into_iter()
        .find(|l| l.starts_with("request_headers "))
        .expect("the probe logged the request headers")
}

#[test]
fn http1_header_names_keep_the_clients_case_and_http2_names_are_lowercase() {
    let mut k = kong(Profile::Kong39, 1, &["dump_headers"]);
    let req = Request::get("/orders")
        .header("X-Request-ID", "r1")
        .header("User-Agent", "curl/8.0");
    k.request(0, &req);
    let line = header_line(&k);
    assert!(line.contains(r#"("X-Request-ID", "r1")"#), "{line}");
    assert!(line.contains(r#"("User-Agent", "curl/8.0")"#), "{line}");
    assert!(
        line.starts_with(r#"request_headers [(":path", "/orders"), (":method", "GET"), (":scheme", "http"), (":authority", "#),
        "pseudo-headers first, in the engine's order: {line}"
    );

    let mut k = kong(Profile::Kong39, 1, &["dump_headers"]);
    k.request(0, &req.http2());
    let line = header_line(&k);
    assert!(line.contains(r#"("x-request-id", "r1")"#), "{line}");
    assert!(line.contains(r#"("user-agent", "curl/8.0")"#), "{line}");
    assert!(!line.contains("X-Request-ID"), "{line}");
}

#[test]
fn authority_is_the_listener_not_the_host_header() {
    let mut k = kong(Profile::Kong39, 1, &["dump_headers"]);
    k.request(0, &Request::get("/").header("Host", "api.example.com"));
    let line = header_line(&k);
    assert!(line.contains(r#"(":authority", "kong:8000")"#), "{line}");
    assert!(line.contains(r#"("Host", "api.example.com")"#), "{line}");

    let mut k = kong(Profile::Kong39, 1, &["dump_headers"]);
    k.request(
        0,
        &Request::get("/")
            .header(":authority", "client.example.com")
            .listener("127.0.0.1:8080"),
    );
    let line = header_line(&k);
    assert!(
        line.contains(r#"(":authority", "127.0.0.1:8080")"#),
        "{line}"
    );
    assert!(
        !line.contains("client.example.com"),
        "an HTTP/1 client has no :authority to show: {line}"
    );

    // On HTTP/2 the client's :authority is how the host arrives.
    let mut k = kong(Profile::Kong39, 1, &["dump_headers"]);
    let mut req = Request::get("/").header(":authority", "client.example.com");
    req.headers.retain(|(n, _)| n != "host");
    k.request(0, &req.http2());
    let line = header_line(&k);
    assert!(line.contains(r#"(":authority", "kong:8000")"#), "{line}");
    assert!(line.contains(r#"("host", "client.example.com")"#), "{line}");
}

#[test]
fn request_scoped_properties_in_a_root_context_give_an_error_status_and_log() {
    for profile in Profile::ALL {
        let mut k = kong(
            profile,
            1,
            &["tick:100,request_prop_on_tick,kong_prop_on_tick"],
        );
        k.advance(Duration::from_millis(100));
        let m = messages(&k);
        // The names the probe reads on a tick (its `request_prop_on_tick`
        // list, repeated here on purpose: each is checked by name).
        for name in [
            "kong.route_id",
            "request.path",
            "response.code",
            "upstream.address",
            "connection.id",
            "source.address",
            "destination.port",
            "ngx.request_time",
        ] {
            assert!(
                m.contains(&format!("tick {name}=Err(InternalFailure)")),
                "{profile:?} {name}: {m:?}"
            );
        }
        assert!(m.contains(&"tick no_such.property=Ok(None)".to_owned()));
        assert!(
            m.iter()
                .any(|l| l.starts_with("tick plugin_root_id=Ok(Some(")),
            "{m:?}"
        );
        let errors: Vec<_> = k
            .logs()
            .into_iter()
            .filter(|l| l.level == 4 && l.message.contains("outside of a request"))
            .map(|l| l.message)
            .collect();
        assert!(
            errors.contains(&"[wasm] cannot get host properties outside of a request".to_owned()),
            "{errors:?}"
        );
        assert!(
            errors.contains(&"[wasm] cannot get ngx properties outside of a request".to_owned()),
            "{errors:?}"
        );
        assert_eq!(errors.len(), 8, "one per failed read: {errors:?}");
        assert!(k.traps().is_empty(), "{:?}", k.traps());
    }
}

#[test]
fn reading_plugin_name_in_a_root_context_crashes_the_worker() {
    let mut k = kong(Profile::Kong39, 2, &["tick:100,plugin_name_on_tick"]);
    assert_eq!(k.crashes(0), 0);
    k.advance(Duration::from_millis(100));
    assert_eq!((k.crashes(0), k.crashes(1)), (1, 1));
    let traps = k.traps();
    assert!(
        traps.iter().all(|t| t.crash
            && t.callback == "on_tick"
            && t.message.contains("get_property(plugin_name)")),
        "{traps:?}"
    );
    assert_eq!(
        k.instances(0),
        2,
        "the worker came back with a new instance"
    );
    assert!(
        !messages(&k)
            .iter()
            .any(|l| l.starts_with("tick plugin_name=")),
        "the read never returned"
    );

    // A crash while a request starts the instance: no answer at all.
    let mut k = kong(Profile::Kong39, 1, &["plugin_name_on_configure"]);
    assert_eq!(k.crashes(0), 1, "on_configure crashed at start");
    let out = k.request(0, &Request::get("/"));
    assert!(out.crashed, "{out:?}");
    assert_eq!(out.status, 0, "nginx closes the connection unanswered");
    assert_eq!(k.crashes(0), 2);

    // In a request, plugin_name is fine.
    let mut k = kong(Profile::Kong39, 1, &["props"]);
    let out = k.request(0, &Request::get("/"));
    assert!(!out.crashed);
    assert!(messages(&k).contains(&"prop plugin_name=Some(\"probe\")".to_owned()));
    assert_eq!(k.crashes(0), 0);
}

#[test]
fn dispatch_tokens_start_at_0_and_go_on_across_a_trap() {
    let srv = server(200, "ok", Duration::ZERO);
    let mut k = kong(
        Profile::Kong39,
        1,
        &[&format!("tick:100,dispatch_on_tick:{}", srv.addr)],
    );
    k.advance(Duration::from_millis(200));
    // A trap gives a fresh instance, but the worker process, and its
    // token counter, live on.
    let out = k.request(0, &Request::get("/").header("x-trap", "1"));
    assert_eq!(out.status, 500);
    assert!(!out.crashed);
    k.advance(Duration::from_millis(100));
    let tokens: Vec<u32> = k.dispatches().iter().map(|d| d.token).collect();
    assert_eq!(tokens, [0, 1, 2]);
    let m = messages(&k);
    assert!(m.contains(&"dispatched Ok(0)".to_owned()), "{m:?}");
    assert!(
        m.iter().any(|l| l.starts_with("response token=0 ")),
        "{m:?}"
    );
}

#[test]
fn dispatching_from_a_root_call_response_crashes_the_worker() {
    let srv = server(200, "ok", Duration::ZERO);
    let mut k = kong(
        Profile::Kong39,
        1,
        &[&format!(
            "tick:100,redispatch,dispatch_on_tick:{}",
            srv.addr
        )],
    );
    k.advance(Duration::from_millis(150));
    assert_eq!(k.crashes(0), 1);
    let crash = k.traps().into_iter().find(|t| t.crash).expect("a crash");
    assert_eq!(crash.callback, "on_http_call_response");
    assert!(
        crash
            .message
            .contains("root context's on_http_call_response")
    );
    assert_eq!(k.dispatches().len(), 1, "the second call never went out");
    // A new worker process counts its tokens from 0 again.
    k.advance(Duration::from_millis(100));
    let tokens: Vec<u32> = k.dispatches().iter().map(|d| d.token).collect();
    assert_eq!(tokens, [0, 0]);
}

#[test]
fn a_second_dispatch_in_one_on_tick_traps() {
    let srv = server(200, "ok", Duration::ZERO);
    let mut k = kong(
        Profile::Kong39,
        1,
        &[&format!(
            "tick:100,dispatches:2,dispatch_on_tick:{}",
            srv.addr
        )],
    );
    k.advance(Duration::from_millis(100));
    let traps = k.traps();
    assert_eq!(traps.len(), 1, "{traps:?}");
    assert_eq!(traps[0].callback, "on_tick");
    assert!(!traps[0].crash);
    assert!(
        traps[0].message.contains(
            "second call in flight from one root context: leaks connection slots in ngx_wasm_module"
        ),
        "{}",
        traps[0].message
    );
    assert_eq!(k.dispatches().len(), 1);

    // One per tick, tick after tick, is fine.
    let mut k = kong(
        Profile::Kong39,
        1,
        &[&format!("tick:100,dispatch_on_tick:{}", srv.addr)],
    );
    k.advance(Duration::from_millis(300));
    assert!(k.traps().is_empty(), "{:?}", k.traps());
    assert_eq!(k.dispatches().len(), 3);
}

#[test]
fn a_failed_dispatch_calls_back_with_only_dispatch_status_and_no_body() {
    let mut k = kong(
        Profile::Kong39,
        1,
        &[&format!("tick:100,dispatch_on_tick:{}", closed_port())],
    );
    k.advance(Duration::from_millis(100));
    let m = messages(&k);
    assert!(
        m.contains(
            &r#"call_pairs token=0 body_size=0 [(":dispatch_status", "broken connection")]"#
                .to_owned()
        ),
        "no :status, no other header, no body: {m:?}"
    );
    assert!(
        k.logs().iter().any(|l| l.level == 4
            && l.message == "[wasm] dispatch failed: tcp socket - broken connection"),
        "{m:?}"
    );
}

#[test]
fn dispatch_status_names_are_the_engines() {
    // A server that answers something that is not HTTP.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let garbage = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = common::read_request(&mut s);
            let _ = s.write_all(b"nonsense\r\n\r\n");
        }
    });
    let slow = server(200, "late", Duration::from_millis(400));
    for (upstream, timeout, status) in [
        (closed_port(), 1000, "broken connection"),
        (
            "no-such-host.invalid:80".to_owned(),
            1000,
            "resolver failure",
        ),
        (slow.addr.clone(), 100, "timeout"),
        (garbage, 1000, "reader failure"),
    ] {
        let mut k = kong(
            Profile::Kong39,
            1,
            &[&format!(
                "tick:100,timeout:{timeout},dispatch_on_tick:{upstream}"
            )],
        );
        k.advance(Duration::from_millis(100));
        let m = messages(&k);
        assert!(
            m.iter().any(|l| l.starts_with(&format!(
                "response token=0 headers=0 status= dispatch_status={status} body="
            ))),
            "{upstream}: {m:?}"
        );
    }
}

#[test]
fn timing_is_millisecond_grained_and_upstream_may_exceed_total_by_1_ms() {
    let mut k = kong(Profile::Kong39, 1, &["timing"]);
    // nginx reads the two times at different moments: 21 ms upstream in a
    // 20 ms request is something the engine shows.
    let out = k.request(
        0,
        &Request::get("/")
            .lasting(20)
            .request_time_ms(20)
            .upstream_time_ms(21),
    );
    assert_eq!(out.status, 200);
    let m = messages(&k);
    assert!(
        m.contains(&r#"timing ngx.request_time=Some("0.020")"#.to_owned()),
        "{m:?}"
    );
    assert!(
        m.contains(&r#"timing ngx.upstream_response_time=Some("0.021")"#.to_owned()),
        "{m:?}"
    );

    let refused = |req: Request| -> String {
        let mut k = kong(Profile::Kong39, 1, &["timing"]);
        let err = catch_unwind(AssertUnwindSafe(|| k.request(0, &req)))
            .expect_err("the host refuses the request");
        err.downcast_ref::<String>().cloned().unwrap_or_default()
    };
    let finer = refused(Request::get("/").property("ngx.request_time", "0.0205"));
    assert!(finer.contains("three decimals"), "{finer}");
    let skew = refused(Request::get("/").request_time_ms(20).upstream_time_ms(22));
    assert!(skew.contains("more than the 1 ms"), "{skew}");
}

/// What a [`bare_filter`] does with ticks.
#[derive(Clone, Copy)]
enum Ticks<'a> {
    /// Sets no tick period.
    Off,
    /// Sets a 100 ms tick and traps in `on_tick` (if not left out), so
    /// that each tick shows.
    Trap,
    /// Sets a 100 ms tick and, on the first, dispatches `GET /` to this
    /// upstream.
    Dispatch(&'a str),
}

/// A filter that does nothing, built here with every callback a request
/// reaches but those in `leave_out`, each answering Continue, and
/// `proxy_on_http_call_response`, which does nothing either.
fn bare_filter(leave_out: &[&str], ticks: Ticks<'_>) -> Vec<u8> {
    use wasm_encoder::{
        CodeSection, ConstExpr, DataSection, EntityType, ExportKind, ExportSection, Function,
        FunctionSection, GlobalSection, GlobalType, ImportSection, Instruction, MemorySection,
        MemoryType, Module, TypeSection, ValType,
    };
    // (export, parameters, what it returns)
    let callbacks: [(&str, usize, Option<i32>); 14] = [
        ("proxy_abi_version_0_2_1", 0, None),
        ("proxy_on_memory_allocate", 1, Some(1024)),
        ("proxy_on_context_create", 2, None),
        ("proxy_on_vm_start", 2, Some(1)),
        ("proxy_on_configure", 2, Some(1)),
        ("proxy_on_request_headers", 3, Some(0)),
        ("proxy_on_request_body", 3, Some(0)),
        ("proxy_on_response_headers", 3, Some(0)),
        ("proxy_on_response_body", 3, Some(0)),
        ("proxy_on_done", 1, Some(1)),
        ("proxy_on_log", 1, None),
        ("proxy_on_delete", 1, None),
        ("proxy_on_tick", 1, None),
        ("proxy_on_http_call_response", 5, None),
    ];
    // Where the dispatch's arguments lie in memory (not at 0, which the
    // engine takes for a null pointer): the upstream, the headers as a
    // proxy-wasm map, an empty map for the trailers, the token's slot.
    const UPSTREAM: u32 = 16;
    const HEADERS: u32 = 64;
    const TRAILERS: u32 = 184;
    const TOKEN: u32 = 300;
    let pairs: [(&str, &str); 3] = [(":method", "GET"), (":path", "/"), (":authority", "x")];
    let mut headers = Vec::new();
    headers.extend_from_slice(&3u32.to_le_bytes());
    for (k, v) in pairs {
        headers.extend_from_slice(&(k.len() as u32).to_le_bytes());
        headers.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        for text in [k, v] {
            headers.extend_from_slice(text.as_bytes());
            headers.push(0);
        }
    }
    let (mut types, mut imports, mut funcs, mut exports, mut code) = (
        TypeSection::new(),
        ImportSection::new(),
        FunctionSection::new(),
        ExportSection::new(),
        CodeSection::new(),
    );
    // Functions 0 and 1, of types 0 and 1: the host's
    // `proxy_set_tick_period_milliseconds` and `proxy_http_call`.
    types.ty().function([ValType::I32], [ValType::I32]);
    types.ty().function([ValType::I32; 10], [ValType::I32]);
    for (index, name) in (0u32..).zip(["proxy_set_tick_period_milliseconds", "proxy_http_call"]) {
        imports.import("env", name, EntityType::Function(index));
    }
    let mut memory = MemorySection::new();
    memory.memory(MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    // Global 0: whether the dispatch was made.
    let mut globals = GlobalSection::new();
    globals.global(
        GlobalType {
            val_type: ValType::I32,
            mutable: true,
            shared: false,
        },
        &ConstExpr::i32_const(0),
    );
    let mut data = DataSection::new();
    if let Ticks::Dispatch(upstream) = ticks {
        data.active(0, &ConstExpr::i32_const(UPSTREAM as i32), upstream.bytes());
        data.active(
            0,
            &ConstExpr::i32_const(HEADERS as i32),
            headers.iter().copied(),
        );
    }
    exports.export("memory", ExportKind::Memory, 0);
    let ticking = !matches!(ticks, Ticks::Off);
    let kept = callbacks
        .iter()
        .filter(|(name, ..)| !leave_out.contains(name) && (ticking || *name != "proxy_on_tick"));
    for (index, (name, params, result)) in (2u32..).zip(kept) {
        let results: &[ValType] = if result.is_some() {
            &[ValType::I32]
        } else {
            &[]
        };
        types
            .ty()
            .function(vec![ValType::I32; *params], results.to_vec());
        funcs.function(index);
        exports.export(name, ExportKind::Func, index);
        let mut body = Function::new([]);
        match (*name, ticks) {
            ("proxy_on_configure", Ticks::Trap | Ticks::Dispatch(_)) => {
                body.instruction(&Instruction::I32Const(100))
                    .instruction(&Instruction::Call(0))
                    .instruction(&Instruction::Drop);
            }
            ("proxy_on_tick", Ticks::Trap) => {
                body.instruction(&Instruction::Unreachable);
            }
            ("proxy_on_tick", Ticks::Dispatch(upstream)) => {
                body.instruction(&Instruction::GlobalGet(0))
                    .instruction(&Instruction::If(wasm_encoder::BlockType::Empty))
                    .instruction(&Instruction::Return)
                    .instruction(&Instruction::End)
                    .instruction(&Instruction::I32Const(1))
                    .instruction(&Instruction::GlobalSet(0));
                for arg in [
                    UPSTREAM,
                    upstream.len() as u32,
                    HEADERS,
                    headers.len() as u32,
                    TRAILERS,
                    0,
                    TRAILERS,
                    4,
                    2000,
                    TOKEN,
                ] {
                    body.instruction(&Instruction::I32Const(arg as i32));
                }
                body.instruction(&Instruction::Call(1))
                    .instruction(&Instruction::Drop);
            }
            _ => {}
        }
        if let Some(value) = result {
            body.instruction(&Instruction::I32Const(*value));
        }
        body.instruction(&Instruction::End);
        code.function(&body);
    }
    let mut module = Module::new();
    module
        .section(&types)
        .section(&imports)
        .section(&funcs)
        .section(&memory)
        .section(&globals)
        .section(&exports)
        .section(&code)
        .section(&data);
    module.finish()
}

#[test]
fn a_callback_the_filter_does_not_export_crashes_the_worker_when_its_step_comes() {
    // ngx_wasm_module looks the callbacks up at load and calls them without
    // checking: a module like this one without any one of the six below
    // made both engines' workers exit on signal 11 at the first request
    // with a body to answer (2026-12-07, docs/ngx_wasm_module.md). With
    // every callback it is answered.
    let answered = |filter: &Filter, req: &Request| {
        let mut k = Kong::builder(filter, Profile::Kong39).chain("").build();
        let out = k.request(0, req);
        (out, k.crashes(0), k.traps())
    };
    let whole = Filter::from_bytes("bare", &bare_filter(&[], Ticks::Off)).unwrap();
    let with_body = |mut req: Request| {
        req.response.body = b"ok".to_vec();
        req
    };
    let (out, crashes, traps) = answered(&whole, &with_body(Request::get("/")));
    assert_eq!(
        (out.status, out.crashed, crashes),
        (200, false, 0),
        "{traps:?}"
    );

    // Before the response, the client gets no answer; in the log phase it
    // has had it (both as the engines did).
    for (missing, callback, status) in [
        ("proxy_on_request_headers", "on_http_request_headers", 0),
        ("proxy_on_response_headers", "on_http_response_headers", 0),
        ("proxy_on_response_body", "on_http_response_body", 0),
        ("proxy_on_done", "on_done", 200),
        ("proxy_on_log", "on_log", 200),
        ("proxy_on_delete", "on_delete", 200),
    ] {
        let filter = Filter::from_bytes("bare", &bare_filter(&[missing], Ticks::Off)).unwrap();
        let (out, crashes, traps) = answered(&filter, &with_body(Request::get("/")));
        assert!(out.crashed, "{missing}: {out:?}");
        assert_eq!((out.status, crashes), (status, 1), "{missing}");
        assert!(
            traps.iter().any(|t| t.crash
                && t.callback == callback
                && t.message.contains(&format!("does not export {missing}"))),
            "{missing}: {traps:?}"
        );
    }
    // nginx runs the body filters for every response but one of headers
    // only: an empty 200 still reaches `on_response_body`, a 204, a 304 or
    // the answer to a HEAD does not (both engines).
    let filter = Filter::from_bytes(
        "bare",
        &bare_filter(&["proxy_on_response_body"], Ticks::Off),
    )
    .unwrap();
    let (out, crashes, _) = answered(&filter, &Request::get("/"));
    assert_eq!((out.status, crashes), (0, 1), "an empty 200");
    for req in [
        Request::get("/").respond(204),
        Request::get("/").respond(304),
        with_body(Request::new("HEAD", "/")),
    ] {
        let (out, crashes, _) = answered(&filter, &req);
        assert_eq!((out.crashed, crashes), (false, 0), "{req:?}");
    }

    // Without these the engines' workers exit as they load the filter
    // (`emerg`, not respawned): no node to test.
    for (missing, said) in [
        ("proxy_on_memory_allocate", "missing malloc"),
        ("proxy_on_context_create", "no proxy_on_context_create"),
        ("proxy_on_vm_start", "no proxy_on_vm_start"),
        ("proxy_on_configure", "no proxy_on_configure"),
    ] {
        let err = Filter::from_bytes("bare", &bare_filter(&[missing], Ticks::Off))
            .err()
            .unwrap_or_else(|| panic!("{missing}: loaded"));
        assert!(err.to_string().contains(said), "{missing}: {err:#}");
    }
}

#[test]
fn a_filter_without_on_tick_stops_ticking_and_does_not_crash() {
    // The engine's tick handler is the one place that checks for its
    // callback: without `proxy_on_tick` it returns, and sets no next tick.
    // With it, each tick of this filter traps (both in Kong 3.9's engine,
    // 2026-12-07).
    let ticks = |leave_out: &[&str]| {
        let filter = Filter::from_bytes("bare", &bare_filter(leave_out, Ticks::Trap)).unwrap();
        let mut k = Kong::builder(&filter, Profile::Kong39).chain("").build();
        assert_eq!(k.request(0, &Request::get("/").respond(204)).status, 204);
        k.advance(Duration::from_millis(350));
        assert_eq!(k.crashes(0), 0, "{:?}", k.traps());
        k.traps().iter().filter(|t| t.callback == "on_tick").count()
    };
    assert!(ticks(&[]) >= 1, "with on_tick, its ticks trap");
    assert_eq!(
        ticks(&["proxy_on_tick"]),
        0,
        "without it, nothing is called"
    );
}

#[test]
fn a_filter_that_dispatches_without_on_http_call_response_crashes_when_the_answer_comes() {
    // The engine calls `proxy_on_http_call_response` without checking that
    // it was exported: a module like this one without it made both
    // engines' workers exit on signal 11 when the answer to its tick's
    // dispatch came, and each worker respawned dispatched and crashed
    // again; with it, nothing (2026-12-07, docs/ngx_wasm_module.md).
    let srv = server(200, "ok", Duration::ZERO);
    let run = |leave_out: &[&str]| {
        let filter =
            Filter::from_bytes("bare", &bare_filter(leave_out, Ticks::Dispatch(&srv.addr)))
                .unwrap();
        let mut k = Kong::builder(&filter, Profile::Kong39).chain("").build();
        assert_eq!(k.request(0, &Request::get("/").respond(204)).status, 204);
        k.advance(Duration::from_millis(250));
        let answered = k
            .traps()
            .iter()
            .any(|t| t.crash && t.callback == "on_http_call_response");
        (k.dispatches().len(), k.crashes(0), answered)
    };
    assert_eq!(run(&[]), (1, 0, false), "with the callback");
    let (dispatches, crashes, answered) = run(&["proxy_on_http_call_response"]);
    assert!(dispatches >= 1, "it dispatched");
    assert!(crashes >= 1 && answered, "the answer crashed the worker");
}
