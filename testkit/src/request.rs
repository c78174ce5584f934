//! What a test sends through the host: one request with its headers,
//! Kong's properties and the upstream's response, and what came of it.

use std::collections::BTreeMap;

use crate::host::LocalResponse;

/// One request through a filter chain.
#[derive(Clone, Debug)]
pub struct Request {
    /// Index of the chain (filter entry) the request goes through.
    pub chain: usize,
    /// Request headers, pseudo-headers (`:method`, `:path`, `:authority`,
    /// `:scheme`) included.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Vec<u8>,
    /// Properties Kong provides for this request, by dotted name
    /// (`ngx.request_time`, `kong.route_id`, `request.size`, ...).
    pub properties: BTreeMap<String, Vec<u8>>,
    /// What the upstream answered.
    pub response: Response,
    /// How long the request takes: the clock moves this far between
    /// `on_http_request_headers` and the log phase.
    pub duration_ms: u64,
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
                (":authority".into(), "api.example.com".into()),
                ("host".into(), "api.example.com".into()),
            ],
            body: Vec::new(),
            properties: BTreeMap::new(),
            response: Response {
                status: 200,
                headers: Vec::new(),
                body: Vec::new(),
            },
            duration_ms: 0,
        }
    }

    /// Through chain `chain`.
    pub fn on_chain(mut self, chain: usize) -> Self {
        self.chain = chain;
        self
    }

    /// Adds a request header (the name is lowercased, as nginx presents it).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
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

    /// The request lasts `ms` milliseconds.
    pub fn lasting(mut self, ms: u64) -> Self {
        self.duration_ms = ms;
        self
    }
}

/// What happened to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The status the client got: the upstream's, the filter's local
    /// response, or 500 when the filter trapped.
    pub status: u16,
    /// The trap message, when the filter trapped.
    pub trap: Option<String>,
    /// The filter's local response, if it sent one.
    pub local_response: Option<LocalResponse>,
    /// True when a callback returned Pause.
    pub paused: bool,
}
