//! The whole request path of both ingest endpoints, store included: the
//! router over a real SQLite store, fed arbitrary bodies. Nothing may
//! panic or answer 500; every refusal is a 4xx with a JSON reason.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use kong_looker_collector::api::Gate;
use kong_looker_collector::pipeline::CommitterConfig;
use kong_looker_collector::server::{App, Settings};
use kong_looker_core::capture::privacy::AddressMode;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

fn app() -> &'static (tokio::runtime::Runtime, axum::Router) {
    static APP: OnceLock<(tokio::runtime::Runtime, axum::Router)> = OnceLock::new();
    APP.get_or_init(|| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = std::env::temp_dir().join(format!("kong-looker-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let settings = Settings {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            store: format!("sqlite:{}", dir.join("fuzz.sqlite").display())
                .parse()
                .unwrap(),
            // Unsigned, so that inputs reach the decoder.
            hmac_key: Gate::Open,
            http_log_token: Gate::Open,
            max_body_bytes: 1 << 20,
            max_skew_s: 300,
            max_age: Duration::from_secs(u64::MAX / 4000),
            committer: CommitterConfig::default(),
            commit_timeout: Duration::from_secs(30),
            max_inflight_bytes: 64 << 20,
            client_address: AddressMode::Keep,
            hash_key: None,
            tls: None,
            looker: None,
        };
        let router = rt.block_on(App::start(&settings)).unwrap().router;
        (rt, router)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let (path, content_type) = if selector & 1 == 0 {
        ("/v1/batches", "application/x-protobuf")
    } else {
        ("/v1/kong/http-log", "application/json")
    };
    let (rt, router) = app();
    let request = Request::post(path)
        .header("content-type", content_type)
        .body(Body::from(body.to_vec()))
        .unwrap();
    let response = rt.block_on(router.clone().oneshot(request)).unwrap();
    let status = response.status().as_u16();
    assert!(
        matches!(status, 204 | 400 | 409 | 413),
        "{path}: unexpected status {status}"
    );
});
