//! Builder to reader over the reference mix: every field survives, sizes are
//! exact, and the session dictionary behaves as proto/README.md specifies.

mod common;

use common::{assert_row_matches, no_drops, producer};
use kong_looker_proto::builder::{BatchAck, BuilderOptions, InlineAddresses};
use kong_looker_proto::mix::{Mix, MixParams};
use kong_looker_proto::{BatchBuilder, BatchReader, DecodeError, Dictionary, Limits, TableKind};
use wasm_bindgen_test::wasm_bindgen_test;

const CUT: i64 = 1_767_614_460_000;

/// Encodes `batches` batches of `size` mix records, acknowledging each one
/// as a collector would, and checks every row against its record.
fn stream(params: MixParams, size: usize, batches: usize) -> (usize, usize) {
    let mut mix = Mix::new(params);
    let mut builder = BatchBuilder::new(&producer(), BuilderOptions::default());
    let reader = BatchReader::default();
    let mut dict = Dictionary::new(0);
    let (mut bytes, mut records) = (0, 0);
    for b in 0..batches {
        let requests = mix.take_requests(size);
        for request in &requests {
            builder.append(&mix.record(request)).unwrap();
        }
        let expected = builder.encoded_len(CUT, &no_drops());
        let sealed = builder.seal(CUT, &no_drops());
        assert_eq!(sealed.bytes.len(), expected, "encoded_len is exact");
        assert_eq!(sealed.sequence, b as u64 + 1);
        let batch = reader.decode(&sealed.bytes).unwrap();
        dict.apply(&batch, reader.limits()).unwrap();
        let rows: Vec<_> = batch.rows(&dict).unwrap().collect();
        assert_eq!(rows.len(), size);
        for (i, (row, request)) in rows.iter().zip(&requests).enumerate() {
            assert_row_matches(row, &mix.record(request), i);
        }
        builder.acknowledge(sealed.ack);
        bytes += sealed.bytes.len();
        records += size;
    }
    (bytes, records)
}

#[wasm_bindgen_test(unsupported = test)]
fn reference_mix_round_trips_field_for_field() {
    stream(MixParams::default(), 1000, 5);
    stream(
        MixParams {
            request_ids: true,
            seed: 7,
            ..MixParams::default()
        },
        300,
        3,
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn steady_state_meets_24_bytes_per_record_at_1000() {
    // Everything counted: every byte of every batch, dictionary included,
    // over a minute of traffic from a fresh producer.
    let (bytes, records) = stream(MixParams::default(), 1000, 120);
    let per_record = bytes as f64 / records as f64;
    assert!(per_record <= 24.0, "{per_record:.2} bytes per record");
}

#[wasm_bindgen_test(unsupported = test)]
fn unacknowledged_entries_are_defined_again_and_acknowledged_ones_are_not() {
    let mut mix = Mix::reference();
    let mut builder = BatchBuilder::new(&producer(), BuilderOptions::default());
    let reader = BatchReader::default();
    let mut fill = |builder: &mut BatchBuilder, n| {
        for r in mix.take_requests(n) {
            builder.append(&mix.record(&r)).unwrap();
        }
    };
    fill(&mut builder, 200);
    let first = builder.seal(CUT, &no_drops());
    fill(&mut builder, 200);
    // Not acknowledged yet: the second batch stands on its own.
    let second = builder.seal(CUT, &no_drops());
    let (_, alone) = reader.decode_standalone(&second.bytes).unwrap();
    assert!(alone.lens()[0] > 0);

    builder.acknowledge(first.ack);
    builder.acknowledge(second.ack);
    fill(&mut builder, 200);
    let third = builder.seal(CUT, &no_drops());
    // Acknowledged entries are not sent again, so on its own it dangles...
    let err = reader.decode_standalone(&third.bytes).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::UnknownDefinitions { .. } | DecodeError::DanglingReference { .. }
        ),
        "{err}"
    );
    // ...but resolves against the collector's copy.
    let mut dict = Dictionary::new(0);
    for sealed in [&first, &second, &third] {
        let batch = reader.decode(&sealed.bytes).unwrap();
        dict.apply(&batch, reader.limits()).unwrap();
        assert_eq!(batch.rows(&dict).unwrap().count(), 200);
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn a_collector_that_lost_the_dictionary_gets_it_all_again() {
    let mut mix = Mix::reference();
    let mut builder = BatchBuilder::new(&producer(), BuilderOptions::default());
    let reader = BatchReader::default();
    for r in mix.take_requests(300) {
        builder.append(&mix.record(&r)).unwrap();
    }
    let first = builder.seal(CUT, &no_drops());
    builder.acknowledge(first.ack);
    for r in mix.take_requests(300) {
        builder.append(&mix.record(&r)).unwrap();
    }
    let mut pending = builder.seal(CUT, &no_drops());
    assert!(reader.decode_standalone(&pending.bytes).is_err());

    // A rewrite of the pending batch, and the acknowledgements forgotten.
    assert!(builder.redefine_all(&mut pending));
    builder.reset_acknowledgements();
    let (batch, dict) = reader.decode_standalone(&pending.bytes).unwrap();
    assert_eq!(batch.rows(&dict).unwrap().count(), 300);
    for r in mix.take_requests(10) {
        builder.append(&mix.record(&r)).unwrap();
    }
    let next = builder.seal(CUT, &no_drops());
    assert!(reader.decode_standalone(&next.bytes).is_ok());
}

#[wasm_bindgen_test(unsupported = test)]
fn a_collector_older_than_inline_addresses_gets_them_as_strings() {
    let mut mix = Mix::new(MixParams {
        consumers: 50_000,
        addresses: 200_000,
        ai_share: kong_looker_proto::mix::AI_SHARE,
        ..MixParams::default()
    });
    let mut builder = BatchBuilder::new(
        &producer(),
        BuilderOptions {
            inline_addresses: InlineAddresses::Always,
            ..BuilderOptions::default()
        },
    );
    let reader = BatchReader::default();
    let mut seal = |builder: &mut BatchBuilder| {
        for r in mix.take_requests(500) {
            builder.append(&mix.record(&r)).unwrap();
        }
        builder.seal(CUT, &no_drops())
    };
    let first = seal(&mut builder);
    builder.acknowledge(first.ack);
    let mut pending = [seal(&mut builder), seal(&mut builder)];
    assert!(pending.iter().all(|b| b.revision == 3), "addresses inline");

    // What a current collector reads from them, after the first batch.
    let mut dict = Dictionary::new(0);
    dict.apply(&reader.decode(&first.bytes).unwrap(), reader.limits())
        .unwrap();
    let mut current = dict.clone();
    let mut expected = Vec::new();
    for b in &pending {
        let batch = reader.decode(&b.bytes).unwrap();
        current.apply(&batch, reader.limits()).unwrap();
        expected.extend(batch.rows(&current).unwrap().map(|r| r.to_owned_row()));
    }

    // The older collector refused them: rewrite both, and inline no more.
    builder.stop_inlining();
    for b in &mut pending {
        assert!(builder.deinline(b));
        assert_eq!(b.revision, 2, "AI figures keep revision 2");
    }
    let mut got = Vec::new();
    for b in &pending {
        let batch = reader.decode(&b.bytes).unwrap();
        dict.apply(&batch, reader.limits()).unwrap();
        got.extend(batch.rows(&dict).unwrap().map(|r| r.to_owned_row()));
        builder.acknowledge(b.ack);
    }
    assert_eq!(got, expected);
    let later = seal(&mut builder);
    assert!(later.revision < 3, "no address inline after the refusal");
    let batch = reader.decode(&later.bytes).unwrap();
    dict.apply(&batch, reader.limits()).unwrap();
    assert_eq!(batch.rows(&dict).unwrap().count(), 500);
}

#[wasm_bindgen_test(unsupported = test)]
fn a_batch_of_a_dropped_generation_cannot_be_rewritten() {
    let mut mix = Mix::new(MixParams {
        addresses: 200_000,
        ..MixParams::default()
    });
    let options = BuilderOptions {
        max_dictionary_bytes: 64 * 1024,
        inline_addresses: InlineAddresses::Always,
        ..BuilderOptions::default()
    };
    let mut builder = BatchBuilder::new(&producer(), options);
    let mut batches: Vec<kong_looker_proto::SealedBatch> = Vec::new();
    while batches.len() < 2 || batches[0].ack.generation == builder.generation() {
        for r in mix.take_requests(400) {
            builder.append(&mix.record(&r)).unwrap();
        }
        batches.push(builder.seal(CUT, &no_drops()));
    }
    let mut old = batches.swap_remove(0);
    assert_eq!(old.revision, 3);
    let before = old.bytes.clone();
    assert!(!builder.deinline(&mut old));
    assert_eq!(old.bytes, before);
}

#[wasm_bindgen_test(unsupported = test)]
fn without_acknowledgements_the_definitions_a_batch_carries_stay_bounded() {
    let options = BuilderOptions {
        max_pending_definitions: 16 * 1024,
        ..BuilderOptions::default()
    };
    let mut mix = Mix::new(MixParams {
        consumers: 50_000,
        addresses: 200_000,
        ..MixParams::default()
    });
    let mut builder = BatchBuilder::new(&producer(), options);
    let mut generations = std::collections::BTreeSet::new();
    for _ in 0..40 {
        for r in mix.take_requests(100) {
            builder.append(&mix.record(&r)).unwrap();
        }
        // The collector is away: nothing is acknowledged.
        let sealed = builder.seal(CUT, &no_drops());
        let definitions = sealed.bytes.len() - sealed.dictionary_offset;
        // What was pending before, plus what this batch's 100 records met.
        assert!(definitions < 16 * 1024 + 100 * 200, "{definitions} bytes");
        generations.insert(sealed.ack.generation);
    }
    assert!(generations.len() > 2, "new generations keep them bounded");
}

#[wasm_bindgen_test(unsupported = test)]
fn a_full_dictionary_starts_a_new_generation_with_small_ids() {
    let options = BuilderOptions {
        max_dictionary_bytes: 20_000,
        ..BuilderOptions::default()
    };
    let mut mix = Mix::reference();
    let mut builder = BatchBuilder::new(&producer(), options);
    let reader = BatchReader::default();
    let mut dicts: Vec<Dictionary> = Vec::new();
    let mut acks: Vec<BatchAck> = Vec::new();
    for _ in 0..6 {
        let requests = mix.take_requests(400);
        for r in &requests {
            builder.append(&mix.record(r)).unwrap();
        }
        let sealed = builder.seal(CUT, &no_drops());
        let batch = reader.decode(&sealed.bytes).unwrap();
        if dicts
            .last()
            .is_none_or(|d| d.generation() != batch.generation)
        {
            dicts.push(Dictionary::new(batch.generation));
        }
        let dict = dicts.last_mut().unwrap();
        dict.apply(&batch, reader.limits()).unwrap();
        let rows: Vec<_> = batch.rows(dict).unwrap().collect();
        assert_eq!(rows.len(), 400);
        // Field for field: no id the builder remembered (its memos, the
        // client addresses' among them) outlives its generation.
        for (i, (row, r)) in rows.iter().zip(&requests).enumerate() {
            assert_row_matches(row, &mix.record(r), i);
        }
        builder.acknowledge(sealed.ack);
        acks.push(sealed.ack);
    }
    assert!(dicts.len() >= 3, "rotated {} times", dicts.len() - 1);
    assert!(builder.dictionary_bytes() < 40_000);
    // An acknowledgement from an old generation changes nothing.
    builder.acknowledge(acks[0]);
}

#[wasm_bindgen_test(unsupported = test)]
fn a_redefinition_with_another_value_is_refused_and_nothing_changes() {
    let mut mix = Mix::reference();
    let reader = BatchReader::default();
    let requests = mix.take_requests(50);
    let mut a = BatchBuilder::new(&producer(), BuilderOptions::default());
    for r in &requests {
        a.append(&mix.record(r)).unwrap();
    }
    let batch_a = reader.decode(&a.seal(CUT, &no_drops()).bytes).unwrap();
    // The same producer id, but the entries interned in another order.
    let mut b = BatchBuilder::new(&producer(), BuilderOptions::default());
    for r in requests.iter().rev() {
        b.append(&mix.record(r)).unwrap();
    }
    let batch_b = reader.decode(&b.seal(CUT, &no_drops()).bytes).unwrap();
    let mut dict = Dictionary::new(0);
    dict.apply(&batch_a, &Limits::default()).unwrap();
    let before = dict.clone();
    let err = dict.apply(&batch_b, &Limits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::ConflictingDefinition {
                table: TableKind::Strings,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        dict, before,
        "a refused batch leaves the dictionary as it was"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn persisted_definitions_rebuild_the_same_dictionary() {
    let mut mix = Mix::reference();
    let mut builder = BatchBuilder::new(&producer(), BuilderOptions::default());
    let reader = BatchReader::default();
    let mut dict = Dictionary::new(0);
    let mut persisted = Vec::new();
    for _ in 0..3 {
        for r in mix.take_requests(500) {
            builder.append(&mix.record(&r)).unwrap();
        }
        let sealed = builder.seal(CUT, &no_drops());
        let batch = reader.decode(&sealed.bytes).unwrap();
        let mark = dict.mark();
        dict.apply(&batch, reader.limits()).unwrap();
        persisted.push(dict.definitions_since(mark));
        builder.acknowledge(sealed.ack);
    }
    let mut rebuilt = Dictionary::new(0);
    for d in &persisted {
        rebuilt.apply_definitions(d, reader.limits()).unwrap();
    }
    assert_eq!(rebuilt, dict);
}

#[wasm_bindgen_test(unsupported = test)]
fn a_batch_may_carry_only_drops() {
    let mut builder = BatchBuilder::new(&producer(), BuilderOptions::default());
    let drops = kong_looker_proto::v1::Drops {
        buffer_full: 7,
        dispatch_failed: 1,
        capture_error: 2,
        instance_reset: 0,
        abandoned: vec![],
    };
    let expected = builder.encoded_len(CUT, &drops);
    let sealed = builder.seal(CUT, &drops);
    assert_eq!(sealed.bytes.len(), expected);
    assert_eq!(sealed.record_count, 0);
    let (batch, dict) = BatchReader::default()
        .decode_standalone(&sealed.bytes)
        .unwrap();
    assert!(batch.is_empty());
    assert_eq!(batch.drops, drops);
    assert_eq!(batch.rows(&dict).unwrap().count(), 0);
    assert_eq!(batch.key(), (common::INSTANCE, 1));
}

#[wasm_bindgen_test(unsupported = test)]
fn abandoned_sequences_travel_packed_and_at_most_the_bound() {
    use kong_looker_proto::limits::MAX_ABANDONED;
    let mut builder = BatchBuilder::new(&producer(), BuilderOptions::default());
    let plain = kong_looker_proto::v1::Drops {
        dispatch_failed: 2000,
        ..Default::default()
    };
    let few = kong_looker_proto::v1::Drops {
        abandoned: vec![3, 4, 9],
        ..plain.clone()
    };
    // Packed: one tag and length, then a byte per small number.
    assert_eq!(
        builder.encoded_len(CUT, &few) - builder.encoded_len(CUT, &plain),
        2 + 3
    );
    let expected = builder.encoded_len(CUT, &few);
    let sealed = builder.seal(CUT, &few);
    assert_eq!(sealed.bytes.len(), expected);
    let batch = BatchReader::default().decode(&sealed.bytes).unwrap();
    assert_eq!(batch.drops, few);

    // Past the bound the builder keeps the first ones, and says so in its
    // size, so the batch still reads.
    let many = kong_looker_proto::v1::Drops {
        abandoned: (1..=MAX_ABANDONED as u64 + 50).collect(),
        ..plain.clone()
    };
    let expected = builder.encoded_len(CUT, &many);
    let sealed = builder.seal(CUT, &many);
    assert_eq!(sealed.bytes.len(), expected);
    let batch = BatchReader::default().decode(&sealed.bytes).unwrap();
    assert_eq!(batch.drops.abandoned.len(), MAX_ABANDONED);
    assert_eq!(batch.drops.abandoned, many.abandoned[..MAX_ABANDONED]);
    assert_eq!(batch.drops.dispatch_failed, 2000);
}

/// Memo keys that keep the contract change no byte: the same records with
/// and without them give the same batches, across new generations too (a
/// small dictionary cap forces several), where remembered ids are stale.
/// So do records that give their caller by key alone wherever the builder
/// says it knows the key, including keys that stand for no caller.
#[wasm_bindgen_test(unsupported = test)]
fn memo_keys_change_no_byte() {
    let params = MixParams {
        consumers: 3_000,
        ..MixParams::default()
    };
    let options = BuilderOptions {
        max_dictionary_bytes: 64 * 1024,
        ..BuilderOptions::default()
    };
    let mut mix = Mix::new(params);
    let mut plain = BatchBuilder::new(&producer(), options.clone());
    let mut keyed = BatchBuilder::new(&producer(), options.clone());
    let mut by_key = BatchBuilder::new(&producer(), options);
    let mut generations = std::collections::BTreeSet::new();
    let (mut hits, mut by_key_only, mut nobody_by_key) = (0, 0, 0);
    for _ in 0..30 {
        for request in mix.take_requests(500) {
            let record = mix.record(&request);
            plain.append(&record).unwrap();
            // Keys from what the endpoint and caller are made of, plus one;
            // a request without a consumer stands for no caller only where
            // its record has none (else it has no key).
            let endpoint = 1
                + ((request.route as u64) << 40 | (request.path as u64) << 20)
                + request.host as u64;
            let identity = match (request.consumer, record.identity) {
                (Some(c), _) => c as u64 + 1,
                (None, None) => u64::MAX,
                (None, Some(_)) => 0,
            };
            hits += usize::from(identity != 0);
            let keyed_record = kong_looker_proto::Record {
                memo: kong_looker_proto::Memo {
                    endpoint,
                    identity,
                    identity_by_key: false,
                    agent: request.agent.map_or(0, |a| a as u64 + 1),
                    client: 0,
                },
                ..record
            };
            keyed.append(&keyed_record).unwrap();
            if identity != 0 && by_key.knows_identity(identity) {
                by_key_only += 1;
                nobody_by_key += usize::from(record.identity.is_none());
                by_key
                    .append(&kong_looker_proto::Record {
                        identity: None,
                        memo: kong_looker_proto::Memo {
                            identity_by_key: true,
                            ..keyed_record.memo
                        },
                        ..keyed_record
                    })
                    .unwrap();
            } else {
                by_key.append(&keyed_record).unwrap();
            }
        }
        let a = plain.seal(CUT, &no_drops());
        let b = keyed.seal(CUT, &no_drops());
        let c = by_key.seal(CUT, &no_drops());
        assert_eq!(a, b);
        assert_eq!(a, c);
        generations.insert(a.ack.generation);
        plain.acknowledge(a.ack);
        keyed.acknowledge(b.ack);
        by_key.acknowledge(c.ack);
    }
    assert!(generations.len() > 2, "generations {generations:?}");
    assert!(hits > 10_000);
    assert!(by_key_only > 5_000, "{by_key_only} by key alone");
    assert!(
        nobody_by_key > 100,
        "{nobody_by_key} with no caller, by key"
    );
}

/// A record that gives its caller by a key the builder does not know is
/// refused and changes nothing: before the key was met, and after a new
/// generation forgot it.
#[wasm_bindgen_test(unsupported = test)]
fn a_caller_by_an_unknown_key_is_refused_and_nothing_changes() {
    let mut mix = Mix::new(MixParams::default());
    let request = mix
        .take_requests(1000)
        .into_iter()
        .find(|r| mix.record(r).identity.is_some())
        .unwrap();
    let record = mix.record(&request);
    let with_key = kong_looker_proto::Record {
        memo: kong_looker_proto::Memo {
            identity: 77,
            ..record.memo
        },
        ..record
    };
    let by_key = kong_looker_proto::Record {
        identity: None,
        memo: kong_looker_proto::Memo {
            identity_by_key: true,
            ..with_key.memo
        },
        ..with_key
    };
    // A cap that every sealed batch passes: each seal starts a new
    // generation.
    let mut builder = BatchBuilder::new(
        &producer(),
        BuilderOptions {
            max_dictionary_bytes: 1,
            ..BuilderOptions::default()
        },
    );
    assert!(!builder.knows_identity(77));
    assert!(!builder.knows_identity(0), "0 is no key");
    assert_eq!(
        builder.append(&by_key),
        Err(kong_looker_proto::builder::AppendError::IdentityUnknown)
    );
    assert!(builder.is_empty());
    builder.append(&with_key).unwrap();
    assert!(builder.knows_identity(77));
    builder.append(&by_key).unwrap();
    assert_eq!(builder.len(), 2);
    let sealed = builder.seal(CUT, &no_drops());
    let (batch, dict) = BatchReader::default()
        .decode_standalone(&sealed.bytes)
        .unwrap();
    let rows: Vec<_> = batch.rows(&dict).unwrap().collect();
    assert!(rows[0].auth_method.is_some());
    assert_eq!(rows[0], rows[1], "the same caller by key as given");
    // The new generation forgot the key.
    assert!(!builder.knows_identity(77));
    assert_eq!(
        builder.append(&by_key),
        Err(kong_looker_proto::builder::AppendError::IdentityUnknown)
    );
    assert!(builder.is_empty());
}

/// A client address the builder remembers comes back with its hash, and a
/// record that gives that hash makes the batch it makes without it.
#[wasm_bindgen_test(unsupported = test)]
fn a_client_address_by_the_builders_hash_makes_the_same_batch() {
    let mut mix = Mix::new(MixParams::default());
    let requests = mix.take_requests(200);
    let records: Vec<_> = requests.iter().map(|r| mix.record(r)).collect();
    let mut plain = BatchBuilder::new(&producer(), BuilderOptions::default());
    let mut hinted = BatchBuilder::new(&producer(), BuilderOptions::default());
    let mut known = 0;
    for record in &records {
        let text = record.client_address.as_bytes();
        let client = hinted.knows_client(text);
        assert_eq!(client, plain.knows_client(text), "one hash for both");
        known += usize::from(client.is_some());
        plain.append(record).unwrap();
        let hinted_record = kong_looker_proto::Record {
            memo: kong_looker_proto::Memo {
                client: client.unwrap_or(0),
                ..record.memo
            },
            ..*record
        };
        hinted.append(&hinted_record).unwrap();
    }
    // The reference mix's busiest addresses come back within 200 records.
    assert!(known > 0 && known < records.len(), "{known} known");
    assert!(plain.knows_client(b"192.0.2.250").is_none(), "never met");
    let (a, b) = (
        plain.seal(CUT, &no_drops()).bytes,
        hinted.seal(CUT, &no_drops()).bytes,
    );
    assert!(a == b, "the same batch");
}
