//! Cost per request in the test host (Wasmtime, as Kong runs filters), on
//! the reference traffic mix: the no-op filter, which measures the host
//! itself. `kong_looker.wasm` joins it side by side once the filter captures
//! (issue 4); its added cost is the difference.
//!
//! `cargo bench --bench host`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kong_looker_proto::mix::{Mix, Request as MixRequest};
use kong_looker_testkit::{Filter, Kong, Profile, Request, compile};

/// A request as Kong would present the reference-mix request `r`.
fn request(mix: &Mix, r: &MixRequest) -> Request {
    let route = &mix.routes()[r.route];
    let mut req = Request::new(
        &format!("{:?}", route.method).to_uppercase(),
        &route.paths[r.path].replace("{id}", "8412"),
    )
    .respond(r.status)
    .property("kong.route_id", route.route_id.as_str())
    .property("kong.service_id", route.service_id.as_str())
    .property("kong.route_name", route.route_name.as_str())
    .property("kong.service_name", route.service_name)
    .property(
        "ngx.request_time",
        format!("{:.3}", r.total_us as f64 / 1e6),
    )
    .property("ngx.remote_addr", mix.addresses()[r.address].as_str())
    .property("request.size", r.request_bytes.to_string())
    .property("response.size", r.response_bytes.to_string());
    if let Some(agent) = r.agent.and_then(|a| mix.agents().nth(a)) {
        req = req.header("user-agent", agent.user_agent);
    }
    req
}

fn host(c: &mut Criterion) {
    let noop =
        compile::wasip1_filter(&compile::own_filter("noop")).expect("build the no-op filter");
    let noop = Filter::load(noop).expect("load the no-op filter");
    let mut mix = Mix::reference();
    let requests: Vec<Request> = mix
        .take_requests(1000)
        .iter()
        .map(|r| request(&mix, r))
        .collect();
    let mut kong = Kong::builder(&noop, Profile::Kong39).chain("{}").build();
    let mut group = c.benchmark_group("host_request");
    group.throughput(criterion::Throughput::Elements(requests.len() as u64));
    group.bench_function("noop", |b| {
        b.iter(|| {
            for r in &requests {
                black_box(kong.request(0, r).status);
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(5));
    targets = host
}
criterion_main!(benches);
