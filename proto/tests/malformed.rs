//! Malformed batches: each gets the error that names its problem, and none
//! panics or allocates what it merely claims.

use kong_looker_proto::v1::{self, Symbol, symbol};
use kong_looker_proto::{BatchReader, DecodeError, Dictionary, Limits, TableKind};
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};
use wasm_bindgen_test::wasm_bindgen_test;

const NOW: i64 = 1_767_614_460_000;

fn text(s: &str) -> Symbol {
    Symbol {
        value: Some(symbol::Value::Text(s.into())),
    }
}

/// A small valid batch, built field by field.
fn valid() -> v1::Batch {
    v1::Batch {
        schema_revision: 1,
        producer: Some(v1::Producer {
            instance_id: vec![9; 16],
            node_id: "node-1".into(),
            filter_version: "0.1.0".into(),
            kong_version: "3.9.1".into(),
        }),
        sequence: 4,
        cut_time_ms: NOW,
        drops: Some(v1::Drops {
            buffer_full: 2,
            ..Default::default()
        }),
        records: Some(v1::Records {
            count: 2,
            base_time_ms: NOW - 1000,
            end_delta_ms: vec![0, 3],
            endpoint: vec![1, 1],
            outcome: vec![1, 2],
            latency_total: vec![40, 2],
            latency_upstream: vec![5, 0],
            request_bytes: vec![300, 250],
            response_bytes: vec![2000, 90],
            identity: vec![1, 0],
            client: vec![4, 4],
            agent: vec![1, 0],
            request_id: vec![],
            trace_id: vec![],
            sample_weight: vec![],
            ai: None,
            client_inline: vec![],
        }),
        dictionary: Some(v1::Dictionary {
            generation: 0,
            strings_from: 1,
            strings: vec![
                text("orders-list"),
                text("/orders/{id}"),
                text("app-0001"),
                text("203.0.113.7"),
            ],
            endpoints_from: 1,
            endpoints: vec![v1::Endpoint {
                route_name: 1,
                path: 2,
                method: v1::Method::Get as i32,
                ..Default::default()
            }],
            identities_from: 1,
            identities: vec![v1::Identity {
                auth_method: v1::AuthMethod::KeyAuth as i32,
                trust: v1::Trust::Verified as i32,
                consumer_username: 3,
                ..Default::default()
            }],
            agents_from: 1,
            agents: vec![v1::Agent {
                category: v1::AgentCategory::Cli as i32,
                name: 0,
            }],
            outcomes_from: 1,
            outcomes: vec![
                v1::Outcome {
                    status: 200,
                    source: v1::ResponseSource::Upstream as i32,
                },
                v1::Outcome {
                    status: 401,
                    source: v1::ResponseSource::Kong as i32,
                },
            ],
        }),
    }
}

fn reader() -> BatchReader {
    BatchReader::new(Limits {
        now_ms: Some(NOW),
        ..Limits::default()
    })
}

fn read(batch: &v1::Batch) -> Result<usize, DecodeError> {
    let (batch, dict) = reader().decode_standalone(&batch.encode_to_vec())?;
    Ok(batch.rows(&dict)?.count())
}

fn err(mutate: impl FnOnce(&mut v1::Batch)) -> DecodeError {
    let mut batch = valid();
    mutate(&mut batch);
    read(&batch).expect_err("the mutated batch must be refused")
}

fn records(b: &mut v1::Batch) -> &mut v1::Records {
    b.records.as_mut().unwrap()
}

fn dict(b: &mut v1::Batch) -> &mut v1::Dictionary {
    b.dictionary.as_mut().unwrap()
}

#[wasm_bindgen_test(unsupported = test)]
fn the_valid_batch_reads() {
    assert_eq!(read(&valid()), Ok(2));
    let (batch, dict) = reader()
        .decode_standalone(&valid().encode_to_vec())
        .unwrap();
    let rows: Vec<_> = batch.rows(&dict).unwrap().collect();
    assert_eq!(rows[0].started_at_ms, NOW - 1000 - 20);
    assert_eq!(rows[0].latency_upstream_us, Some(19_000));
    assert_eq!(rows[1].status, Some(401));
    assert_eq!(rows[1].response_source, Some("kong"));
    assert_eq!(rows[0].consumer_username, Some("app-0001"));
    assert_eq!(batch.drops.buffer_full, 2);
}

#[wasm_bindgen_test(unsupported = test)]
fn every_truncation_is_an_error() {
    let bytes = valid().encode_to_vec();
    for cut in 0..bytes.len() {
        let e = reader()
            .decode_standalone(&bytes[..cut])
            .map(|_| ())
            .expect_err("truncated");
        assert!(
            matches!(
                e,
                DecodeError::Protobuf(_) | DecodeError::Missing(_) | DecodeError::Invalid { .. }
            ),
            "cut at {cut}: {e}"
        );
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn a_wrong_wire_type_is_malformed() {
    let mut bytes = Vec::new();
    encode_key(3, WireType::LengthDelimited, &mut bytes);
    encode_varint(1, &mut bytes);
    bytes.push(1);
    let e = reader().decode(&bytes).unwrap_err();
    assert!(
        matches!(&e, DecodeError::Protobuf(m) if m.contains("wire type")),
        "{e}"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn a_huge_length_is_malformed_without_allocating_it() {
    let mut bytes = Vec::new();
    encode_key(6, WireType::LengthDelimited, &mut bytes);
    encode_varint(1 << 62, &mut bytes);
    bytes.extend_from_slice(&[0; 8]);
    let e = reader().decode(&bytes).unwrap_err();
    assert!(matches!(e, DecodeError::Protobuf(_)), "{e}");
}

#[wasm_bindgen_test(unsupported = test)]
fn invalid_utf8_is_malformed_and_names_the_field() {
    let mut batch = valid();
    dict(&mut batch).strings[0] = text("XXXX");
    let mut bytes = batch.encode_to_vec();
    let at = bytes.windows(4).position(|w| w == b"XXXX").unwrap();
    bytes[at] = 0xff;
    let e = reader().decode(&bytes).unwrap_err();
    assert!(
        matches!(&e, DecodeError::Protobuf(m) if m.contains("UTF-8") && m.contains("Dictionary.strings")),
        "{e}"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn the_body_limit_is_enforced_before_parsing() {
    let small = BatchReader::new(Limits {
        max_batch_bytes: 10,
        ..Limits::default()
    });
    let e = small.decode(&valid().encode_to_vec()).unwrap_err();
    assert!(matches!(e, DecodeError::TooLarge { max: 10, .. }), "{e}");
}

#[wasm_bindgen_test(unsupported = test)]
fn header_errors_name_the_field() {
    assert_eq!(
        err(|b| b.schema_revision = 0),
        DecodeError::Missing("schema_revision")
    );
    assert!(matches!(
        err(|b| b.schema_revision = 4),
        DecodeError::UnsupportedRevision {
            got: 4,
            supported: 3
        }
    ));
    assert_eq!(err(|b| b.producer = None), DecodeError::Missing("producer"));
    assert_eq!(
        err(|b| b.dictionary = None),
        DecodeError::Missing("dictionary")
    );
    let e = err(|b| b.producer.as_mut().unwrap().instance_id = vec![1; 15]);
    assert!(
        e.to_string()
            .contains("producer.instance_id: 15 bytes, expected 16"),
        "{e}"
    );
    let e = err(|b| b.producer.as_mut().unwrap().kong_version = "9".repeat(65));
    assert!(
        matches!(&e, DecodeError::TooLong { field, .. } if field == "producer.kong_version"),
        "{e}"
    );
    let e = err(|b| b.sequence = 0);
    assert!(e.to_string().contains("sequence"), "{e}");
    let e = err(|b| b.cut_time_ms = NOW + 2 * 3_600_000);
    assert!(
        matches!(&e, DecodeError::TimeOutOfRange { field, .. } if field == "cut_time_ms"),
        "{e}"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn column_errors_name_the_column() {
    let e = err(|b| records(b).outcome.pop().map(drop).unwrap_or(()));
    assert_eq!(
        e,
        DecodeError::ColumnLength {
            column: "outcome",
            len: 1,
            count: 2
        }
    );
    let e = err(|b| records(b).sample_weight = vec![1.0]);
    assert_eq!(
        e,
        DecodeError::ColumnLength {
            column: "sample_weight",
            len: 1,
            count: 2
        }
    );
    let e = err(|b| records(b).count = 100_001);
    assert!(
        matches!(e, DecodeError::TooManyRecords { count: 100_001, .. }),
        "{e}"
    );
    let e = err(|b| records(b).latency_total[1] = u64::MAX - 1);
    assert!(e.to_string().contains("records.latency_total[1]"), "{e}");
    let e = err(|b| records(b).latency_upstream[0] = u64::MAX);
    assert!(e.to_string().contains("records.latency_upstream[0]"), "{e}");
    let e = err(|b| records(b).response_bytes[1] = 1 << 50);
    assert!(e.to_string().contains("records.response_bytes[1]"), "{e}");
    let e = err(|b| records(b).sample_weight = vec![1.0, f32::NAN]);
    assert!(e.to_string().contains("records.sample_weight[1]"), "{e}");
    let e = err(|b| {
        records(b).request_id = vec![
            v1::Id::default(),
            v1::Id {
                value: Some(v1::id::Value::Binary(vec![1; 15])),
            },
        ]
    });
    assert!(
        e.to_string()
            .contains("records.request_id[1].binary: 15 bytes"),
        "{e}"
    );
    let e = err(|b| records(b).end_delta_ms[1] = i64::MAX);
    assert!(
        matches!(&e, DecodeError::TimeOutOfRange { field, .. } if field == "records.end_delta_ms[1]"),
        "{e}"
    );
    let e = err(|b| records(b).base_time_ms = NOW - 8 * 86_400_000);
    assert!(
        matches!(&e, DecodeError::TimeOutOfRange { field, .. } if field == "records.base_time_ms"),
        "{e}"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn out_of_range_references_name_the_table() {
    let e = err(|b| records(b).endpoint[1] = 2);
    assert_eq!(
        e,
        DecodeError::DanglingReference {
            field: "records.endpoint[1]".into(),
            table: TableKind::Endpoints,
            id: 2,
            len: 1
        }
    );
    let e = err(|b| records(b).client[0] = 99);
    assert!(
        matches!(
            e,
            DecodeError::DanglingReference {
                table: TableKind::Strings,
                id: 99,
                ..
            }
        ),
        "{e}"
    );
    let e = err(|b| dict(b).identities[0].consumer_groups = vec![1, 7]);
    assert!(
        e.to_string()
            .contains("dictionary.identities[0].consumer_groups refers to strings id 7"),
        "{e}"
    );
    let e = err(|b| dict(b).endpoints[0].host = 5);
    assert!(
        e.to_string()
            .contains("dictionary.endpoints[0] refers to strings id 5"),
        "{e}"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn dictionary_errors_name_the_table() {
    let e = err(|b| dict(b).strings_from = 0);
    assert!(e.to_string().contains("dictionary.strings_from"), "{e}");
    let e = err(|b| dict(b).outcomes_from = 3);
    assert_eq!(
        e,
        DecodeError::UnknownDefinitions {
            table: TableKind::Outcomes,
            from: 3,
            known: 0
        }
    );
    let e = err(|b| dict(b).strings[1] = Symbol { value: None });
    assert!(
        e.to_string().contains("dictionary.strings[1]: no value"),
        "{e}"
    );
    let e = err(|b| dict(b).strings[1] = text(&"x".repeat(2049)));
    assert!(matches!(e, DecodeError::TooLong { max: 2048, .. }), "{e}");
    let e = err(|b| {
        dict(b).strings[1] = Symbol {
            value: Some(symbol::Value::Uuid(vec![0; 4])),
        }
    });
    assert!(
        e.to_string()
            .contains("dictionary.strings[1].uuid: 4 bytes"),
        "{e}"
    );
    let e = err(|b| dict(b).endpoints[0].method = 77);
    assert!(
        e.to_string()
            .contains("dictionary.endpoints[0].method: unknown value 77"),
        "{e}"
    );
    let e = err(|b| dict(b).outcomes[0].status = 1000);
    assert!(
        e.to_string().contains("dictionary.outcomes[0].status"),
        "{e}"
    );
    let e = err(|b| dict(b).identities[0].consumer_groups = vec![1; 33]);
    assert!(e.to_string().contains("33 groups"), "{e}");
    let e = err(|b| dict(b).agents[0].category = -1);
    assert!(
        e.to_string().contains("dictionary.agents[0].category"),
        "{e}"
    );
    let few = BatchReader::new(Limits {
        max_definitions: 3,
        ..Limits::default()
    });
    let e = few.decode(&valid().encode_to_vec()).unwrap_err();
    assert!(
        matches!(e, DecodeError::TooManyDefinitions { count: 9, max: 3 }),
        "{e}"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn the_generation_must_match_and_the_dictionary_cap_holds() {
    let batch = reader().decode(&valid().encode_to_vec()).unwrap();
    let mut other = Dictionary::new(3);
    let e = other.apply(&batch, &Limits::default()).unwrap_err();
    assert_eq!(
        e,
        DecodeError::GenerationMismatch {
            batch: 0,
            reader: 3
        }
    );
    assert!(batch.rows(&other).is_err());
    let mut small = Dictionary::new(0);
    let e = small
        .apply(
            &batch,
            &Limits {
                max_dictionary_entries: 2,
                ..Limits::default()
            },
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            DecodeError::DictionaryFull {
                table: TableKind::Strings,
                len: 4,
                max: 2
            }
        ),
        "{e}"
    );
    assert_eq!(small, Dictionary::new(0));
}

#[wasm_bindgen_test(unsupported = test)]
fn error_codes_are_stable_words() {
    assert_eq!(
        err(|b| records(b).endpoint[1] = 2).code(),
        "dangling_reference"
    );
    assert_eq!(
        err(|b| b.schema_revision = 9).code(),
        "unsupported_revision"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn abandoned_sequences_are_read_up_to_their_bound() {
    // At the bound: read, and carried through as sent.
    let mut batch = valid();
    let at_bound: Vec<u64> = (1..=1000).collect();
    batch.drops.as_mut().unwrap().abandoned = at_bound.clone();
    let bytes = batch.encode_to_vec();
    assert_eq!(read(&batch), Ok(2));
    assert_eq!(reader().decode(&bytes).unwrap().drops.abandoned, at_bound);
    // One past it: refused, with a stable code.
    let e = err(|b| b.drops.as_mut().unwrap().abandoned = (1..=1001).collect());
    assert_eq!(
        e,
        DecodeError::TooManyAbandoned {
            count: 1001,
            max: kong_looker_proto::limits::MAX_ABANDONED,
        }
    );
    assert_eq!(e.code(), "too_many_abandoned");
}

/// A batch written before `drops.abandoned` existed, and one carrying it
/// read by a reader without the field: each is read as the other expects.
#[wasm_bindgen_test(unsupported = test)]
fn abandoned_sequences_are_invisible_to_a_reader_without_the_field() {
    /// `Drops` as revision 1 first defined it.
    #[derive(Clone, PartialEq, prost::Message)]
    struct OldDrops {
        #[prost(uint64, tag = "1")]
        buffer_full: u64,
        #[prost(uint64, tag = "2")]
        dispatch_failed: u64,
    }
    let new = v1::Drops {
        dispatch_failed: 30,
        abandoned: vec![3, 5, 300],
        ..Default::default()
    };
    let old = OldDrops::decode(new.encode_to_vec().as_slice()).unwrap();
    assert_eq!(
        old,
        OldDrops {
            buffer_full: 0,
            dispatch_failed: 30
        }
    );
    let back = v1::Drops::decode(old.encode_to_vec().as_slice()).unwrap();
    assert!(back.abandoned.is_empty());
    assert_eq!(back.dispatch_failed, 30);
}

/// Record 1 of the valid batch with AI figures, at revision 2.
fn with_ai(mutate: impl FnOnce(&mut v1::AiColumns)) -> v1::Batch {
    let mut b = valid();
    b.schema_revision = 2;
    let mut ai = v1::AiColumns {
        record_delta: vec![1],
        provider: vec![1],
        request_model: vec![2],
        prompt_tokens: vec![800],
        completion_tokens: vec![250],
        total_tokens_extra: vec![0],
        cost_micros: vec![4_500],
        llm_latency_ms: vec![1_201],
        calls: vec![1],
        ..Default::default()
    };
    mutate(&mut ai);
    records(&mut b).ai = Some(ai);
    b
}

fn ai_err(mutate: impl FnOnce(&mut v1::AiColumns)) -> String {
    read(&with_ai(mutate))
        .expect_err("the mutated batch must be refused")
        .to_string()
}

#[wasm_bindgen_test(unsupported = test)]
fn ai_figures_read_onto_their_record_only() {
    let (batch, dict) = reader()
        .decode_standalone(&with_ai(|_| {}).encode_to_vec())
        .unwrap();
    let rows: Vec<_> = batch.rows(&dict).unwrap().collect();
    assert_eq!(rows[0].ai_total_tokens, None);
    assert_eq!(rows[0].ai_provider, None);
    let r = &rows[1];
    assert_eq!(r.ai_provider, Some("orders-list"));
    assert_eq!(r.ai_request_model, Some("/orders/{id}"));
    assert_eq!(r.ai_response_model, None);
    assert_eq!(
        (
            r.ai_prompt_tokens,
            r.ai_completion_tokens,
            r.ai_total_tokens
        ),
        (Some(800), Some(250), Some(1050))
    );
    assert_eq!(r.ai_cost_micros, Some(4_500));
    assert_eq!(r.ai_llm_latency_ms, Some(1_200));
    assert_eq!(r.ai_time_to_first_token_ms, None);
    assert_eq!((r.ai_calls, r.ai_guardrail_blocks), (Some(1), Some(0)));
}

#[wasm_bindgen_test(unsupported = test)]
fn ai_errors_name_the_column() {
    let mut b = with_ai(|_| {});
    b.schema_revision = 1;
    assert!(
        read(&b)
            .unwrap_err()
            .to_string()
            .contains("needs schema_revision 2")
    );
    assert!(ai_err(|a| a.record_delta = vec![2]).contains("records.ai.record_delta[0]"));
    assert!(
        ai_err(|a| {
            *a = v1::AiColumns {
                record_delta: vec![0, 0],
                ..Default::default()
            };
        })
        .contains("records.ai.record_delta[1]")
    );
    assert!(ai_err(|a| a.provider = vec![1, 1]).contains("2 values for 1 records"));
    assert!(ai_err(|a| a.prompt_tokens = vec![1 << 41]).contains("records.ai.prompt_tokens[0]"));
    assert!(ai_err(|a| a.total_tokens_extra = vec![-2000]).contains("total_tokens_extra[0]"));
    assert!(ai_err(|a| a.cost_micros = vec![u64::MAX]).contains("cost_micros[0]"));
    assert!(ai_err(|a| a.llm_latency_ms = vec![86_400_002]).contains("longer than a day"));
    assert!(ai_err(|a| a.calls = vec![2_000_000]).contains("records.ai.calls[0]"));
    let dangling = ai_err(|a| a.mcp_tool = vec![99]);
    assert!(dangling.contains("strings"), "{dangling}");
}

/// The valid batch at revision 3: record 0 has an inline IPv6 address,
/// record 1 the dictionary's string 4 (shifted to 6).
fn with_inline() -> v1::Batch {
    let mut b = valid();
    b.schema_revision = 3;
    let r = records(&mut b);
    r.client = vec![2, 6];
    r.client_inline = "2001:db8::7"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets()
        .to_vec();
    b
}

#[wasm_bindgen_test(unsupported = test)]
fn inline_addresses_read_as_their_text_beside_shifted_ids() {
    let (batch, dict) = reader()
        .decode_standalone(&with_inline().encode_to_vec())
        .unwrap();
    let clients: Vec<_> = batch
        .rows(&dict)
        .unwrap()
        .map(|r| r.client_address)
        .collect();
    assert_eq!(clients, [Some("2001:db8::7"), Some("203.0.113.7")]);
    let mut b = with_inline();
    let r = records(&mut b);
    r.client = vec![1, 0];
    r.client_inline = vec![198, 51, 100, 9];
    let (batch, dict) = reader().decode_standalone(&b.encode_to_vec()).unwrap();
    let clients: Vec<_> = batch
        .rows(&dict)
        .unwrap()
        .map(|r| r.client_address)
        .collect();
    assert_eq!(clients, [Some("198.51.100.9"), None]);
}

#[wasm_bindgen_test(unsupported = test)]
fn inline_address_errors_name_the_column() {
    let inline_err = |mutate: fn(&mut v1::Batch)| {
        let mut b = with_inline();
        mutate(&mut b);
        read(&b).unwrap_err().to_string()
    };
    let e = inline_err(|b| b.schema_revision = 2);
    assert!(
        e.contains("records.client_inline: needs schema_revision 3"),
        "{e}"
    );
    let e = inline_err(|b| records(b).client = vec![2, 2]);
    assert!(e.contains("ends inside the address of record 1"), "{e}");
    let e = inline_err(|b| records(b).client = vec![1, 6]);
    assert!(e.contains("12 bytes left after the last address"), "{e}");
    let e = inline_err(|b| records(b).client = vec![2, 7]);
    assert!(e.contains("records.client or ai[1]"), "{e}");
    let e = inline_err(|b| {
        let r = records(b);
        *r = v1::Records {
            client_inline: std::mem::take(&mut r.client_inline),
            ..Default::default()
        };
    });
    assert!(e.contains("addresses in a batch without records"), "{e}");
}
