//! What `make demo` runs until the collector exists (issue 6): the real
//! `dist/kong_looker.wasm` in the test host that imitates Kong 3.9 (two
//! workers), the reference traffic mix through it, its batches delivered
//! over real HTTP to a stand-in that records them, and a short report read
//! back with the shared codec.
//!
//! `make demo` (or `make build && cargo run --example filter_demo`)

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use kong_looker_proto::mix::{Mix, MixParams};
use kong_looker_testkit::{Kong, Profile, Sink};
use support::{Collected, traffic};

const REQUESTS: usize = 100_000;

fn main() {
    let sink = Sink::start().expect("a local HTTP port");
    let chains = traffic::chains(&sink.address(), "");
    let filter = support::filter();
    let mut b = Kong::builder(&filter, Profile::Kong39).workers(2);
    for c in &chains {
        b = b.chain(c);
    }
    let mut kong = b.build();
    let mut mix = Mix::new(MixParams::default());
    println!(
        "kong_looker.wasm in the test host (Kong 3.9 profile, 2 workers, {} chains)",
        chains.len()
    );
    println!(
        "sending {REQUESTS} reference-mix requests; batches go over HTTP to {}",
        sink.address()
    );
    for i in 0..REQUESTS {
        let req = mix.next_request();
        let (r, _) = traffic::kong_request(&mix, &req, Profile::Kong39);
        let out = kong.request(i, &r);
        assert!(out.trap.is_none(), "the filter trapped: {:?}", out.trap);
        if i % 2000 == 1999 {
            kong.advance(Duration::from_secs(1));
        }
        if i % 20_000 == 19_999 {
            println!("  {:>7} requests", i + 1);
        }
    }
    for _ in 0..3 {
        kong.advance(Duration::from_secs(1));
    }
    let received = sink.received();
    let bytes: usize = received.iter().map(|r| r.body.len()).sum();
    let c = Collected::from(&received);
    let m = kong.metrics();
    let metric = |n: &str| m.get(&format!("pw:kong_looker:{n}")).map_or(0, |m| m.value);

    println!();
    println!("pipeline");
    println!(
        "  captured {}, delivered {}, dropped {}",
        metric("records_captured"),
        c.rows.len(),
        metric("records_dropped_buffer_full")
            + metric("records_dropped_dispatch_failed")
            + metric("records_dropped_capture_error")
    );
    println!(
        "  {} batches, {:.1} bytes per record on the wire",
        received.len(),
        bytes as f64 / c.rows.len().max(1) as f64
    );

    let mut routes: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut methods: BTreeMap<&str, u64> = BTreeMap::new();
    let mut ai: BTreeMap<String, u64> = BTreeMap::new();
    for r in &c.rows {
        let e = routes
            .entry(r.route_name.clone().unwrap_or_default())
            .or_default();
        e.0 += 1;
        e.1 += u64::from(r.status.unwrap_or(0) >= 500);
        *methods
            .entry(r.auth_method.unwrap_or("anonymous"))
            .or_default() += 1;
        if r.agent_category.is_some_and(|c| c.starts_with("ai_")) {
            *ai.entry(r.agent_name.clone().unwrap_or_default())
                .or_default() += 1;
        }
    }
    let mut top: Vec<_> = routes.into_iter().collect();
    top.sort_by_key(|(_, (n, _))| std::cmp::Reverse(*n));
    println!();
    println!("top routes (requests, 5xx)");
    for (name, (n, errors)) in top.iter().take(5) {
        println!("  {name:<28} {n:>7} {errors:>6}");
    }
    println!();
    println!("auth methods");
    for (m, n) in &methods {
        println!("  {m:<28} {n:>7}");
    }
    println!();
    println!("AI agents");
    for (a, n) in &ai {
        println!("  {a:<28} {n:>7}");
    }
    println!();
    println!("This ran the filter in kong-looker's test host, which imitates Kong's");
    println!("ngx_wasm_module; it is not Kong. The collector and the Looker project are");
    println!("issues 6 and 7: until then the batches are read back here with the shared codec.");
}
