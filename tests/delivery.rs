//! Delivery as Kong 3.8 and 3.9 run it: one flusher per worker however
//! many chains tick, signed batches, retries under the same key when the
//! collector fails or is away, deadlines where Kong 3.8 never calls back,
//! and every loss counted, carried to the collector and exported as a
//! metric.

use std::time::Duration;

use kong_looker_proto::signing;
use kong_looker_testkit::{Answer, Kong, Profile, Request, Sink};
use kong_looker_testsupport::{Collected, config, filter};

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
    let profile = Profile::from_env();
    let mut kong = kong(profile, &chains, 2);
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
    assert!(
        c.batches
            .iter()
            .all(|b| b.kong_version == profile.kong_version())
    );
}

#[test]
fn a_failing_collector_gets_the_same_batch_again_until_it_answers() {
    for profile in Profile::ALL {
        let sink = Sink::start().unwrap();
        let mut failures = 3;
        sink.answer_with(move |_| {
            if failures > 0 {
                failures -= 1;
                Answer {
                    headers: vec![("retry-after".into(), "2".into())],
                    body: br#"{"error":"overloaded"}"#.to_vec(),
                    ..Answer::status(503)
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
    for profile in Profile::ALL {
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
                body: br#"{"error":"malformed"}"#.to_vec(),
                ..Answer::status(400)
            }
        } else {
            Answer::status(204)
        }
    });
    let mut kong = kong(Profile::from_env(), &[config(&sink.address(), "")], 1);
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
    let mut kong = kong(Profile::from_env(), &[config(&sink.address(), "")], 1);
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

/// The books of one run: what the filter captured (its metric, summed over
/// workers and instances), what the collector committed once, and the
/// drops it was told about. A collector commits what it answers 2xx, and
/// what it stored before its reply was lost (a reset or a late answer);
/// it refuses the rest.
struct Books {
    captured: u64,
    delivered: u64,
    reported_drops: u64,
    duplicates: usize,
}

fn books(kong: &Kong, sink: &Sink) -> Books {
    let received: Vec<_> = sink
        .received()
        .into_iter()
        .filter(|r| r.answered == 0 || (200..300).contains(&r.answered))
        .collect();
    let c = Collected::from(&received);
    let m = kong.metrics();
    Books {
        captured: m["pw:kong_looker:records_captured"].value as u64,
        delivered: c.rows.len() as u64,
        reported_drops: c
            .batches
            .iter()
            .map(|b| b.drops.buffer_full + b.drops.dispatch_failed + b.drops.capture_error)
            .sum(),
        duplicates: received.len() - c.batches.len(),
    }
}

fn settle(kong: &mut Kong, secs: u64) {
    for _ in 0..secs {
        kong.advance(Duration::from_secs(1));
    }
}

#[test]
fn normal_flow_across_workers_delivers_everything_once() {
    let sink = Sink::start().unwrap();
    let mut kong = kong(Profile::from_env(), &[config(&sink.address(), "")], 4);
    for round in 0..5 {
        traffic(&mut kong, 400, 1);
        kong.advance(Duration::from_millis(50 * round + 30));
    }
    settle(&mut kong, 2);
    let b = books(&kong, &sink);
    assert_eq!((b.captured, b.delivered, b.reported_drops), (2000, 2000, 0));
}

#[test]
fn a_collector_down_for_a_while_gets_everything_when_back() {
    let sink = Sink::start().unwrap();
    let mut down = 8;
    sink.answer_with(move |_| {
        if down > 0 {
            down -= 1;
            Answer::status(503)
        } else {
            Answer::status(204)
        }
    });
    let mut kong = kong(
        Profile::Kong38,
        &[config(&sink.address(), r#""timeout_ms":200"#)],
        2,
    );
    for _ in 0..4 {
        traffic(&mut kong, 100, 1);
        kong.advance(Duration::from_millis(500));
    }
    settle(&mut kong, 40);
    let b = books(&kong, &sink);
    assert_eq!((b.captured, b.delivered, b.reported_drops), (400, 400, 0));
}

#[test]
fn a_collector_that_always_fails_costs_counted_drops_only() {
    let sink = Sink::start().unwrap();
    sink.answer_with(|_| Answer::status(500));
    let mut kong = kong(
        Profile::from_env(),
        &[format!(
            r#"{{"collector":"{}","batch":{{"flush_interval_ms":100,"max_retry_age_ms":5000}}}}"#,
            sink.address()
        )],
        1,
    );
    traffic(&mut kong, 300, 1);
    settle(&mut kong, 30);
    let m = kong.metrics();
    assert_eq!(m["pw:kong_looker:records_captured"].value, 300);
    assert_eq!(
        m["pw:kong_looker:records_dropped_dispatch_failed"].value, 300,
        "all given up, all counted"
    );
    assert_eq!(m["pw:kong_looker:records_delivered"].value, 0);
    assert!(m["pw:kong_looker:batches_abandoned"].value >= 1);
    // When it recovers, the count reaches it, once the backoff the
    // failures earned (30 s at most) has run out.
    sink.answer_with(|_| Answer::status(204));
    traffic(&mut kong, 1, 1);
    settle(&mut kong, 31);
    let b = books(&kong, &sink);
    assert_eq!(b.delivered + b.reported_drops, b.captured);
}

#[test]
fn a_collector_slower_than_the_timeout_gets_one_copy_of_each_record() {
    for profile in Profile::ALL {
        let sink = Sink::start().unwrap();
        let mut slow = 2;
        sink.answer_with(move |_| {
            if slow > 0 {
                slow -= 1;
                // It stores the batch, but answers after the filter gave up.
                Answer::status(204).after(Duration::from_millis(600))
            } else {
                Answer::status(204)
            }
        });
        let mut kong = kong(
            profile,
            &[config(&sink.address(), r#""timeout_ms":200"#)],
            1,
        );
        traffic(&mut kong, 100, 1);
        settle(&mut kong, 20);
        let b = books(&kong, &sink);
        assert_eq!(
            (b.captured, b.delivered, b.reported_drops),
            (100, 100, 0),
            "{profile:?}"
        );
        assert!(
            b.duplicates >= 1,
            "{profile:?}: the retry duplicated a stored batch"
        );
    }
}

#[test]
fn a_lost_reply_makes_a_duplicate_that_the_batch_key_removes() {
    let sink = Sink::start().unwrap();
    let mut lose = true;
    sink.answer_with(move |_| {
        if std::mem::take(&mut lose) {
            Answer::reset()
        } else {
            Answer::status(204)
        }
    });
    let mut kong = kong(Profile::from_env(), &[config(&sink.address(), "")], 1);
    traffic(&mut kong, 100, 1);
    settle(&mut kong, 5);
    let received = sink.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].body, received[1].body, "same batch, same key");
    let b = books(&kong, &sink);
    assert_eq!((b.captured, b.delivered, b.duplicates), (100, 100, 1));
}

#[test]
fn sustained_load_with_the_collector_down_stays_in_bounds_and_counts_the_overflow() {
    let sink = Sink::start().unwrap();
    sink.answer_with(|_| Answer::status(503));
    let cap = 256 * 1024;
    let mut kong = kong(
        Profile::from_env(),
        &[format!(
            r#"{{"collector":"{}","timeout_ms":200,"max_buffer_bytes":{cap},"batch":{{"flush_interval_ms":100,"max_bytes":16384}}}}"#,
            sink.address()
        )],
        1,
    );
    let mut memory = Vec::new();
    for _ in 0..40 {
        traffic(&mut kong, 2000, 1);
        kong.advance(Duration::from_millis(200));
        memory.push(kong.memory_bytes(0));
    }
    // Linear memory never shrinks. The allocator settles within the first
    // half (about 1.4 MiB here, with a 256 KiB cap); after that it must not
    // grow at all, however long the load goes on.
    let settled = memory[20];
    assert!(
        memory[20..].iter().all(|m| *m == settled),
        "memory grew under the cap: {memory:?}"
    );
    assert!(settled <= memory[0] + 4 * cap, "{memory:?}");
    let m = kong.metrics();
    assert!(m["pw:kong_looker:records_dropped_buffer_full"].value > 0);
    assert!(m["pw:kong_looker:buffer_bytes"].value as usize <= cap + 16384);
    // The memory gauge is the instance's linear memory as the host sees it.
    assert_eq!(m["pw:kong_looker:memory_bytes"].value as usize, settled);
    sink.answer_with(|_| Answer::status(204));
    settle(&mut kong, 30);
    let b = books(&kong, &sink);
    assert_eq!(b.captured, 80_000);
    assert_eq!(
        b.delivered + b.reported_drops,
        b.captured,
        "every record delivered or counted"
    );
}

#[test]
fn a_reset_instance_is_a_new_producer_and_the_rest_is_accounted() {
    let sink = Sink::start().unwrap();
    let mut kong = kong(Profile::from_env(), &[config(&sink.address(), "")], 1);
    traffic(&mut kong, 50, 1);
    settle(&mut kong, 1);
    // Captured but not yet cut when the instance goes.
    traffic(&mut kong, 30, 1);
    kong.reset_instance(0);
    traffic(&mut kong, 20, 1);
    settle(&mut kong, 2);
    let c = Collected::from(&sink.received());
    let instances: std::collections::HashSet<_> = c.batches.iter().map(|b| b.instance_id).collect();
    assert_eq!(instances.len(), 2, "the new instance is a new producer");
    assert_eq!(
        c.rows.len(),
        70,
        "the 30 held by the lost instance are the gap the collector flags"
    );
    // Metrics are pushed on ticks, so the lost instance's last counts went
    // with it: Kong's counter says 70, like the collector.
    assert_eq!(kong.metrics()["pw:kong_looker:records_captured"].value, 70);
}

#[test]
fn the_reference_mix_costs_at_most_24_bytes_per_record_on_the_wire() {
    use kong_looker_proto::mix::{Mix, MixParams};
    let sink = Sink::start().unwrap();
    // The default batching: 1,000 records, 256 KiB or one second.
    let chains = kong_looker_testsupport::traffic::default_batching_chains(&sink.address());
    let mut kong = kong(Profile::from_env(), &chains, 2);
    let mut mix = Mix::new(MixParams::default());
    let requests = mix.take_requests(80_000);
    let mut warm = 0;
    for (i, r) in requests.iter().enumerate() {
        let (req, _) = kong_looker_testsupport::traffic::kong_request(&mix, r, Profile::from_env());
        kong.request(i, &req);
        if i % 2000 == 1999 {
            // 2,000 requests per second, as the mix runs.
            kong.advance(Duration::from_secs(1));
        }
        if i == 39_999 {
            settle(&mut kong, 2);
            warm = sink.received().len();
        }
    }
    settle(&mut kong, 3);
    let received = sink.received();
    // Steady state: the second half, after each worker's dictionary has
    // met most consumers and addresses (the first half costs more; both
    // are printed).
    let per_record = |batches: &[kong_looker_testkit::Received]| {
        let bytes: usize = batches.iter().map(|r| r.body.len()).sum();
        let rows = Collected::from(batches).rows.len();
        (bytes as f64 / rows as f64, rows)
    };
    let (first, first_rows) = per_record(&received[..warm]);
    let all = Collected::from(&received).rows.len();
    assert_eq!((first_rows, all), (40_000, 80_000));
    let bytes: usize = received[warm..].iter().map(|r| r.body.len()).sum();
    let steady = bytes as f64 / 40_000.0;
    eprintln!("first 40,000: {first:.2} bytes per record; next 40,000: {steady:.2}");
    assert!(steady <= 24.0, "{steady:.2} bytes per record");
}

#[test]
fn metrics_can_be_turned_off_for_kong_before_3_8() {
    let sink = Sink::start().unwrap();
    let mut kong = kong(
        Profile::from_env(),
        &[config(&sink.address(), r#""metrics":false"#)],
        1,
    );
    traffic(&mut kong, 10, 1);
    settle(&mut kong, 1);
    assert!(kong.metrics().is_empty(), "{:?}", kong.metrics().keys());
    assert_eq!(Collected::from(&sink.received()).rows.len(), 10);
}

#[test]
fn a_collector_on_a_unix_socket() {
    let path = std::env::temp_dir().join(format!("kong-looker-sink-{}.sock", std::process::id()));
    let sink = Sink::start_unix(&path).unwrap();
    assert!(sink.address().starts_with("unix:/"));
    let mut kong = kong(Profile::Kong38, &[config(&sink.address(), "")], 1);
    traffic(&mut kong, 25, 1);
    settle(&mut kong, 1);
    let received = sink.received();
    assert_eq!(Collected::from(&received).rows.len(), 25);
    assert_eq!(
        received[0].header("host"),
        Some("localhost"),
        "a unix collector's Host"
    );
}

#[test]
fn chains_with_their_own_keys_are_producers_of_their_own_and_all_land() {
    let sink = Sink::start().unwrap();
    let chains = [
        config(&sink.address(), r#""signing_key":"the-first-chain-key""#),
        config(&sink.address(), r#""signing_key":"the-second-chain-key""#),
    ];
    let mut kong = kong(Profile::from_env(), &chains, 1);
    traffic(&mut kong, 400, 2);
    kong.advance(Duration::from_secs(2));
    let received = sink.received();
    let c = Collected::from(&received);
    assert_eq!(c.rows.len(), 400, "every chain's records land");
    let producers: std::collections::HashSet<_> = c.batches.iter().map(|b| b.instance_id).collect();
    assert_eq!(
        producers.len(),
        2,
        "two lanes at one collector, two instance ids: one id would make \
         their dictionaries and sequences collide"
    );
}

#[test]
fn a_refused_signature_is_loud_in_the_log_and_the_metrics() {
    let sink = Sink::start().unwrap();
    sink.answer_with(|_| Answer::status(401));
    let mut kong = kong(
        Profile::from_env(),
        &[config(
            &sink.address(),
            r#""signing_key":"not-the-collectors-key""#,
        )],
        1,
    );
    traffic(&mut kong, 50, 1);
    kong.advance(Duration::from_secs(60));
    let m = kong.metrics();
    let refused = m["pw:kong_looker:batches_unauthorized"].value;
    assert!(refused >= 3, "retried and counted: {refused}");
    let lines: Vec<_> = kong
        .logs()
        .into_iter()
        .filter(|l| l.message.contains("refused this chain's signature (401)"))
        .collect();
    assert!(!lines.is_empty(), "the operator is told why");
    assert!(
        (lines.len() as i64) < refused,
        "repeats are held back: {} lines for {refused} refusals",
        lines.len()
    );
    assert!(
        lines
            .iter()
            .all(|l| !l.message.contains("not-the-collectors-key")),
        "the key itself is never logged"
    );
}

#[test]
fn a_worker_ships_30000_records_a_second_with_one_call_in_flight_and_no_drop() {
    let sink = Sink::start().unwrap();
    let mut kong = kong(
        Profile::from_env(),
        &[config(
            &sink.address(),
            r#""signing_key":"a-signing-key-of-some-length""#,
        )],
        1,
    );
    // Three seconds at 30,000 requests/s: 3,000 per 100 ms tick.
    let paths: Vec<String> = (0..50).map(|i| format!("/v1/items/{i}")).collect();
    let mut sent = 0i64;
    for _ in 0..30 {
        for i in 0..3_000 {
            let out = kong.request(0, &Request::get(&paths[i % paths.len()]));
            assert_eq!((out.status, out.trap.as_deref()), (200, None));
            sent += 1;
        }
        kong.advance(Duration::from_millis(100));
    }
    kong.advance(Duration::from_secs(3));
    let m = kong.metrics();
    let value = |k: &str| m.get(&format!("pw:kong_looker:{k}")).map_or(0, |v| v.value);
    assert_eq!(value("records_captured"), sent);
    assert_eq!(value("records_delivered"), sent, "{m:?}");
    assert_eq!(value("records_dropped_buffer_full"), 0);
    assert_eq!(value("records_dropped_dispatch_failed"), 0);
    let calls = kong.dispatches();
    assert!(
        calls.windows(2).all(|w| w[0].at_ms != w[1].at_ms),
        "one call per tick"
    );
    assert_eq!(Collected::from(&sink.received()).rows.len() as i64, sent);
}

#[test]
fn at_high_cardinality_addresses_travel_inline_and_read_back_field_for_field() {
    use kong_looker_proto::mix::{Mix, MixParams};
    use kong_looker_testsupport::traffic;
    let profile = Profile::from_env();
    let sink = Sink::start().unwrap();
    let chains = traffic::chains(&sink.address(), r#""request_id":true"#);
    // One worker, so its dictionary meets enough traffic to measure that
    // few new addresses come back (two epochs of 16,384 records).
    let mut kong = kong(profile, &chains, 1);
    let mut mix = Mix::new(MixParams {
        consumers: 50_000,
        addresses: 200_000,
        request_ids: true,
        ..MixParams::default()
    });
    let mut expected = std::collections::HashMap::new();
    for (i, r) in mix.take_requests(45_000).iter().enumerate() {
        let (req, row) = traffic::kong_request(&mix, r, profile);
        expected.insert(r.request_id.clone().unwrap(), row);
        assert_eq!(kong.request(i, &req).trap, None);
        if i % 2000 == 1999 {
            kong.advance(Duration::from_secs(1));
        }
    }
    settle(&mut kong, 5);
    let received = sink.received();
    // The builder writes schema_revision first: 08 03 is revision 3.
    let inline: Vec<bool> = received
        .iter()
        .map(|r| r.body.starts_with(&[0x08, 3]))
        .collect();
    let late = &inline[inline.len() * 4 / 5..];
    assert!(
        late.iter().filter(|&&i| i).count() * 2 > late.len(),
        "most late batches carry addresses inline: {inline:?}"
    );
    let c = Collected::from(&received);
    assert_eq!(c.rows.len(), 45_000);
    for row in &c.rows {
        let id = row.request_id.clone().expect("request id sent");
        let want = expected.remove(&id).expect("each request once");
        let got = kong_looker_proto::OwnedRow {
            started_at_ms: 0,
            ..row.clone()
        };
        assert_eq!(got, want, "request {id}");
    }
}
