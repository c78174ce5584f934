//! Bytes per record on the wire at production cardinality, and where they
//! go. Batches are cut as the outbox cuts them (1,000 records or one second
//! of traffic, whichever comes first) and every batch is acknowledged;
//! the steady state is the second half of a million records (2.8 hours of
//! traffic at 100 requests/s, 17 minutes at 1,000, 100 s at 10,000): at
//! low rates a shorter run measures the warm-up of 50,000 consumers. Request ids are off and client addresses are as the
//! default privacy setting leaves them (kept). The reference mix also runs
//! without inline addresses (revision 2, as before them); the higher
//! cardinalities run at dictionary caps of 1, 4 and 16 MiB (the default),
//! to show what the resets cost. The last column is the most the builder
//! held at once, counted by a global allocator.
//!
//! `cargo run --release -p kong-looker-proto --features mix --example wire_cardinality`

use kong_looker_proto::BatchBuilder;
use kong_looker_proto::builder::{BuilderOptions, InlineAddresses, Producer};
use kong_looker_proto::mix::{CARDINALITIES, Mix, MixParams};
use kong_looker_proto::v1::{self, Drops};
use prost::Message;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts the bytes the process holds, to report what the builder holds.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: as the caller promised for `layout`.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as the caller promised for `ptr` and `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Where a batch's bytes went.
#[derive(Default)]
struct Split {
    total: usize,
    records: usize,
    /// Record columns: (time, endpoint and outcome, latencies and sizes,
    /// identity, client, agent, the rest).
    columns: [usize; 7],
    /// Dictionary definitions: (address strings, other strings, endpoints,
    /// identities, agents and outcomes).
    dictionary: [usize; 5],
    resets: usize,
}

fn column<T>(f: impl Fn(&mut v1::Records) -> &mut T, from: &mut v1::Records) -> usize
where
    T: Default,
{
    let mut only = v1::Records::default();
    std::mem::swap(f(&mut only), f(from));
    only.encoded_len()
}

impl Split {
    fn add(&mut self, bytes: &[u8], records: usize) {
        self.total += bytes.len();
        self.records += records;
        let Ok(batch) = v1::Batch::decode(bytes) else {
            return;
        };
        if let Some(mut r) = batch.records {
            self.columns[0] += column(|r| &mut r.end_delta_ms, &mut r);
            self.columns[1] +=
                column(|r| &mut r.endpoint, &mut r) + column(|r| &mut r.outcome, &mut r);
            self.columns[2] += column(|r| &mut r.latency_total, &mut r)
                + column(|r| &mut r.latency_upstream, &mut r)
                + column(|r| &mut r.request_bytes, &mut r)
                + column(|r| &mut r.response_bytes, &mut r);
            self.columns[3] += column(|r| &mut r.identity, &mut r);
            self.columns[4] +=
                column(|r| &mut r.client, &mut r) + column(|r| &mut r.client_inline, &mut r);
            self.columns[5] += column(|r| &mut r.agent, &mut r);
            self.columns[6] += r.encoded_len();
        }
        if let Some(d) = batch.dictionary {
            for s in &d.strings {
                let address = matches!(&s.value, Some(v1::symbol::Value::Text(t))
                    if t.parse::<std::net::IpAddr>().is_ok());
                // Each definition is a length-delimited field: key, length, body.
                let len = s.encoded_len();
                let def = 1 + prost::length_delimiter_len(len) + len;
                self.dictionary[usize::from(!address)] += def;
            }
            let defs = |lens: Vec<usize>| -> usize {
                lens.into_iter()
                    .map(|l| 1 + prost::length_delimiter_len(l) + l)
                    .sum()
            };
            self.dictionary[2] += defs(d.endpoints.iter().map(Message::encoded_len).collect());
            self.dictionary[3] += defs(d.identities.iter().map(Message::encoded_len).collect());
            self.dictionary[4] += defs(d.agents.iter().map(Message::encoded_len).collect())
                + defs(d.outcomes.iter().map(Message::encoded_len).collect());
        }
    }
}

fn main() {
    println!(
        "| cardinality (consumers / addresses) | dictionary cap | inline addresses | requests/s | B/record | columns: time | endpoint+outcome | latencies+sizes | identity | client | agent | dictionary: addresses | other strings | endpoints | identities | agents+outcomes | header and framing | new generations | builder's memory, peak |"
    );
    println!(
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (name, consumers, addresses) in CARDINALITIES {
        let runs: &[(u64, bool)] = if consumers > 2_000 {
            &[(1, true), (4, true), (16, true)]
        } else {
            &[(16, true), (16, false)]
        };
        for (&(cap_mib, inline), rate) in runs
            .iter()
            .flat_map(|run| [100usize, 1_000, 10_000].map(move |r| (run, r)))
        {
            let mut mix = Mix::new(MixParams {
                consumers,
                addresses,
                rate_per_s: rate as f64,
                ..MixParams::default()
            });
            let producer = Producer {
                instance_id: [7; 16],
                node_id: "5b1a4b86-0f2e-4a3d-9b7c-2f55e6d1c0aa".into(),
                filter_version: env!("CARGO_PKG_VERSION").into(),
                kong_version: "3.10.0".into(),
            };
            let total = 1_000_000;
            let requests = mix.take_requests(total);
            let baseline = LIVE.load(Ordering::Relaxed);
            let mut builder = BatchBuilder::new(
                &producer,
                BuilderOptions {
                    max_dictionary_bytes: cap_mib << 20,
                    inline_addresses: if inline {
                        InlineAddresses::Measured
                    } else {
                        InlineAddresses::Never
                    },
                    ..BuilderOptions::default()
                },
            );
            let mut split = Split::default();
            let mut opened_ms = None;
            let mut in_batch = 0usize;
            let mut generation = 0;
            let mut seal = |builder: &mut BatchBuilder, n: usize, count: bool, now: i64| {
                let sealed = builder.seal(now, &Drops::default());
                if count {
                    split.add(&sealed.bytes, n);
                    if sealed.ack.generation != generation {
                        split.resets += 1;
                    }
                }
                generation = sealed.ack.generation;
                builder.acknowledge(sealed.ack);
            };
            let mut peak = 0usize;
            for (i, r) in requests.iter().enumerate() {
                let record = mix.record(r);
                let t = record.started_at_ms;
                let open = *opened_ms.get_or_insert(t);
                if in_batch == 1000 || (in_batch > 0 && t - open >= 1000) {
                    seal(&mut builder, in_batch, i >= total / 2, t);
                    in_batch = 0;
                    opened_ms = Some(t);
                }
                builder.append(&record).expect("append");
                in_batch += 1;
                if i % 1000 == 0 {
                    peak = peak.max(LIVE.load(Ordering::Relaxed).saturating_sub(baseline));
                }
            }
            seal(&mut builder, in_batch, true, 0);
            let per = |n: usize| n as f64 / split.records as f64;
            let cols: usize = split.columns.iter().sum();
            let dict: usize = split.dictionary.iter().sum();
            let [c0, c1, c2, c3, c4, c5, _] = split.columns;
            let [d0, d1, d2, d3, d4] = split.dictionary;
            println!(
                "| {name} ({consumers} / {addresses}) | {cap_mib} MiB | {} | {rate} | **{:.2}** | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.1} MiB |",
                if inline { "yes" } else { "no" },
                per(split.total),
                per(c0),
                per(c1),
                per(c2),
                per(c3),
                per(c4),
                per(c5),
                per(d0),
                per(d1),
                per(d2),
                per(d3),
                per(d4),
                per(split.total.saturating_sub(cols + dict)),
                split.resets,
                peak as f64 / f64::from(1 << 20),
            );
        }
    }
}
