//! The log-phase snapshot Kong keeps for an external plugin, as the core's
//! [`LogSource`]: the JSON of `kong.log.serialize()` plus the raw request
//! headers (`kong.request.get_headers`, which keep the `Authorization`
//! value the serializer redacts and the `X-Consumer-*` headers auth plugins
//! set). Owns the decoding of those two PDK replies and the mapping of
//! serialized fields onto the property names the capturer reads, so that
//! the capturer builds the record the filter would.
//!
//! Not in the snapshot, so never answered here: nginx variables such as
//! `ssl_client_s_dn` and `ssl_client_fingerprint` (the log handler runs in
//! a timer with no request), hence no mTLS subject or fingerprint, and
//! `kong.ctx.shared.authenticated_jwt_token` (it would cost a PDK round
//! trip per event; a bearer token in `Authorization` still works).

use std::fmt;

use kong_looker_core::capture::capturer::LogSource;
use kong_looker_core::capture::headers;
use prost::Message;
use serde::Deserialize;
use serde_json::Value;

use crate::rpc::TextValue;

/// Headers taken from a `get_headers` reply; nginx's own default cap is 100.
const MAX_HEADERS: usize = 1000;

/// Why a snapshot reply could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// The `kong.log.serialize` reply is not a `String` message.
    SerializeFrame(String),
    /// Its text is not a JSON object.
    SerializeJson(String),
    /// The `kong.request.get_headers` reply is not a `Struct`.
    HeadersFrame(String),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::SerializeFrame(e) => write!(f, "kong.log.serialize reply: {e}"),
            SnapshotError::SerializeJson(e) => write!(f, "kong.log.serialize JSON: {e}"),
            SnapshotError::HeadersFrame(e) => write!(f, "kong.request.get_headers reply: {e}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

/// The fields of `kong.log.serialize()` a record needs. Everything else
/// in the entry (headers, tries, the route's and service's settings) is
/// skipped unparsed: building a whole `Value` tree cost three times as
/// much as the capture itself. Leaves stay `Value`s, so that a number sent
/// as a string (or the reverse) still reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Entry {
    request: Option<EntryRequest>,
    response: Option<EntryResponse>,
    route: Option<Entity>,
    service: Option<Entity>,
    latencies: Option<Latencies>,
    upstream_status: Option<Value>,
    client_ip: Option<Value>,
    started_at: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct EntryRequest {
    id: Option<Value>,
    method: Option<Value>,
    uri: Option<Value>,
    url: Option<Value>,
    size: Option<Value>,
    tls: Option<Tls>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Tls {
    client_verify: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct EntryResponse {
    status: Option<Value>,
    size: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Entity {
    id: Option<Value>,
    name: Option<Value>,
    service: Option<Box<Entity>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Latencies {
    request: Option<Value>,
    proxy: Option<Value>,
}

/// One request's log snapshot, decoded.
#[derive(Debug, Clone)]
pub struct Snapshot {
    entry: Entry,
    headers: Vec<(String, String)>,
}

impl Snapshot {
    /// Decodes the replies to `kong.log.serialize` and
    /// `kong.request.get_headers`.
    pub fn decode(serialize_reply: &[u8], headers_reply: &[u8]) -> Result<Snapshot, SnapshotError> {
        let text = TextValue::decode(serialize_reply)
            .map_err(|e| SnapshotError::SerializeFrame(e.to_string()))?
            .v;
        if !text.trim_start().starts_with('{') {
            return Err(SnapshotError::SerializeJson("not an object".into()));
        }
        let entry: Entry =
            serde_json::from_str(&text).map_err(|e| SnapshotError::SerializeJson(e.to_string()))?;
        let map = prost_types::Struct::decode(headers_reply)
            .map_err(|e| SnapshotError::HeadersFrame(e.to_string()))?;
        Ok(Snapshot {
            entry,
            headers: header_pairs(&map),
        })
    }

    /// A snapshot from an entry already parsed and a header list.
    pub fn new(entry: Value, headers: Vec<(String, String)>) -> Result<Snapshot, SnapshotError> {
        let entry =
            Entry::deserialize(entry).map_err(|e| SnapshotError::SerializeJson(e.to_string()))?;
        Ok(Snapshot { entry, headers })
    }

    /// When the request started, Unix ms: `started_at` of the entry.
    pub fn started_at_ms(&self) -> Option<i64> {
        self.at(&["started_at"]).and_then(whole)
    }

    /// The request headers in the host's serialized map layout, with the
    /// pseudo-headers the filter would see (`:method`, `:path`, `:scheme`)
    /// rebuilt from the entry, for [`Capturer::request_facts`].
    ///
    /// [`Capturer::request_facts`]: kong_looker_core::capture::capturer::Capturer::request_facts
    pub fn header_map(&self) -> Vec<u8> {
        let field = |name: &str| self.at(&["request", name]).and_then(Value::as_str);
        let scheme = field("url")
            .and_then(|u| u.split_once("://"))
            .map(|(s, _)| s);
        let mut pairs: Vec<(&[u8], &[u8])> = Vec::with_capacity(self.headers.len() + 3);
        if let Some(m) = field("method") {
            pairs.push((b":method", m.as_bytes()));
        }
        if let Some(p) = field("uri") {
            pairs.push((b":path", p.as_bytes()));
        }
        if let Some(s) = scheme {
            pairs.push((b":scheme", s.as_bytes()));
        }
        pairs.extend(
            self.headers
                .iter()
                .filter(|(n, _)| !n.starts_with(':'))
                .map(|(n, v)| (n.as_bytes(), v.as_bytes())),
        );
        headers::serialize(pairs)
    }

    /// A field of the entry by its path there; `None` when absent or null.
    fn at(&self, path: &[&str]) -> Option<&Value> {
        let e = &self.entry;
        let request = || e.request.as_ref();
        let value = match path {
            ["request", "id"] => request()?.id.as_ref(),
            ["request", "method"] => request()?.method.as_ref(),
            ["request", "uri"] => request()?.uri.as_ref(),
            ["request", "url"] => request()?.url.as_ref(),
            ["request", "size"] => request()?.size.as_ref(),
            ["request", "tls", "client_verify"] => request()?.tls.as_ref()?.client_verify.as_ref(),
            ["response", "status"] => e.response.as_ref()?.status.as_ref(),
            ["response", "size"] => e.response.as_ref()?.size.as_ref(),
            ["route", "id"] => e.route.as_ref()?.id.as_ref(),
            ["route", "name"] => e.route.as_ref()?.name.as_ref(),
            ["route", "service", "id"] => e.route.as_ref()?.service.as_ref()?.id.as_ref(),
            ["service", "id"] => e.service.as_ref()?.id.as_ref(),
            ["service", "name"] => e.service.as_ref()?.name.as_ref(),
            ["latencies", "request"] => e.latencies.as_ref()?.request.as_ref(),
            ["latencies", "proxy"] => e.latencies.as_ref()?.proxy.as_ref(),
            ["upstream_status"] => e.upstream_status.as_ref(),
            ["client_ip"] => e.client_ip.as_ref(),
            ["started_at"] => e.started_at.as_ref(),
            _ => None,
        };
        value.filter(|v| !v.is_null())
    }
}

/// A header map's pairs; a list value (a repeated header) gives one pair
/// per element, as nginx keeps them.
fn header_pairs(map: &prost_types::Struct) -> Vec<(String, String)> {
    use prost_types::value::Kind;
    let mut out = Vec::new();
    for (name, value) in &map.fields {
        if out.len() >= MAX_HEADERS {
            break;
        }
        let name = name.to_ascii_lowercase();
        match &value.kind {
            Some(Kind::ListValue(list)) => {
                for v in &list.values {
                    if let Some(text) = scalar(v) {
                        out.push((name.clone(), text));
                    }
                }
            }
            _ => {
                if let Some(text) = scalar(value) {
                    out.push((name, text));
                }
            }
        }
    }
    out
}

fn scalar(v: &prost_types::Value) -> Option<String> {
    use prost_types::value::Kind;
    match &v.kind {
        Some(Kind::StringValue(s)) => Some(s.clone()),
        Some(Kind::NumberValue(n)) => Some(n.to_string()),
        Some(Kind::BoolValue(b)) => Some(b.to_string()),
        _ => None,
    }
}

/// A JSON number (or numeric string) as a whole number.
fn whole(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A JSON value as property text: strings as they are, numbers in decimal.
fn text(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone().into_bytes()),
        Value::Number(n) => Some(n.to_string().into_bytes()),
        Value::Bool(b) => Some(b.to_string().into_bytes()),
        _ => None,
    }
}

/// Kong's whole milliseconds as nginx's seconds with milliseconds.
fn seconds(ms: i64) -> Vec<u8> {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000)).into_bytes()
}

impl LogSource for Snapshot {
    fn property(&mut self, name: &str) -> Option<Vec<u8>> {
        match name {
            "response.code" => self.at(&["response", "status"]).and_then(text),
            "ngx.request_time" => self
                .at(&["latencies", "request"])
                .and_then(whole)
                .filter(|ms| *ms >= 0)
                .map(seconds),
            "ngx.upstream_status" => self.at(&["upstream_status"]).and_then(text),
            // `latencies.proxy` is the upstream's time, -1 when none.
            "ngx.upstream_response_time" => self
                .at(&["latencies", "proxy"])
                .and_then(whole)
                .filter(|ms| *ms >= 0)
                .map(seconds),
            // Kong's `request.size` is $request_length and `response.size`
            // $bytes_sent, the very variables the filter reads.
            "ngx.request_length" => self.at(&["request", "size"]).and_then(text),
            "ngx.bytes_sent" => self.at(&["response", "size"]).and_then(text),
            "ngx.remote_addr" => self.at(&["client_ip"]).and_then(text),
            "ngx.kong_request_id" => self.at(&["request", "id"]).and_then(text),
            "request.method" => self.at(&["request", "method"]).and_then(text),
            "request.path" => self.at(&["request", "uri"]).and_then(text),
            "kong.route_id" => self.at(&["route", "id"]).and_then(text),
            "kong.route_name" => self.at(&["route", "name"]).and_then(text),
            "kong.service_id" => self
                .at(&["service", "id"])
                .or_else(|| self.at(&["route", "service", "id"]))
                .and_then(text),
            "kong.service_name" => self.at(&["service", "name"]).and_then(text),
            "connection.mtls" => self
                .at(&["request", "tls", "client_verify"])
                .and_then(Value::as_str)
                .map(|v| if v == "SUCCESS" { "true" } else { "false" })
                .map(|v| v.as_bytes().to_vec()),
            _ => None,
        }
    }

    fn response_header(&mut self, name: &str) -> Option<Vec<u8>> {
        // The capturer reads only `:status` here.
        match name {
            ":status" => self.at(&["response", "status"]).and_then(text),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::value::Kind;

    fn sample() -> Snapshot {
        let entry: Value =
            serde_json::from_str(include_str!("../../../shared/research/kong_sample.json"))
                .unwrap();
        Snapshot::new(
            entry,
            vec![
                ("host".into(), "localhost:8000".into()),
                ("authorization".into(), "Bearer abc".into()),
            ],
        )
        .unwrap()
    }

    #[test]
    fn serialized_fields_map_to_the_filter_properties() {
        let mut s = sample();
        let p = |s: &mut Snapshot, n: &str| s.property(n).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(p(&mut s, "response.code").as_deref(), Some("200"));
        assert_eq!(p(&mut s, "ngx.request_time").as_deref(), Some("0.173"));
        assert_eq!(p(&mut s, "ngx.upstream_status").as_deref(), Some("200"));
        assert_eq!(
            p(&mut s, "ngx.upstream_response_time").as_deref(),
            Some("0.171")
        );
        assert_eq!(p(&mut s, "ngx.request_length").as_deref(), Some("139"));
        assert_eq!(p(&mut s, "ngx.bytes_sent").as_deref(), Some("9982"));
        assert_eq!(
            p(&mut s, "ngx.remote_addr").as_deref(),
            Some("192.168.65.1")
        );
        assert_eq!(
            p(&mut s, "kong.route_id").as_deref(),
            Some("0f1a4101-3327-4274-b1e4-484a4ab0c030")
        );
        assert_eq!(
            p(&mut s, "kong.route_name").as_deref(),
            Some("example_route")
        );
        assert_eq!(
            p(&mut s, "kong.service_name").as_deref(),
            Some("example_service")
        );
        assert_eq!(
            p(&mut s, "ngx.kong_request_id").as_deref(),
            Some("2f6946328ffc4946b8c9120704a4a155")
        );
        assert_eq!(p(&mut s, "ngx.ssl_client_s_dn"), None);
        assert_eq!(s.started_at_ms(), Some(1726783839538));
    }

    #[test]
    fn the_header_map_has_pseudo_headers_and_raw_values() {
        let s = sample();
        let map = s.header_map();
        let pairs: Vec<(String, String)> = headers::pairs(&map)
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect();
        assert!(pairs.contains(&(":method".into(), "GET".into())));
        assert!(pairs.contains(&(":path".into(), "/example-route".into())));
        assert!(pairs.contains(&(":scheme".into(), "http".into())));
        assert!(pairs.contains(&("authorization".into(), "Bearer abc".into())));
    }

    #[test]
    fn replies_decode_and_bad_ones_are_named() {
        let json = TextValue {
            v: r#"{"request":{"method":"GET"}}"#.into(),
        }
        .encode_to_vec();
        let mut map = prost_types::Struct::default();
        map.fields.insert(
            "X-Consumer-Id".into(),
            prost_types::Value {
                kind: Some(Kind::StringValue("c1".into())),
            },
        );
        map.fields.insert(
            "accept".into(),
            prost_types::Value {
                kind: Some(Kind::ListValue(prost_types::ListValue {
                    values: vec![
                        prost_types::Value {
                            kind: Some(Kind::StringValue("a".into())),
                        },
                        prost_types::Value {
                            kind: Some(Kind::StringValue("b".into())),
                        },
                    ],
                })),
            },
        );
        let s = Snapshot::decode(&json, &map.encode_to_vec()).unwrap();
        assert_eq!(s.headers.len(), 3);
        assert!(s.headers.contains(&("x-consumer-id".into(), "c1".into())));
        let bad = TextValue { v: "[1]".into() }.encode_to_vec();
        assert!(matches!(
            Snapshot::decode(&bad, &[]),
            Err(SnapshotError::SerializeJson(_))
        ));
        assert!(matches!(
            Snapshot::decode(&[0xff, 0xff], &[]),
            Err(SnapshotError::SerializeFrame(_))
        ));
        assert!(matches!(
            Snapshot::decode(&json, &[0x0a, 0x05]),
            Err(SnapshotError::HeadersFrame(_))
        ));
    }

    #[test]
    fn random_replies_never_panic() {
        // A cheap stand-in for the fuzz target, run with every test.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let base = TextValue {
            v: include_str!("../../../shared/research/kong_sample.json").into(),
        }
        .encode_to_vec();
        for _ in 0..2000 {
            let mut a = base.clone();
            for _ in 0..(next() % 8) {
                let i = (next() as usize) % a.len();
                a[i] = next() as u8;
            }
            let b: Vec<u8> = (0..(next() % 64)).map(|_| next() as u8).collect();
            if let Ok(mut s) = Snapshot::decode(&a, &b) {
                let _ = s.header_map();
                let _ = s.property("ngx.request_time");
                let _ = s.property("kong.route_id");
            }
            let _ = crate::frame::split(&b);
        }
    }
}
