//! What a test sends through the host: one request with its headers,
//! Kong's properties and the upstream's response, and what came of it.

use std::collections::BTreeMap;

use crate::host::LocalResponse;

/// The listener Kong's proxy `server{}` block has: `server_name kong;` on
/// port 8000. ngx_wasm_module's `:authority` is this, not the Host header.
pub const KONG_LISTENER: &str = "kong:8000";

/// The HTTP version a client spoke, which decides how nginx presents the
/// request's header names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1: names keep the case the client sent.
    #[default]
    Http11,
    /// HTTP/2: names are lowercase on the wire, and the client's
    /// `:authority` becomes a `host` header.
    Http2,
}

/// One request through a filter chain.
#[derive(Clone, Debug)]
pub struct Request {
    /// Index of the chain (filter entry) the request goes through.
    pub chain: usize,
    /// Request headers as the client sent them, with the pseudo-headers
    /// `:method`, `:path` and `:scheme`. The filter sees names in the case
    /// sent on HTTP/1 and lowercase on HTTP/2; its `:authority` is always
    /// [`Request::listener`] (an `:authority` given here is the client's:
    /// dropped on HTTP/1, turned into `host` on HTTP/2, as nginx does).
    pub headers: Vec<(String, String)>,
    /// The client's HTTP version (default HTTP/1.1).
    pub protocol: Protocol,
    /// The server name and port that accepted the request, which
    /// ngx_wasm_module reports as `:authority` (default [`KONG_LISTENER`]).
    pub listener: String,
    /// Request body.
    pub body: Vec<u8>,
    /// Properties Kong provides for this request, by dotted name
    /// (`ngx.request_time`, `kong.route_id`, `ngx.request_length`, ...).
    pub properties: BTreeMap<String, Vec<u8>>,
    /// What the upstream answered.
    pub response: Response,
    /// How long the request takes: the clock moves this far between
    /// `on_http_request_headers` and the log phase.
    pub duration_ms: u64,
    /// nginx answered in its rewrite phase (a `return`, a redirect), before
    /// the access phase where ngx_wasm_module runs `on_request_headers`:
    /// the filter sees only the response and the log phase.
    pub answered_in_rewrite: bool,
    /// What Kong's AI plugins add to the serialized log entry (its `ai`
    /// section), for the hosts that read that entry (the plugin server,
    /// http-log). No filter can read it.
    pub log_ai: Option<serde_json::Value>,
}

/// The upstream's response.
#[derive(Clone, Debug)]
pub struct Response {
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Request {
    /// A `GET` for `path` on chain 0, answered 200.
    pub fn get(path: &str) -> Self {
        Request::new("GET", path)
    }

    /// A request with this method and path on chain 0, answered 200.
    pub fn new(method: &str, path: &str) -> Self {
        Request {
            chain: 0,
            headers: vec![
                (":method".into(), method.into()),
                (":path".into(), path.into()),
                (":scheme".into(), "http".into()),
                ("host".into(), "api.example.com".into()),
            ],
            protocol: Protocol::Http11,
            listener: KONG_LISTENER.into(),
            body: Vec::new(),
            properties: BTreeMap::new(),
            response: Response {
                status: 200,
                headers: Vec::new(),
                body: Vec::new(),
            },
            answered_in_rewrite: false,
            duration_ms: 0,
            log_ai: None,
        }
    }

    /// Kong's AI plugins log this `ai` section for the request.
    pub fn log_ai(mut self, section: serde_json::Value) -> Self {
        self.log_ai = Some(section);
        self
    }

    /// Through chain `chain`.
    pub fn on_chain(mut self, chain: usize) -> Self {
        self.chain = chain;
        self
    }

    /// Adds a request header, its name as the client sends it (nginx keeps
    /// that case on HTTP/1; see [`Protocol`]).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The client speaks HTTP/2: the filter sees lowercase header names.
    pub fn http2(mut self) -> Self {
        self.protocol = Protocol::Http2;
        self
    }

    /// The request arrived on this `server_name:port`, the filter's
    /// `:authority`.
    pub fn listener(mut self, server: &str) -> Self {
        self.listener = server.into();
        self
    }

    /// Sets a property.
    pub fn property(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.properties.insert(name.into(), value.into());
        self
    }

    /// The upstream answers with `status`.
    pub fn respond(mut self, status: u16) -> Self {
        self.response.status = status;
        self
    }

    /// Adds an upstream response header.
    pub fn response_header(mut self, name: &str, value: &str) -> Self {
        self.response
            .headers
            .push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// nginx answers it in its rewrite phase, so `on_request_headers`
    /// never runs (see [`Request::answered_in_rewrite`]).
    pub fn in_rewrite(mut self) -> Self {
        self.answered_in_rewrite = true;
        self
    }

    /// The request lasts `ms` milliseconds.
    pub fn lasting(mut self, ms: u64) -> Self {
        self.duration_ms = ms;
        self
    }

    /// nginx's `$request_time` (`ngx.request_time`) for a request of `ms`
    /// milliseconds: seconds with three decimals, its whole resolution.
    pub fn request_time_ms(self, ms: u64) -> Self {
        self.property("ngx.request_time", nginx_seconds(ms))
    }

    /// nginx's `$upstream_response_time` for one upstream try of `ms`
    /// milliseconds. nginx reads the clock for it apart from
    /// `$request_time`, so it may exceed that by 1 ms (never more).
    pub fn upstream_time_ms(self, ms: u64) -> Self {
        self.property("ngx.upstream_response_time", nginx_seconds(ms))
    }
}

/// Milliseconds as nginx prints its `*_time` variables (`"0.020"`).
pub fn nginx_seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// What happened to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The status the client got: the upstream's, the filter's local
    /// response, 500 when the filter trapped, or 0 when the worker crashed
    /// (nginx closes the connection without an answer).
    pub status: u16,
    /// The trap message, when the filter trapped or crashed the worker.
    pub trap: Option<String>,
    /// True when the filter did something that kills an nginx worker
    /// (SIGSEGV in ngx_wasm_module); see [`crate::Kong::crashes`].
    pub crashed: bool,
    /// The filter's local response, if it sent one.
    pub local_response: Option<LocalResponse>,
    /// True when a callback returned Pause.
    pub paused: bool,
}
