//! Kong's router, stood in for in the engine bench (`bench/engine.py
//! --routes`). In Kong every proxied request has matched a route, and a
//! filter that reads `kong.route_id` gets one; bare nginx has none, so the
//! bench would measure the read that finds nothing. Placed first in every
//! filtered location, this filter moves the route id that the bench's
//! requests carry in `x-bench-route` (the mix's own route for each
//! request, `testsupport/examples/wrk_requests.rs`) into `kong.route_id`,
//! and takes the header out, so that the filters after it see the request
//! as Kong would hand it to them. The no-op filter runs behind it too, so
//! what the bench subtracts still leaves only the filter it measures.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MapType};

/// The header the bench's requests carry their route id in.
const ROUTE_HEADER: &str = "x-bench-route";

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http))
    }
}

struct Http;

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        // Through `hostcalls`, whose errors are values: the trait's helpers
        // panic on one, and a panic here would fail the request.
        let headers = MapType::HttpRequestHeaders;
        if let Ok(Some(route)) = hostcalls::get_map_value_bytes(headers, ROUTE_HEADER) {
            // The dotted name in one path element, as the filters read it.
            hostcalls::set_property(vec!["kong.route_id"], Some(&route)).ok();
            hostcalls::set_map_value(headers, ROUTE_HEADER, None).ok();
        }
        Action::Continue
    }
}
