//! The optional Looker datagroup trigger, against a local HTTP server that
//! checks the exact requests the Looker API 4.0 documents: a form-encoded
//! `POST /api/4.0/login`, then `PATCH /api/4.0/datagroups/{id}` with
//! `Authorization: token …` and a JSON `triggered_at`.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use kong_looker_testkit::sink::{Answer, Received, Sink};
use support::*;

fn json(status: u16, body: &str) -> Answer {
    Answer {
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
        ..Answer::status(status)
    }
}

fn start(store: &TestStore, looker: &Sink, dir: &std::path::Path, debounce: &str) -> Collector {
    let secret = dir.join("looker.secret");
    std::fs::write(&secret, "s3cr+t &=x\n").unwrap();
    Collector::start(
        &store.url(),
        &[
            "--looker-url",
            &format!("http://{}/", looker.address()),
            "--looker-client-id",
            "kl-client",
            "--looker-client-secret-file",
            secret.to_str().unwrap(),
            "--looker-datagroup-id",
            "42",
            "--looker-debounce-seconds",
            debounce,
        ],
    )
}

fn wait_for(sink: &Sink, n: usize) -> Vec<Received> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let got = sink.received();
        if got.len() >= n || std::time::Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn commits_trigger_the_datagroup_debounced_with_one_login() {
    let looker = Sink::start().unwrap();
    looker.answer_with(|r| match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/api/4.0/login") => json(
            200,
            r#"{"access_token":"T1","token_type":"Bearer","expires_in":3600}"#,
        ),
        ("PATCH", "/api/4.0/datagroups/42") => json(200, r#"{"id":"42","triggered_at":1}"#),
        _ => Answer::status(404),
    });
    let store = TestStore::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let c = start(&store, &looker, dir.path(), "2");
    let before = now_ms() / 1000;
    let mut p = TestProducer::new(50, false);
    // A burst of commits inside one debounce interval.
    for _ in 0..6 {
        let batch = p.batch(20);
        p.deliver(&c, batch, Duration::from_secs(10));
    }
    // A refused batch stores nothing and triggers nothing.
    assert_eq!(post_batch(&c, b"junk", KEY).status, 400);
    let got = wait_for(&looker, 3);
    std::thread::sleep(Duration::from_millis(2500));
    let got_after = looker.received();
    assert_eq!(got.len(), got_after.len(), "no trigger without new commits");
    let after = now_ms() / 1000;

    let login = &got[0];
    assert_eq!(
        (login.method.as_str(), login.path.as_str()),
        ("POST", "/api/4.0/login")
    );
    assert_eq!(
        login.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        String::from_utf8_lossy(&login.body),
        "client_id=kl-client&client_secret=s3cr%2Bt+%26%3Dx"
    );
    let patches: Vec<&Received> = got.iter().filter(|r| r.method == "PATCH").collect();
    // Leading trigger plus one trailing trigger for the burst; one login.
    assert_eq!(patches.len(), 2, "{got:#?}");
    assert_eq!(got.iter().filter(|r| r.path == "/api/4.0/login").count(), 1);
    for patch in patches {
        assert_eq!(patch.path, "/api/4.0/datagroups/42");
        assert_eq!(patch.header("authorization"), Some("token T1"));
        assert!(
            patch
                .header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
        let body: serde_json::Value = serde_json::from_slice(&patch.body).unwrap();
        let at = body["triggered_at"].as_i64().unwrap();
        assert!(
            (before..=after).contains(&at),
            "{at} outside {before}..={after}"
        );
        assert_eq!(body.as_object().unwrap().len(), 1);
    }
    assert_eq!(
        c.metric("kong_looker_collector_looker_triggers_total{reason=\"ok\"}"),
        2.0
    );
}

#[test]
fn an_expired_token_logs_in_again_and_failures_are_counted() {
    let looker = Sink::start().unwrap();
    let logins = Arc::new(AtomicU32::new(0));
    let seen = logins.clone();
    looker.answer_with(move |r| match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/api/4.0/login") => {
            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
            json(
                200,
                &format!(r#"{{"access_token":"T{n}","expires_in":3600}}"#),
            )
        }
        // The first token is refused, as after a revoked key.
        ("PATCH", _) if r.header("authorization") == Some("token T1") => {
            json(401, r#"{"message":"Requires authentication."}"#)
        }
        ("PATCH", _) => json(200, "{}"),
        _ => Answer::status(404),
    });
    let store = TestStore::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let c = start(&store, &looker, dir.path(), "0");
    let mut p = TestProducer::new(51, false);
    let batch = p.batch(20);
    p.deliver(&c, batch, Duration::from_secs(10));
    let got = wait_for(&looker, 4);
    let seq: Vec<(String, Option<String>)> = got
        .iter()
        .map(|r| {
            (
                r.method.clone(),
                r.header("authorization").map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        seq,
        vec![
            ("POST".into(), None),
            ("PATCH".into(), Some("token T1".into())),
            ("POST".into(), None),
            ("PATCH".into(), Some("token T2".into())),
        ]
    );
    assert_eq!(
        c.metric("kong_looker_collector_looker_triggers_total{reason=\"ok\"}"),
        1.0
    );

    // Looker down: the commit still succeeds, the failure is counted.
    looker.answer_with(|_| Answer::status(503));
    let batch = p.batch(20);
    p.deliver(&c, batch, Duration::from_secs(10));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while c.metric("kong_looker_collector_looker_triggers_total{reason=\"failed\"}") < 1.0 {
        assert!(std::time::Instant::now() < deadline, "failure not counted");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(store.count("SELECT count(*) FROM kong_looker_requests"), 40);
}
