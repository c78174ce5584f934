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
}

impl Profile {
    /// The version string `kong.version` returns.
    pub fn kong_version(self) -> &'static str {
        match self {
            Profile::Kong38 => "3.8.1",
            Profile::Kong39 => "3.9.1",
        }
    }

    /// Whether a failed dispatch reaches `on_http_call_response`.
    pub fn calls_back_on_dispatch_failure(self) -> bool {
        self == Profile::Kong39
    }

    /// Whether `kong.route_name` and `kong.service_name` exist.
    pub fn has_route_and_service_names(self) -> bool {
        self == Profile::Kong39
    }
}
