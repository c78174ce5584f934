//! The real `dist/kong_looker.wasm` in the test host, as Kong 3.8, 3.9 and 3.10
//! run it: every captured field against what the request carried, over the
//! reference mix and over hand-written cases for each identity source.

use std::collections::HashMap;
use std::time::Duration;

use kong_looker_core::capture::log_line;
use kong_looker_proto::mix::{Mix, MixParams};
use kong_looker_testkit::{Kong, Profile, Request, Sink};
use kong_looker_testsupport::traffic::{self, TEAMS};
use kong_looker_testsupport::{Collected, OwnedRow, config, filter};

const START_MS: i64 = 1_767_614_400_000;

/// Runs `requests` through a host with `chains`, flushes, and returns what
/// reached the sink as rows, plus the host for further checks.
fn run(profile: Profile, chains: &[String], requests: &[Request]) -> (Collected, Kong) {
    run_in(profile, chains, requests, None)
}

/// [`run`], where `line` is the format of `$kong_looker_log` that Kong's
/// nginx config defines (`kong_looker.nginx.conf`: nginx's figures and the
/// request's fields in one read), if any.
fn run_in(
    profile: Profile,
    chains: &[String],
    requests: &[Request],
    line: Option<&str>,
) -> (Collected, Kong) {
    let sink = Sink::start().unwrap();
    let chains: Vec<String> = chains
        .iter()
        .map(|c| c.replace("{collector}", &sink.address()))
        .collect();
    let f = filter();
    let mut builder = Kong::builder(&f, profile)
        .workers(2)
        .start_at_ms(START_MS as u64);
    for c in &chains {
        builder = builder.chain(c);
    }
    if let Some(format) = line {
        builder = builder.nginx_map(log_line::VARIABLE, format);
    }
    let mut kong = builder.build();
    for (i, r) in requests.iter().enumerate() {
        let outcome = kong.request(i, r);
        assert_eq!(outcome.trap, None, "request {i} trapped");
        assert_eq!(
            outcome.status, r.response.status,
            "the filter changed a status"
        );
    }
    kong.advance(Duration::from_secs(2));
    let collected = Collected::from(&sink.received());
    assert!(kong.traps().is_empty(), "traps: {:?}", kong.traps());
    (collected, kong)
}

fn one(profile: Profile, extra: &str, request: Request) -> OwnedRow {
    one_in(profile, extra, request, None)
}

fn one_in(profile: Profile, extra: &str, request: Request, line: Option<&str>) -> OwnedRow {
    let (c, _) = run_in(profile, &[config("{collector}", extra)], &[request], line);
    assert_eq!(c.rows.len(), 1, "one request, one row");
    c.rows.into_iter().next().unwrap()
}

#[test]
fn reference_mix_is_captured_field_for_field_on_kong_3_9() {
    reference_mix(Profile::Kong39);
}

#[test]
fn reference_mix_is_captured_field_for_field_on_kong_3_8() {
    reference_mix(Profile::Kong38);
}

#[test]
fn reference_mix_is_captured_field_for_field_on_kong_3_10() {
    reference_mix(Profile::Kong310);
}

#[test]
fn reference_mix_is_captured_field_for_field_with_nginx_figures_in_one_read() {
    for profile in [Profile::Kong38, Profile::Kong310] {
        reference_mix_in(profile, Some(log_line::FORMAT));
    }
}

#[test]
fn reference_mix_is_captured_field_for_field_with_the_earlier_releases_include() {
    reference_mix_in(Profile::Kong39, Some(log_line::FORMAT_V1));
}

fn reference_mix(profile: Profile) {
    reference_mix_in(profile, None);
}

fn reference_mix_in(profile: Profile, line: Option<&str>) {
    let mut mix = Mix::new(MixParams {
        request_ids: true,
        ..MixParams::default()
    });
    let requests = mix.take_requests(3000);
    let mut sent = Vec::new();
    let mut expected = HashMap::new();
    for req in &requests {
        let (r, row) = traffic::kong_request(&mix, req, profile);
        expected.insert(req.request_id.clone().unwrap(), row);
        sent.push(r);
    }
    let chains = traffic::chains("{collector}", r#""request_id":true"#);
    let (collected, kong) = run_in(profile, &chains, &sent, line);
    assert_eq!(
        collected.rows.len(),
        requests.len(),
        "every request is a row"
    );
    // Each chain says once, in each worker, that it reads nginx's figures
    // one by one, or the header map beside a line of the earlier format;
    // with this release's line it says nothing.
    let notes: Vec<String> = kong
        .logs()
        .into_iter()
        .map(|l| l.message)
        .filter(|m| m.contains("$kong_looker_log"))
        .collect();
    let chains_run = chains.len() * 2;
    let said = match line {
        Some(log_line::FORMAT) => None,
        Some(_) => Some("in the format of an earlier release"),
        None => Some("is not defined"),
    };
    match said {
        None => assert!(notes.is_empty(), "{notes:?}"),
        Some(said) => {
            assert!((1..=chains_run).contains(&notes.len()), "{notes:?}");
            assert!(notes.iter().all(|m| m.contains(said)), "{notes:?}");
        }
    }
    for row in &collected.rows {
        let id = row.request_id.clone().expect("request id sent");
        let want = expected.remove(&id).expect("each request once");
        // The host's clock starts at START_MS and only moves forward.
        assert!(row.started_at_ms >= START_MS, "{row:?}");
        let got = OwnedRow {
            started_at_ms: 0,
            ..row.clone()
        };
        assert_eq!(got, want, "request {id}");
    }
    assert!(expected.is_empty());
    // Every team's chain labelled its records.
    for team in TEAMS {
        assert!(
            collected
                .rows
                .iter()
                .any(|r| r.workspace.as_deref() == Some(team))
        );
    }
}

#[test]
fn a_kong_looker_log_of_another_format_is_refused_with_a_warning_and_nothing_lost() {
    let sink = Sink::start().unwrap();
    let f = filter();
    let mut kong = Kong::builder(&f, Profile::from_env())
        .start_at_ms(START_MS as u64)
        .chain(&config(&sink.address(), ""))
        .nginx_map(log_line::VARIABLE, "kl0|$status|$request_time")
        .build();
    for _ in 0..3 {
        assert_eq!(kong.request(0, &get("/v1/orders/1")).trap, None);
    }
    kong.advance(Duration::from_secs(2));
    let rows = Collected::from(&sink.received()).rows;
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert_eq!((row.status, row.latency_total_us), (Some(200), 120_000));
        assert_eq!(row.client_address.as_deref(), Some("203.0.113.77"));
    }
    let warnings: Vec<_> = kong
        .logs()
        .into_iter()
        .filter(|l| l.message.contains("$kong_looker_log"))
        .collect();
    assert_eq!(warnings.len(), 1, "once per chain: {warnings:?}");
    assert!(
        warnings[0]
            .message
            .contains("does not start with \"kl2|\" or \"kl1|\""),
        "{warnings:?}"
    );
    assert_eq!(warnings[0].level, 3, "a warning");
}

fn get(path: &str) -> Request {
    Request::get(path)
        .property("response.code", "200")
        .property("ngx.upstream_status", "200")
        .property("ngx.request_time", "0.120")
        .property("ngx.upstream_response_time", "0.100")
        .property("ngx.remote_addr", "203.0.113.77")
        .lasting(120)
}

#[test]
fn timings_statuses_and_sizes_come_from_kong_first() {
    for line in [None, Some(log_line::FORMAT_V1), Some(log_line::FORMAT)] {
        timings_statuses_and_sizes(line);
    }
}

fn timings_statuses_and_sizes(line: Option<&str>) {
    let row = one_in(
        Profile::from_env(),
        r#""request_id":true"#,
        get("/v1/orders/12345?x=1")
            .property("ngx.upstream_response_time", "0.010, 0.020 : 0.005")
            .property("ngx.upstream_status", "502, 200")
            .property("ngx.request_length", "321")
            .property("ngx.bytes_sent", "4567")
            .property("ngx.kong_request_id", "5b1e4a7f2c9d4e0f8a6b3c2d1e0f9a8b")
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        line,
    );
    assert_eq!(
        row.path.as_deref(),
        Some("/v1/orders/{id}"),
        "query dropped, id templated"
    );
    assert_eq!(row.latency_total_us, 120_000);
    assert_eq!(row.latency_upstream_us, Some(35_000), "retries are summed");
    assert_eq!(row.response_source, Some("upstream"));
    assert_eq!((row.request_bytes, row.response_bytes), (321, 4567));
    assert_eq!(
        row.request_id.as_deref(),
        Some("5b1e4a7f2c9d4e0f8a6b3c2d1e0f9a8b")
    );
    assert_eq!(
        row.trace_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(row.client_address.as_deref(), Some("203.0.113.77"));
    assert_eq!(
        row.started_at_ms, START_MS,
        "the log time less nginx's request time"
    );
}

#[test]
fn without_kong_figures_the_filter_uses_the_headers_and_the_log_time() {
    let row = one(
        Profile::Kong38,
        "",
        Request::new("PURGE", "/cache/ab12cd34ef56ab78")
            .header("content-length", "42")
            .respond(503)
            .response_header("content-length", "99")
            .property("ngx.kong_request_id", "5b1e4a7f2c9d4e0f8a6b3c2d1e0f9a8b")
            .lasting(250),
    );
    assert_eq!(row.method.as_deref(), Some("PURGE"));
    assert_eq!(row.path.as_deref(), Some("/cache/{id}"));
    assert_eq!(row.status, Some(503), "from :status");
    assert_eq!(row.response_source, Some("kong"), "no upstream status");
    assert_eq!(row.latency_upstream_us, None);
    // nginx always has $request_time; a host without it gets the log
    // time as the start and no duration, rather than a second clock read
    // in every request's headers phase.
    assert_eq!(row.latency_total_us, 0, "no request time");
    assert_eq!(row.started_at_ms, START_MS + 250, "the log time");
    assert_eq!(
        (row.request_bytes, row.response_bytes),
        (0, 0),
        "Content-Length counts the body alone; the schema's sizes include headers"
    );
    assert_eq!(
        row.request_id, None,
        "request ids are sent only when configured"
    );
}

#[test]
fn kong_verified_jwt_from_ctx_shared() {
    let token = traffic::jwt(&serde_json::json!({"sub": "device-7", "iss": "jwt-key-1"}));
    let row = one(
        Profile::from_env(),
        "",
        get("/v1/devices")
            .header("x-consumer-id", "6a1f9c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b")
            .header("x-consumer-username", "iot")
            .header("x-credential-identifier", "jwt-key-1")
            .property("kong.ctx.shared.authenticated_jwt_token", token),
    );
    assert_eq!(row.auth_method, Some("jwt"));
    assert_eq!(row.trust, Some("verified"), "Kong's jwt plugin verified it");
    assert_eq!(row.subject.as_deref(), Some("device-7"));
    assert_eq!(row.credential.as_deref(), Some("jwt-key-1"));
}

#[test]
fn trusted_proxy_headers_count_only_when_configured() {
    let req = get("/v1/me")
        .header("x-forwarded-email", "bob@example.com")
        .header("x-forwarded-user", "bob");
    let row = one(
        Profile::from_env(),
        r#""identity":{"trusted_headers":["X-Forwarded-User","X-Forwarded-Email"]}"#,
        req.clone(),
    );
    assert_eq!(row.auth_method, Some("trusted_proxy"));
    assert_eq!(row.trust, Some("verified"));
    assert_eq!(
        row.subject.as_deref(),
        Some("bob"),
        "the first configured header wins"
    );
    let row = one(Profile::from_env(), "", req);
    assert_eq!(row.auth_method, None, "unconfigured headers are ignored");
}

#[test]
fn consumer_headers_are_claimed_without_an_auth_plugin_and_can_be_off() {
    let req = get("/v1/x")
        .header("x-consumer-id", "6a1f9c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b")
        .header("x-consumer-username", "anon")
        .header("x-anonymous-consumer", "true")
        .header("x-authenticated-groups", "beta, ops");
    let row = one(Profile::from_env(), "", req.clone());
    assert_eq!(
        (row.auth_method, row.trust),
        (Some("kong_consumer"), Some("claimed"))
    );
    assert!(row.anonymous);
    assert_eq!(row.consumer_groups, ["beta", "ops"]);
    let row = one(
        Profile::from_env(),
        r#""identity":{"auth_plugin":true}"#,
        req.clone(),
    );
    assert_eq!(row.trust, Some("verified"));
    let row = one(
        Profile::from_env(),
        r#""identity":{"consumer_headers":false}"#,
        req,
    );
    assert_eq!(row.consumer_username, None);
}

#[test]
fn privacy_truncates_hashes_and_pseudonymises() {
    let req = get("/v1/x")
        .header("x-consumer-id", "6a1f9c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b")
        .header("x-consumer-username", "alice")
        .header("x-credential-identifier", "cred-9");
    let row = one(
        Profile::from_env(),
        r#""privacy":{"client_address":"truncate"}"#,
        req.clone(),
    );
    assert_eq!(row.client_address.as_deref(), Some("203.0.113.0/24"));
    assert_eq!(row.consumer_username.as_deref(), Some("alice"));
    let keyed = r#""privacy":{"client_address":"hash","pseudonymize":true,"hash_key":"0123456789abcdef0123"}"#;
    let a = one(Profile::from_env(), keyed, req.clone());
    let b = one(Profile::from_env(), keyed, req);
    let addr = a.client_address.clone().unwrap();
    assert!(addr.starts_with("h:") && !addr.contains("203.0"), "{addr}");
    assert_eq!(
        a.client_address, b.client_address,
        "stable across workers and restarts"
    );
    assert!(a.consumer_username.as_deref().unwrap().starts_with("h:"));
    assert!(a.credential.as_deref().unwrap().starts_with("h:"));
    assert_eq!(
        a.consumer_id.as_deref(),
        Some("6a1f9c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b"),
        "Kong's own id stays joinable"
    );
}

#[test]
fn sampling_keeps_errors_and_weights_the_rest() {
    let mut requests = Vec::new();
    for i in 0..2000 {
        requests.push(get(&format!("/v1/items/{i}")));
    }
    for status in [500, 401, 403] {
        for _ in 0..50 {
            requests.push(
                get("/v1/items")
                    .respond(status)
                    .property("response.code", status.to_string()),
            );
        }
    }
    let (c, _) = run(
        Profile::from_env(),
        &[config("{collector}", r#""sample_rate":0.25"#)],
        &requests,
    );
    let ok: Vec<_> = c.rows.iter().filter(|r| r.status == Some(200)).collect();
    assert!(ok.iter().all(|r| r.sample_weight == 4.0));
    let estimate: f32 = ok.iter().map(|r| r.sample_weight).sum();
    assert!(
        (estimate - 2000.0).abs() < 250.0,
        "estimated {estimate} of 2000"
    );
    for status in [500, 401, 403] {
        let kept: Vec<_> = c.rows.iter().filter(|r| r.status == Some(status)).collect();
        assert_eq!(kept.len(), 50, "every {status} kept");
        assert!(kept.iter().all(|r| r.sample_weight == 1.0));
    }
}

#[test]
fn path_templates_by_prefix_and_bounded_cardinality() {
    let mut requests = vec![get("/v1/users/alice/settings")];
    for i in 0..5 {
        requests.push(get(&format!("/static/page-{i}")));
    }
    let (c, kong) = run(
        Profile::from_env(),
        &[config(
            "{collector}",
            r#""paths":{"max_templates":2,"templates":[{"prefix":"/v1/users/","template":"/v1/users/{user}"}]}"#,
        )],
        &requests,
    );
    let paths: Vec<_> = c.rows.iter().map(|r| r.path.clone().unwrap()).collect();
    assert!(paths.contains(&"/v1/users/{user}".to_string()), "{paths:?}");
    // Two workers, two templates each: the third distinct path in each
    // worker is {other}.
    assert_eq!(
        paths.iter().filter(|p| *p == "{other}").count(),
        2,
        "{paths:?}"
    );
    let overflowed = kong.metrics()["pw:kong_looker:paths_overflowed"].value;
    assert!(overflowed >= 1, "overflow is counted: {overflowed}");
}

#[test]
fn hostile_inputs_are_bounded_and_never_trap() {
    let huge = "a".repeat(64 * 1024);
    let claims: serde_json::Map<String, serde_json::Value> = (0..10_000)
        .map(|i| (format!("c{i}"), serde_json::Value::from(i)))
        .collect();
    let mut claims = serde_json::Value::Object(claims);
    claims["sub"] = "many-claims".into();
    let big_token = traffic::jwt(&claims);
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let requests = vec![
        get("/v1/a")
            .header("x-huge", &huge)
            .header("user-agent", &huge),
        get("/v1/b").header("authorization", &format!("Bearer {big_token}")),
        get("/v1/c")
            .property("kong.router.route", nested.clone())
            .property("kong.route_id", "r-1"),
        get(&format!("/{}", "x/".repeat(20_000))),
        get("/v1/d")
            .header("authorization", "Bearer a.%%%.c")
            .header("x-consumer-groups", &",".repeat(50_000)),
        get("/v1/e")
            .property("ngx.request_time", "NaN")
            .property("ngx.upstream_response_time", "-, -, abc")
            .property("response.code", "99999"),
    ];
    let (c, kong) = run(Profile::Kong38, &[config("{collector}", "")], &requests);
    assert_eq!(c.rows.len(), requests.len(), "every request still recorded");
    assert!(kong.traps().is_empty());
    let b = &c
        .rows
        .iter()
        .find(|r| r.path.as_deref() == Some("/v1/b"))
        .unwrap();
    // Bigger than the token bound: read as nothing, not as an error.
    assert_eq!(b.subject, None);
}

#[test]
fn client_certificates_are_read_only_over_tls() {
    let with_cert = |scheme: &str| {
        let mut r = get("/v1/x")
            .property("ngx.ssl_client_s_dn", "CN=billing,O=Example")
            .property("ngx.ssl_client_fingerprint", "ab12cd")
            .property("connection.mtls", "true");
        r.headers.retain(|(n, _)| n != ":scheme");
        r.header(":scheme", scheme)
    };
    let row = one(Profile::from_env(), "", with_cert("https"));
    assert_eq!(
        (row.auth_method, row.trust),
        (Some("mtls"), Some("verified"))
    );
    assert_eq!(row.subject.as_deref(), Some("billing"));
    let row = one(Profile::from_env(), "", with_cert("http"));
    assert_eq!(
        row.auth_method, None,
        "no TLS, no certificate: the read is skipped"
    );
}

/// How much the filter's memory grows while 3,000 ever-new tokens, each
/// with about 10 KB of claims, pass through a chain with `extra` config.
fn growth_with_ever_new_large_tokens(extra: &str) -> usize {
    let sink = Sink::start().unwrap();
    let f = filter();
    let mut kong = Kong::builder(&f, Profile::from_env())
        .chain(&config(&sink.address(), extra))
        .build();
    let groups: Vec<String> = (0..32)
        .map(|g| format!("{g:03}-{}", "g".repeat(280)))
        .collect();
    let mut memory = Vec::new();
    for i in 0..3000 {
        let token =
            traffic::jwt(&serde_json::json!({"sub": format!("user-{i}"), "groups": groups}));
        assert!(token.len() < 16 * 1024);
        let out = kong.request(
            0,
            &get("/v1/x").header("authorization", &format!("Bearer {token}")),
        );
        assert_eq!(out.trap, None);
        if i % 500 == 499 {
            kong.advance(Duration::from_millis(200));
            memory.push(kong.memory_bytes(0));
        }
    }
    memory.last().unwrap() - memory[0]
}

#[test]
fn ever_new_tokens_with_large_claims_do_not_grow_memory() {
    // About 10 KB of claims per token, and as much in its identity's
    // groups: unbounded, 3,000 would hold 60 MB. The caches' default cap
    // is 12 MiB, and each may hold twice its share while it starts afresh.
    let growth = growth_with_ever_new_large_tokens("");
    assert!(growth <= 24 << 20, "memory grew by {growth} bytes");
    // A smaller cap is kept too: the default's caches alone grow past it.
    let growth = growth_with_ever_new_large_tokens(r#""max_cache_bytes":1048576"#);
    assert!(
        growth <= 3 << 20,
        "memory grew by {growth} bytes under a 1 MiB cap"
    );
}

/// nginx answered in its rewrite phase (a `return`, a redirect): the
/// headers phase never ran, and the log phase still reads the method, the
/// host, the path and the agent from the request's headers.
#[test]
fn a_request_answered_in_the_rewrite_phase_is_still_recorded_whole() {
    let row = one(
        Profile::from_env(),
        "",
        Request::new("DELETE", "/v1/users/12345?force=1")
            .header("Host", "api.example.com")
            .header("User-Agent", "curl/8.5.0")
            .header("x-consumer-username", "app-7")
            .property("ngx.request_length", "180")
            .property("ngx.bytes_sent", "240")
            .respond(301)
            .in_rewrite(),
    );
    assert_eq!(row.method.as_deref(), Some("DELETE"));
    assert_eq!(row.host.as_deref(), Some("api.example.com"));
    assert_eq!(row.path.as_deref(), Some("/v1/users/{id}"));
    assert_eq!(row.status, Some(301));
    assert_eq!(row.agent_name.as_deref(), Some("curl"));
    assert_eq!((row.request_bytes, row.response_bytes), (180, 240));
}

/// With `ai_model_header`, the model ai-proxy names in its response header
/// (and the semantic cache's status beside it) lands; without it, nothing is
/// read, and neither is proxy-cache's `X-Cache-Status` alone.
#[test]
fn the_llm_model_header_is_read_only_when_configured() {
    let ai = || {
        get("/llm/v1/chat/completions")
            .response_header("x-kong-llm-model", "openai/gpt-4o")
            .response_header("x-cache-status", "Miss")
    };
    let row = one(Profile::from_env(), r#""ai_model_header":true"#, ai());
    assert_eq!(row.ai_provider.as_deref(), Some("openai"));
    assert_eq!(row.ai_request_model.as_deref(), Some("gpt-4o"));
    assert_eq!(row.ai_cache_status.as_deref(), Some("miss"));
    assert_eq!((row.ai_calls, row.ai_total_tokens), (Some(0), Some(0)));
    let off = one(Profile::from_env(), "", ai());
    assert_eq!((off.ai_provider, off.ai_calls), (None, None));
    let cache_only = one(
        Profile::from_env(),
        r#""ai_model_header":true"#,
        get("/v1/orders").response_header("x-cache-status", "Hit"),
    );
    assert_eq!(
        (cache_only.ai_cache_status, cache_only.ai_calls),
        (None, None)
    );
}
