//! What the test host's sink received, decoded as one collector would.

use std::collections::{HashMap, HashSet};

use kong_looker_proto::reader::DecodedBatch;
use kong_looker_proto::{BatchReader, Dictionary, OwnedRow, wire};
use kong_looker_testkit::Received;

/// What a collector would make of the batches the sink received.
#[derive(Default)]
pub struct Collected {
    /// The batches, first copies only, in the order received.
    pub batches: Vec<DecodedBatch>,
    /// Their rows, in order.
    pub rows: Vec<OwnedRow>,
}

impl Collected {
    /// Decodes every `POST /v1/batches` in order, as one collector would:
    /// one dictionary per producer and generation, duplicates skipped.
    pub fn from(received: &[Received]) -> Collected {
        let reader = BatchReader::default();
        let mut dicts: HashMap<([u8; 16], u32), Dictionary> = HashMap::new();
        let mut seen = HashSet::new();
        let mut out = Collected::default();
        for r in received {
            assert_eq!(
                (r.method.as_str(), r.path.as_str()),
                ("POST", wire::BATCHES_PATH)
            );
            assert_eq!(r.header("content-type"), Some(wire::BATCH_CONTENT_TYPE));
            let batch = reader
                .decode(&r.body)
                .expect("the filter sends valid batches");
            if !seen.insert(batch.key()) {
                continue;
            }
            let dict = dicts
                .entry((batch.instance_id, batch.generation))
                .or_insert_with(|| Dictionary::new(batch.generation));
            dict.apply(&batch, reader.limits())
                .expect("definitions apply");
            out.rows.extend(
                batch
                    .rows(dict)
                    .expect("references resolve")
                    .map(|r| r.to_owned_row()),
            );
            out.batches.push(batch);
        }
        out
    }
}
