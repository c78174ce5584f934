//! The Kong versions the host imitates, and how they differ for a filter.

/// A Kong release line, as ngx_wasm_module behaves in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Kong 3.8: a failed `dispatch_http_call` never calls back, and there
    /// are no `kong.route_name` / `kong.service_name` properties.
    Kong38,
    /// Kong 3.9: a failed dispatch calls `on_http_call_response` with zero
    /// sizes and a `:dispatch_status` pseudo-header; route and service names
    /// are properties.
    Kong39,
    /// Kong 3.10 (long-term support, the last release with WasmX): a newer
    /// ngx_wasm_module pin, which behaves as 3.9's for everything a filter
    /// touches (the engine tests run the filter in both builds); Kong's
    /// Prometheus plugin exports Proxy-Wasm metrics only with
    /// `wasm_metrics` on.
    Kong310,
}

impl Profile {
    /// Every release line with WasmX that the filter supports, oldest first.
    pub const ALL: [Profile; 3] = [Profile::Kong38, Profile::Kong39, Profile::Kong310];

    /// The profile named by `KONG_LOOKER_TEST_KONG` (`3.8`, `3.9`, `3.10`),
    /// or 3.9 when it is unset: tests written for one release run on
    /// another by setting it (`make test` runs the filter's on 3.10 too).
    /// An unknown value is a mistake in the test run and panics.
    pub fn from_env() -> Profile {
        match std::env::var("KONG_LOOKER_TEST_KONG").as_deref() {
            Err(_) | Ok("3.9") => Profile::Kong39,
            Ok("3.8") => Profile::Kong38,
            Ok("3.10") => Profile::Kong310,
            Ok(other) => panic!("KONG_LOOKER_TEST_KONG={other}: give 3.8, 3.9 or 3.10"),
        }
    }

    /// The version string `kong.version` returns.
    pub fn kong_version(self) -> &'static str {
        match self {
            Profile::Kong38 => "3.8.1",
            Profile::Kong39 => "3.9.1",
            Profile::Kong310 => "3.10.0.0",
        }
    }

    /// Whether a failed dispatch reaches `on_http_call_response`.
    pub fn calls_back_on_dispatch_failure(self) -> bool {
        self != Profile::Kong38
    }

    /// Whether `kong.route_name` and `kong.service_name` exist.
    pub fn has_route_and_service_names(self) -> bool {
        self != Profile::Kong38
    }
}
