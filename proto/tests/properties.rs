//! Property tests: every record the builder accepts reads back as exactly
//! what was built (after the documented clamping), whatever its values.
//! Native only: proptest needs an OS clock and entropy.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{assert_row_matches, no_drops, producer};
use kong_looker_proto::builder::{BuilderOptions, FRAMING_MAX, InlineAddresses};
use kong_looker_proto::v1::{AgentCategory, AuthMethod, Method, ResponseSource, Trust};
use kong_looker_proto::{
    AgentRef, AiRef, BatchBuilder, BatchReader, Dictionary, IdentityRef, Memo, Record, RouteRef,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Owned {
    start_offset: i64,
    strings: Vec<String>,
    groups: Vec<String>,
    method: i32,
    status: u16,
    source: i32,
    total: u64,
    upstream: Option<u64>,
    sizes: (u64, u64),
    identity: Option<(i32, i32, bool)>,
    agent: Option<i32>,
    weight: f32,
    ai: Option<AiFigures>,
}

/// Tokens and cost, latencies, counts.
type AiFigures = ([u64; 4], [Option<u64>; 3], [u32; 4]);

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just(String::new()),
        3 => "[a-z0-9/{}._-]{1,24}",
        1 => any::<String>(),
        1 => "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        1 => "[0-9a-f]{32}",
        // Addresses: the builder may send these inline, and the odd forms
        // (leading zeros, upper case) must stay strings.
        2 => any::<std::net::IpAddr>().prop_map(|ip| ip.to_string()),
        1 => "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        1 => "[0-9A-F]{1,4}::[0-9a-f]{1,4}",
        // Past the 2,048-byte limit, with two-byte characters across it.
        1 => (2040usize..2060).prop_map(|n| format!("a{}", "é".repeat(n / 2))),
    ]
}

fn owned() -> impl Strategy<Value = Owned> {
    (
        (
            -600_000i64..600_000,
            prop::collection::vec(text(), 17),
            prop::collection::vec(text(), 0..40),
        ),
        (
            0i32..=10,
            prop_oneof![Just(0u16), 100u16..=999, any::<u16>()],
            0i32..=2,
        ),
        (
            prop_oneof![
                0u64..2_000_000,
                any::<u64>(),
                (0u64..100_000).prop_map(|m| m * 1000)
            ],
            prop::option::of(prop_oneof![0u64..2_000_000, any::<u64>()]),
        ),
        (
            prop_oneof![0u64..100_000, any::<u64>()],
            prop_oneof![0u64..100_000, any::<u64>()],
        ),
        prop::option::of((0i32..=10, 0i32..=2, any::<bool>())),
        prop::option::of(0i32..=11),
        prop_oneof![Just(1.0f32), 1.0f32..1000.0, any::<f32>()],
        prop::option::of((
            prop_oneof![
                prop::array::uniform4(0u64..100_000),
                prop::array::uniform4(any::<u64>())
            ],
            prop::array::uniform3(prop::option::of(prop_oneof![0u64..100_000, any::<u64>()])),
            prop::array::uniform4(prop_oneof![0u32..5, any::<u32>()]),
        )),
    )
        .prop_map(
            |(
                (start_offset, strings, groups),
                (method, status, source),
                (total, upstream),
                sizes,
                identity,
                agent,
                weight,
                ai,
            )| Owned {
                start_offset,
                strings,
                groups,
                method,
                status,
                source,
                total,
                upstream,
                sizes,
                identity,
                agent,
                weight,
                ai,
            },
        )
}

fn ai_ref(o: &Owned) -> Option<AiRef<'_>> {
    let s = |i: usize| o.strings[i].as_str();
    o.ai.map(|(n, ms, c)| AiRef {
        provider: s(1),
        request_model: s(3),
        response_model: s(5),
        request_mode: s(6),
        prompt_tokens: n[0],
        completion_tokens: n[1],
        total_tokens: n[2],
        cost_micros: n[3],
        llm_latency_ms: ms[0],
        time_to_first_token_ms: ms[1],
        cache_fetch_latency_ms: ms[2],
        cache_status: s(9),
        embeddings_model: s(12),
        guardrail_blocks: c[0],
        guardrail: s(13),
        mcp_tool_calls: c[1],
        mcp_tool: s(16),
        calls: c[2],
        unreadable: c[3],
    })
}

fn record<'a>(o: &'a Owned, groups: &'a [&'a str], ai: Option<&'a AiRef<'a>>) -> Record<'a> {
    let s = |i: usize| o.strings[i].as_str();
    Record {
        started_at_ms: 1_767_614_400_000 + o.start_offset,
        route: RouteRef {
            route_id: s(0),
            route_name: s(1),
            service_id: s(2),
            service_name: s(3),
            workspace: s(4),
        },
        method: Method::try_from(o.method).unwrap(),
        method_text: s(5),
        host: s(6),
        path: s(7),
        status: o.status,
        source: ResponseSource::try_from(o.source).unwrap(),
        latency_total_us: o.total,
        latency_upstream_us: o.upstream,
        request_bytes: o.sizes.0,
        response_bytes: o.sizes.1,
        identity: o.identity.map(|(auth, trust, anonymous)| IdentityRef {
            auth_method: AuthMethod::try_from(auth).unwrap(),
            trust: Trust::try_from(trust).unwrap(),
            consumer_id: s(8),
            consumer_username: s(9),
            consumer_custom_id: s(10),
            credential: s(11),
            consumer_groups: groups,
            subject: s(12),
            issuer: s(13),
            client_id: s(14),
            anonymous,
        }),
        client_address: s(15),
        agent: o.agent.map(|c| AgentRef {
            category: AgentCategory::try_from(c).unwrap(),
            name: s(16),
        }),
        request_id: s(0),
        trace_id: s(7),
        sample_weight: o.weight,
        ai,
        memo: Memo::default(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_valid_batch_decodes_to_what_was_built(records in prop::collection::vec(owned(), 1..60)) {
        // Addresses inline from the first record, so that both ways of
        // sending them are exercised.
        let mut builder = BatchBuilder::new(&producer(), BuilderOptions {
            hash_seed: 42,
            inline_addresses: InlineAddresses::Always,
            ..BuilderOptions::default()
        });
        let groups: Vec<Vec<&str>> = records.iter().map(|o| o.groups.iter().map(String::as_str).collect()).collect();
        // Records whose end lies over a day from the first one's are refused
        // (a capture error for the filter); everything else must append.
        let mut accepted = Vec::new();
        let mut base = None;
        let ais: Vec<Option<AiRef<'_>>> = records.iter().map(ai_ref).collect();
        for ((o, g), ai) in records.iter().zip(&groups).zip(&ais) {
            let r = record(o, g, ai.as_ref());
            let end = r.started_at_ms + (r.latency_total_us.min(86_400_000_000) / 1000) as i64;
            let base = *base.get_or_insert(end);
            match builder.append(&r) {
                Ok(()) => accepted.push((o, g, ai)),
                Err(kong_looker_proto::builder::AppendError::TimeOutOfRange { .. }) => {
                    prop_assert!((end - base).abs() > 86_400_000, "refused a record {} ms from the first", end - base);
                }
                Err(e) => return Err(TestCaseError::fail(e.to_string())),
            }
        }
        let expected_len = builder.encoded_len(1_767_614_460_000, &no_drops());
        let sealed = builder.seal(1_767_614_460_000, &no_drops());
        prop_assert_eq!(sealed.bytes.len(), expected_len);
        let reader = BatchReader::default();
        let (batch, dict) = reader.decode_standalone(&sealed.bytes).unwrap();
        let rows: Vec<_> = batch.rows(&dict).unwrap().collect();
        prop_assert_eq!(rows.len(), accepted.len());
        for (i, (row, (o, g, ai))) in rows.iter().zip(&accepted).enumerate() {
            assert_row_matches(row, &record(o, g, ai.as_ref()), i);
        }
    }

    #[test]
    fn the_payload_bounds_the_size_between_exact_sizings(
        records in prop::collection::vec(owned(), 1..60),
        always_inline in any::<bool>(),
        ack_after in 0usize..60,
    ) {
        // Measured inlining switches the client column to its shifted form
        // in mid-batch once 127 strings are defined; columns, ids, weights
        // and AI figures start late in some cases, definitions come and go.
        let mut builder = BatchBuilder::new(&producer(), BuilderOptions {
            hash_seed: 7,
            inline_addresses: if always_inline { InlineAddresses::Always } else { InlineAddresses::Measured },
            ..BuilderOptions::default()
        });
        let drops = kong_looker_proto::v1::Drops { capture_error: 3, abandoned: vec![9, 10], ..no_drops() };
        let groups: Vec<Vec<&str>> = records.iter().map(|o| o.groups.iter().map(String::as_str).collect()).collect();
        let ais: Vec<Option<AiRef<'_>>> = records.iter().map(ai_ref).collect();
        // (exact size, payload, epoch) after each append.
        let mut points: Vec<(usize, usize, u64)> = Vec::new();
        for (i, ((o, g), ai)) in records.iter().zip(&groups).zip(&ais).enumerate() {
            if i == ack_after && !builder.is_empty() {
                let epoch = builder.epoch();
                let sealed = builder.seal(1_767_614_460_000, &drops);
                builder.acknowledge(sealed.ack);
                prop_assert_ne!(builder.epoch(), epoch, "sealing starts a new epoch");
            }
            if builder.append(&record(o, g, ai.as_ref())).is_err() {
                continue;
            }
            // The cut time differs between sizings, as the clock moves.
            let cut = if i % 2 == 0 { 0 } else { 1_767_614_460_000 + i as i64 };
            let now = (builder.encoded_len(cut, &drops), builder.payload_len(), builder.epoch());
            for &(bytes, payload, _) in points.iter().filter(|p| p.2 == now.2) {
                prop_assert!(now.1 >= payload, "the payload shrank within an epoch");
                prop_assert!(
                    now.0 <= bytes + (now.1 - payload) + FRAMING_MAX,
                    "{} bytes, bound {} + {} + {}", now.0, bytes, now.1 - payload, FRAMING_MAX
                );
            }
            points.push(now);
        }
    }

    #[test]
    fn batches_stand_on_what_the_collector_acknowledged(
        records in prop::collection::vec(owned(), 1..120),
        cut_every in 1usize..12,
        ack_lag in 0usize..4,
        lose_at in prop::option::of(0usize..120),
    ) {
        // The collector commits every batch in order, but the producer hears
        // of it `ack_lag` batches late, so batches define again what earlier
        // ones did (from the definitions the builder keeps for that); at
        // `lose_at` the collector loses its dictionary and the producer
        // defines everything again.
        let mut builder = BatchBuilder::new(&producer(), BuilderOptions {
            hash_seed: 11,
            ..BuilderOptions::default()
        });
        let reader = BatchReader::default();
        let mut dict = Dictionary::new(builder.generation());
        let mut unheard = std::collections::VecDeque::new();
        let groups: Vec<Vec<&str>> = records.iter().map(|o| o.groups.iter().map(String::as_str).collect()).collect();
        let ais: Vec<Option<AiRef<'_>>> = records.iter().map(ai_ref).collect();
        let mut in_batch = Vec::new();
        for (i, ((o, g), ai)) in records.iter().zip(&groups).zip(&ais).enumerate() {
            if lose_at == Some(i) {
                dict = Dictionary::new(builder.generation());
                unheard.clear();
                builder.reset_acknowledgements();
            }
            if builder.append(&record(o, g, ai.as_ref())).is_ok() {
                in_batch.push((o, g, ai));
            }
            if (i + 1) % cut_every != 0 || builder.is_empty() {
                continue;
            }
            let sealed = builder.seal(1_767_614_460_000, &no_drops());
            let batch = reader.decode(&sealed.bytes).unwrap();
            if batch.generation != dict.generation() {
                dict = Dictionary::new(batch.generation);
            }
            dict.apply(&batch, reader.limits())
                .map_err(|e| TestCaseError::fail(format!("batch {}: {e}", sealed.sequence)))?;
            let rows: Vec<_> = batch.rows(&dict).unwrap().collect();
            prop_assert_eq!(rows.len(), in_batch.len());
            for (k, (row, (o, g, ai))) in rows.iter().zip(&in_batch).enumerate() {
                assert_row_matches(row, &record(o, g, ai.as_ref()), k);
            }
            in_batch.clear();
            unheard.push_back(sealed.ack);
            while unheard.len() > ack_lag {
                if let Some(ack) = unheard.pop_front() {
                    builder.acknowledge(ack);
                }
            }
        }
    }

    #[test]
    fn any_bytes_give_a_batch_or_an_error_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let reader = BatchReader::default();
        let _ = reader.decode_standalone(&bytes);
    }
}
