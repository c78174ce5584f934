//! Delivery as Kong 3.8 and 3.9 run it: one flusher per worker however
//! many chains tick, signed batches, retries under the same key when the
//! collector fails or is away, deadlines where Kong 3.8 never calls back,
//! and every loss counted, carried to the collector and exported as a
//! metric.

mod support;

use std::time::Duration;

use kong_looker_proto::signing;
use kong_looker_testkit::{Answer, Kong, Profile, Request, Sink};
use support::{Collected, config, filter};

const START_MS: u64 = 1_767_614_400_000;
const KEY: &str = "a-signing-key-of-some-length";

fn kong(profile: Profile, chains: &[String], workers: usize) -> Kong {
    let f = filter();
    let mut b = Kong::builder(&f, profile)
        .workers(workers)
        .start_at_ms(START_MS);
    for c in chains {
        b = b.chain(c);
    }
    b.build()
}

fn traffic(kong: &mut Kong, n: usize, chains: usize) {
    for i in 0..n {
        let out = kong.request(
            i,
            &Request::get(&format!("/v1/items/{i}")).on_chain(i % chains),
        );
        assert_eq!((out.status, out.trap.as_deref()), (200, None));
    }
}

#[test]
fn one_flusher_per_worker_and_signed_batches() {
    let sink = Sink::start().unwrap();
    let chains: Vec<String> = (0..3)
        .map(|i| {
            config(
                &sink.address(),
                &format!(r#""workspace":"t{i}","signing_key":"{KEY}""#),
            )
        })
        .collect();
    let mut kong = kong(Profile::Kong39, &chains, 2);
    traffic(&mut kong, 300, 3);
    kong.advance(Duration::from_millis(150));
    let received = sink.received();
    // Three roots tick in each worker; one batch per worker was sent.
    assert_eq!(received.len(), 2, "one batch per worker");
    for r in &received {
        let now_s = (START_MS / 1000) as i64;
        signing::verify(
            KEY.as_bytes(),
            r.header("authorization"),
            &r.body,
            now_s,
            300,
        )
        .expect("signed with the shared key");
        let forged = signing::verify(
            b"another-key-entirely!!",
            r.header("authorization"),
            &r.body,
            now_s,
            300,
        );
        assert_eq!(forged, Err(signing::SignatureError::Mismatch));
    }
    let c = Collected::from(&received);
    assert_eq!(c.rows.len(), 300);
    let producers: std::collections::HashSet<_> = c.batches.iter().map(|b| b.instance_id).collect();
    assert_eq!(producers.len(), 2, "one producer per worker instance");
    assert!(c.batches.iter().all(|b| b.kong_version.starts_with("3.9")));
}

#[test]
fn a_failing_collector_gets_the_same_batch_again_until_it_answers() {
    for profile in [Profile::Kong38, Profile::Kong39] {
        let sink = Sink::start().unwrap();
        let mut failures = 3;
        sink.answer_with(move |_| {
            if failures > 0 {
                failures -= 1;
                Answer {
                    status: 503,
                    headers: vec![("retry-after".into(), "2".into())],
                    body: br#"{"error":"overloaded"}"#.to_vec(),
                }
            } else {
                Answer::status(204)
            }
        });
        let mut kong = kong(profile, &[config(&sink.address(), "")], 1);
        traffic(&mut kong, 50, 1);
        kong.advance(Duration::from_secs(20));
        let received = sink.received();
        assert_eq!(
            received.len(),
            4,
            "{profile:?}: three refusals and a success"
        );
        assert!(
            received.windows(2).all(|w| w[0].body == w[1].body),
            "same batch, same bytes"
        );
        let times: Vec<u64> = kong.dispatches().iter().map(|d| d.at_ms).collect();
        assert!(
            times.windows(2).all(|w| w[1] - w[0] >= 2000),
            "Retry-After honoured: {times:?}"
        );
        assert_eq!(Collected::from(&received).rows.len(), 50);
        let m = kong.metrics();
        assert_eq!(m["pw:kong_looker:batches_failed"].value, 3);
        assert_eq!(m["pw:kong_looker:batches_retried"].value, 3);
        assert_eq!(m["pw:kong_looker:records_delivered"].value, 50);
    }
}

#[test]
fn an_unreachable_collector_is_retried_on_3_8_without_a_callback() {
    // A port nobody listens on: the call fails at once.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap().to_string();
    drop(free);
    for profile in [Profile::Kong38, Profile::Kong39] {
        let mut kong = kong(
            profile,
            &[format!(
                r#"{{"collector":"{addr}","timeout_ms":1000,"batch":{{"flush_interval_ms":100,"max_retry_age_ms":60000}}}}"#
            )],
            1,
        );
        traffic(&mut kong, 20, 1);
        kong.advance(Duration::from_secs(30));
        let sends = kong.dispatches().len();
        // 3.9 calls back with the failure; 3.8 never does, and the filter's
        // own deadline (timeout plus a second) drives the retries.
        assert!(sends >= 3, "{profile:?}: retried {sends} times");
        assert!(kong.traps().is_empty());
        assert!(
            !kong
                .logs()
                .iter()
                .any(|l| l.message.contains("config refused"))
        );
        assert_eq!(
            kong.metrics()["pw:kong_looker:records_dropped_dispatch_failed"].value,
            0,
            "not yet given up"
        );
    }
}

#[test]
fn a_batch_given_up_on_is_counted_and_the_count_reaches_the_collector() {
    let sink = Sink::start().unwrap();
    let mut refuse = true;
    sink.answer_with(move |_| {
        if refuse {
            refuse = false;
            Answer {
                status: 400,
                headers: Vec::new(),
                body: br#"{"error":"malformed"}"#.to_vec(),
            }
        } else {
            Answer::status(204)
        }
    });
    let mut kong = kong(Profile::Kong39, &[config(&sink.address(), "")], 1);
    traffic(&mut kong, 40, 1);
    kong.advance(Duration::from_millis(500));
    traffic(&mut kong, 10, 1);
    kong.advance(Duration::from_secs(2));
    let c = Collected::from(&sink.received()[1..]);
    assert_eq!(c.rows.len(), 10);
    let dropped: u64 = c.batches.iter().map(|b| b.drops.dispatch_failed).sum();
    assert_eq!(dropped, 40, "the refused batch's records are reported lost");
    assert_eq!(
        kong.metrics()["pw:kong_looker:records_dropped_dispatch_failed"].value,
        40
    );
}

#[test]
fn a_rebuilt_chain_starts_a_new_producer() {
    let sink = Sink::start().unwrap();
    let mut kong = kong(Profile::Kong39, &[config(&sink.address(), "")], 1);
    traffic(&mut kong, 10, 1);
    kong.advance(Duration::from_millis(500));
    kong.reconfigure(&[&config(&sink.address(), r#""workspace":"rebuilt""#)]);
    traffic(&mut kong, 10, 1);
    kong.advance(Duration::from_millis(500));
    let c = Collected::from(&sink.received());
    let producers: std::collections::HashSet<_> = c.batches.iter().map(|b| b.instance_id).collect();
    assert_eq!(producers.len(), 2, "a rebuilt instance is a new producer");
    assert!(
        c.batches.iter().all(|b| b.sequence == 1),
        "each starts at sequence 1"
    );
    assert_eq!(c.rows.len(), 20);
}
