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

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use kong_looker_core::capture::ai::{self, AiUsage};
use kong_looker_core::capture::capturer::LogSource;
use kong_looker_core::capture::headers;
use prost::encoding::{WireType, decode_key, decode_varint};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

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

/// A JSON leaf of the entry, borrowed from the reply where it can be. A
/// number sent as a string (or the reverse) still reads; objects and
/// arrays where a leaf belongs are skipped.
#[derive(Debug, Clone, PartialEq)]
enum Scalar<'a> {
    Text(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Leaf<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Leaf<'a> {
            type Value = Scalar<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                // Only a string with escapes lands here.
                Ok(Scalar::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Null)
            }
        }
        d.deserialize_any(Leaf(PhantomData))
    }
}

impl Scalar<'_> {
    /// The value as property text: strings as they are (none when empty),
    /// numbers in decimal.
    fn text(&self) -> Option<Cow<'_, [u8]>> {
        match self {
            Scalar::Text(s) if !s.is_empty() => Some(Cow::Borrowed(s.as_bytes())),
            Scalar::Int(n) => Some(Cow::Owned(n.to_string().into_bytes())),
            Scalar::Float(f) => {
                serde_json::Number::from_f64(*f).map(|n| Cow::Owned(n.to_string().into_bytes()))
            }
            Scalar::Bool(b) => Some(Cow::Borrowed(if *b { b"true" } else { b"false" })),
            _ => None,
        }
    }

    /// A whole number, from a number or a numeric string.
    fn whole(&self) -> Option<i64> {
        match self {
            Scalar::Int(n) => Some(*n),
            Scalar::Float(f) if f.is_finite() => Some(*f as i64),
            Scalar::Text(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// The fields of `kong.log.serialize()` a record needs. Everything else
/// in the entry (headers, tries, the route's and service's settings) is
/// skipped unparsed: building a whole `Value` tree cost three times as
/// much as the capture itself. Leaves borrow from the reply.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Entry<'a> {
    #[serde(borrow)]
    request: Option<EntryRequest<'a>>,
    #[serde(borrow)]
    response: Option<EntryResponse<'a>>,
    #[serde(borrow)]
    route: Option<Entity<'a>>,
    #[serde(borrow)]
    service: Option<Entity<'a>>,
    #[serde(borrow)]
    latencies: Option<Latencies<'a>>,
    #[serde(borrow)]
    upstream_status: Option<Scalar<'a>>,
    #[serde(borrow)]
    client_ip: Option<Scalar<'a>>,
    #[serde(borrow)]
    started_at: Option<Scalar<'a>>,
    /// The AI Gateway section, left as text: it is rare, and read whole
    /// only when present.
    #[serde(borrow)]
    ai: Option<&'a RawValue>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct EntryRequest<'a> {
    #[serde(borrow)]
    id: Option<Scalar<'a>>,
    #[serde(borrow)]
    method: Option<Scalar<'a>>,
    #[serde(borrow)]
    uri: Option<Scalar<'a>>,
    #[serde(borrow)]
    url: Option<Scalar<'a>>,
    #[serde(borrow)]
    size: Option<Scalar<'a>>,
    #[serde(borrow)]
    tls: Option<Tls<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Tls<'a> {
    #[serde(borrow)]
    client_verify: Option<Scalar<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct EntryResponse<'a> {
    #[serde(borrow)]
    status: Option<Scalar<'a>>,
    #[serde(borrow)]
    size: Option<Scalar<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Entity<'a> {
    #[serde(borrow)]
    id: Option<Scalar<'a>>,
    #[serde(borrow)]
    name: Option<Scalar<'a>>,
    #[serde(borrow)]
    service: Option<Box<Entity<'a>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Latencies<'a> {
    #[serde(borrow)]
    request: Option<Scalar<'a>>,
    #[serde(borrow)]
    proxy: Option<Scalar<'a>>,
}

/// One request's log snapshot, decoded; it borrows the two replies.
#[derive(Debug, Clone)]
pub struct Snapshot<'a> {
    entry: Entry<'a>,
    headers: Vec<(&'a [u8], Cow<'a, [u8]>)>,
}

impl<'a> Snapshot<'a> {
    /// Decodes the replies to `kong.log.serialize` and
    /// `kong.request.get_headers`, copying as little as it can: the JSON
    /// and the header names and values stay in the replies.
    pub fn decode(
        serialize_reply: &'a [u8],
        headers_reply: &'a [u8],
    ) -> Result<Snapshot<'a>, SnapshotError> {
        let text = text_value(serialize_reply).map_err(SnapshotError::SerializeFrame)?;
        // Checked whole, once: the reader then checks no string again
        // (from a byte slice it would check each one it reads, which cost
        // more than this for an entry of a few kB).
        let text = std::str::from_utf8(text)
            .map_err(|e| SnapshotError::SerializeFrame(format!("v is not UTF-8: {e}")))?;
        if !text.trim_start().starts_with('{') {
            return Err(SnapshotError::SerializeJson("not an object".into()));
        }
        let entry: Entry<'a> =
            serde_json::from_str(text).map_err(|e| SnapshotError::SerializeJson(e.to_string()))?;
        let mut headers = Vec::with_capacity(32);
        struct_pairs(headers_reply, &mut headers).map_err(SnapshotError::HeadersFrame)?;
        Ok(Snapshot { entry, headers })
    }

    /// A snapshot from an entry's JSON and a header list (for tests).
    pub fn new(
        entry_json: &'a str,
        headers: &'a [(String, String)],
    ) -> Result<Snapshot<'a>, SnapshotError> {
        let entry = serde_json::from_str(entry_json)
            .map_err(|e| SnapshotError::SerializeJson(e.to_string()))?;
        let headers = headers
            .iter()
            .map(|(n, v)| (n.as_bytes(), Cow::Borrowed(v.as_bytes())))
            .collect();
        Ok(Snapshot { entry, headers })
    }

    /// The request headers as Kong sent them, a list value giving one pair
    /// per element.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.headers.iter().map(|(n, v)| (*n, v.as_ref()))
    }

    /// When the request started, Unix ms: `started_at` of the entry.
    pub fn started_at_ms(&self) -> Option<i64> {
        self.at(&["started_at"]).and_then(Scalar::whole)
    }

    /// The request headers in the host's serialized map layout, with the
    /// pseudo-headers the filter would see (`:method`, `:path`, `:scheme`)
    /// rebuilt from the entry, for [`Capturer::request_facts`].
    ///
    /// [`Capturer::request_facts`]: kong_looker_core::capture::capturer::Capturer::request_facts
    pub fn header_map(&self) -> Vec<u8> {
        let mut map = Vec::new();
        self.header_map_into(&mut map);
        map
    }

    /// [`Snapshot::header_map`] into `out`, replacing what it held, so that
    /// a connection reuses one buffer.
    pub fn header_map_into(&self, out: &mut Vec<u8>) {
        let field = |name: &str| self.at(&["request", name]).and_then(Scalar::as_str);
        let scheme = field("url")
            .and_then(|u| u.split_once("://"))
            .map(|(s, _)| s);
        let pseudo = [
            (&b":method"[..], field("method")),
            (b":path", field("uri")),
            (b":scheme", scheme),
        ];
        headers::serialize_into(
            pseudo
                .into_iter()
                .filter_map(|(n, v)| Some((n, v?.as_bytes())))
                .chain(
                    self.headers
                        .iter()
                        .filter(|(n, _)| !n.starts_with(b":"))
                        .map(|(n, v)| (*n, v.as_ref())),
                ),
            out,
        );
    }

    /// A field of the entry by its path there; `None` when absent or null.
    fn at(&self, path: &[&str]) -> Option<&Scalar<'a>> {
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
        value.filter(|v| **v != Scalar::Null)
    }
}

// The two replies are read off the wire with prost's own primitives
// (keys, varints, wire types) rather than decoded into prost_types'
// `Struct` and prost's `String`s: those allocate every header name and
// value, and validate the whole JSON text, which cost more than the
// capture itself. The layouts are `TextValue { string v = 1 }` and
// `google.protobuf.Struct`; a test checks the result against prost's.

/// A length-delimited field's bytes, the cursor moved past them.
fn delimited<'b>(buf: &mut &'b [u8]) -> Result<&'b [u8], String> {
    let len = decode_varint(buf).map_err(|e| e.to_string())?;
    let len = usize::try_from(len).map_err(|_| "length too large".to_string())?;
    let (field, rest) = buf
        .split_at_checked(len)
        .ok_or_else(|| "a field runs past the end".to_string())?;
    *buf = rest;
    Ok(field)
}

/// Skips a field of `wire` type; groups are refused, as prost does.
fn skip(buf: &mut &[u8], wire: WireType) -> Result<(), String> {
    let n = match wire {
        WireType::Varint => return decode_varint(buf).map(|_| ()).map_err(|e| e.to_string()),
        WireType::LengthDelimited => return delimited(buf).map(|_| ()),
        WireType::SixtyFourBit => 8,
        WireType::ThirtyTwoBit => 4,
        WireType::StartGroup | WireType::EndGroup => {
            return Err("groups are not supported".into());
        }
    };
    *buf = buf
        .get(n..)
        .ok_or_else(|| "a field runs past the end".to_string())?;
    Ok(())
}

/// Calls `f` with each field's number, wire type and the cursor; `f`
/// consumes the field.
fn fields<'b>(
    mut buf: &'b [u8],
    mut f: impl FnMut(u32, WireType, &mut &'b [u8]) -> Result<(), String>,
) -> Result<(), String> {
    while !buf.is_empty() {
        let (tag, wire) = decode_key(&mut buf).map_err(|e| e.to_string())?;
        f(tag, wire, &mut buf)?;
    }
    Ok(())
}

/// A string field, checked as prost checks it.
fn string<'b>(buf: &mut &'b [u8], wire: WireType) -> Result<&'b [u8], String> {
    if wire != WireType::LengthDelimited {
        return Err(format!("a string field of wire type {wire:?}"));
    }
    let bytes = delimited(buf)?;
    std::str::from_utf8(bytes).map_err(|_| "a string is not UTF-8".to_string())?;
    Ok(bytes)
}

/// The text of a `TextValue`, not copied.
fn text_value(reply: &[u8]) -> Result<&[u8], String> {
    let mut v: &[u8] = &[];
    fields(reply, |tag, wire, buf| match (tag, wire) {
        (1, WireType::LengthDelimited) => {
            v = delimited(buf)?;
            Ok(())
        }
        (1, w) => Err(format!("field v of wire type {w:?}")),
        (_, w) => skip(buf, w),
    })?;
    Ok(v)
}

/// A `google.protobuf.Value`'s scalar as header text; lists give one
/// entry per scalar element, as nginx keeps a repeated header.
fn value_texts<'b>(bytes: &'b [u8], out: &mut Vec<Cow<'b, [u8]>>, depth: u8) -> Result<(), String> {
    let mut kind: Option<Cow<'b, [u8]>> = None;
    let mut list: Option<&'b [u8]> = None;
    fields(bytes, |tag, wire, buf| {
        // A oneof: the last member on the wire wins.
        match (tag, wire) {
            (2, WireType::SixtyFourBit) => {
                let raw = buf
                    .split_first_chunk::<8>()
                    .ok_or_else(|| "a field runs past the end".to_string())?;
                let n = f64::from_le_bytes(*raw.0);
                *buf = raw.1;
                kind = Some(Cow::Owned(n.to_string().into_bytes()));
                list = None;
            }
            (3, w) => {
                kind = Some(Cow::Borrowed(string(buf, w)?));
                list = None;
            }
            (4, WireType::Varint) => {
                let b = decode_varint(buf).map_err(|e| e.to_string())? != 0;
                kind = Some(Cow::Borrowed(if b { b"true" } else { b"false" }));
                list = None;
            }
            (6, WireType::LengthDelimited) if depth == 0 => {
                list = Some(delimited(buf)?);
                kind = None;
            }
            (1 | 5 | 6, w) => {
                skip(buf, w)?;
                kind = None;
                list = None;
            }
            (2 | 4, w) => return Err(format!("a Value field {tag} of wire type {w:?}")),
            (_, w) => skip(buf, w)?,
        }
        Ok(())
    })?;
    if let Some(k) = kind {
        out.push(k);
    }
    if let Some(l) = list {
        fields(l, |tag, wire, buf| match (tag, wire) {
            (1, WireType::LengthDelimited) => value_texts(delimited(buf)?, out, depth + 1),
            (_, w) => skip(buf, w),
        })?;
    }
    Ok(())
}

/// The pairs of a `google.protobuf.Struct` of headers, borrowed from it,
/// at most [`MAX_HEADERS`].
fn struct_pairs<'b>(
    reply: &'b [u8],
    out: &mut Vec<(&'b [u8], Cow<'b, [u8]>)>,
) -> Result<(), String> {
    let mut texts = Vec::new();
    fields(reply, |tag, wire, buf| {
        if tag != 1 {
            return skip(buf, wire);
        }
        if wire != WireType::LengthDelimited {
            return Err(format!("Struct.fields of wire type {wire:?}"));
        }
        let mut name: &[u8] = b"";
        let mut value: &[u8] = b"";
        fields(delimited(buf)?, |tag, wire, buf| {
            match (tag, wire) {
                (1, w) => name = string(buf, w)?,
                (2, WireType::LengthDelimited) => value = delimited(buf)?,
                (2, w) => return Err(format!("a map value of wire type {w:?}")),
                (_, w) => skip(buf, w)?,
            }
            Ok(())
        })?;
        texts.clear();
        value_texts(value, &mut texts, 0)?;
        for t in texts.drain(..) {
            if out.len() < MAX_HEADERS {
                out.push((name, t));
            }
        }
        Ok(())
    })
}

/// Kong's whole milliseconds as nginx's seconds with milliseconds.
fn seconds(ms: i64) -> Vec<u8> {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000)).into_bytes()
}

impl LogSource for Snapshot<'_> {
    fn property(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        match name {
            "response.code" => self.at(&["response", "status"]).and_then(Scalar::text),
            "ngx.request_time" => self
                .at(&["latencies", "request"])
                .and_then(Scalar::whole)
                .filter(|ms| *ms >= 0)
                .map(|ms| Cow::Owned(seconds(ms))),
            "ngx.upstream_status" => self.at(&["upstream_status"]).and_then(Scalar::text),
            // `latencies.proxy` is the upstream's time, -1 when none.
            "ngx.upstream_response_time" => self
                .at(&["latencies", "proxy"])
                .and_then(Scalar::whole)
                .filter(|ms| *ms >= 0)
                .map(|ms| Cow::Owned(seconds(ms))),
            // Kong's `request.size` is $request_length and `response.size`
            // $bytes_sent, the very variables the filter reads.
            "ngx.request_length" => self.at(&["request", "size"]).and_then(Scalar::text),
            "ngx.bytes_sent" => self.at(&["response", "size"]).and_then(Scalar::text),
            "ngx.remote_addr" => self.at(&["client_ip"]).and_then(Scalar::text),
            "ngx.kong_request_id" => self.at(&["request", "id"]).and_then(Scalar::text),
            "request.method" => self.at(&["request", "method"]).and_then(Scalar::text),
            "request.path" => self.at(&["request", "uri"]).and_then(Scalar::text),
            "kong.route_id" => self.at(&["route", "id"]).and_then(Scalar::text),
            "kong.route_name" => self.at(&["route", "name"]).and_then(Scalar::text),
            "kong.service_id" => self
                .at(&["service", "id"])
                .or_else(|| self.at(&["route", "service", "id"]))
                .and_then(Scalar::text),
            "kong.service_name" => self.at(&["service", "name"]).and_then(Scalar::text),
            "connection.mtls" => self
                .at(&["request", "tls", "client_verify"])
                .and_then(Scalar::as_str)
                .map(|v| if v == "SUCCESS" { "true" } else { "false" })
                .map(|v| Cow::Borrowed(v.as_bytes())),
            _ => None,
        }
    }

    fn response_header(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        // The capturer reads only `:status` here.
        match name {
            ":status" => self.at(&["response", "status"]).and_then(Scalar::text),
            _ => None,
        }
    }

    fn ai(&self) -> Option<AiUsage> {
        let usage = ai::read_json(self.entry.ai?.get().as_bytes());
        (!usage.is_empty() || usage.unreadable > 0).then_some(usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::TextValue;
    use prost::Message;
    use prost_types::value::Kind;

    const SAMPLE: &str = include_str!("../../../shared/research/kong_sample.json");

    fn sample_headers() -> Vec<(String, String)> {
        vec![
            ("host".into(), "localhost:8000".into()),
            ("authorization".into(), "Bearer abc".into()),
        ]
    }

    fn sample(headers: &[(String, String)]) -> Snapshot<'_> {
        Snapshot::new(SAMPLE, headers).unwrap()
    }

    #[test]
    fn serialized_fields_map_to_the_filter_properties() {
        let h = sample_headers();
        let mut s = sample(&h);
        let p = |s: &mut Snapshot<'_>, n: &str| {
            s.property(n)
                .map(|v| String::from_utf8(v.into_owned()).unwrap())
        };
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
        let h = sample_headers();
        let s = sample(&h);
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
        let encoded = map.encode_to_vec();
        let s = Snapshot::decode(&json, &encoded).unwrap();
        assert_eq!(s.headers.len(), 3);
        assert!(
            s.headers
                .contains(&(&b"X-Consumer-Id"[..], Cow::Borrowed(&b"c1"[..])))
        );
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

    /// What prost makes of a header `Struct`, in the plugin's terms: one
    /// pair per scalar, lists flattened one level, names in map order.
    pub(crate) fn prost_pairs(reply: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
        let map = prost_types::Struct::decode(reply).ok()?;
        let scalar = |v: &prost_types::Value| match &v.kind {
            Some(Kind::StringValue(s)) => Some(s.clone().into_bytes()),
            Some(Kind::NumberValue(n)) => Some(n.to_string().into_bytes()),
            Some(Kind::BoolValue(b)) => Some(b.to_string().into_bytes()),
            _ => None,
        };
        let mut out = Vec::new();
        for (name, value) in &map.fields {
            let values: Vec<Vec<u8>> = match &value.kind {
                Some(Kind::ListValue(l)) => l.values.iter().filter_map(scalar).collect(),
                _ => scalar(value).into_iter().collect(),
            };
            out.extend(values.into_iter().map(|v| (name.clone().into_bytes(), v)));
        }
        Some(out)
    }

    #[test]
    fn headers_read_as_prost_reads_them() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let json = TextValue { v: "{}".into() }.encode_to_vec();
        let scalar = |n: u64| prost_types::Value {
            kind: Some(match n % 5 {
                0 => Kind::NumberValue((n % 1000) as f64 / 8.0),
                1 => Kind::BoolValue(n.is_multiple_of(2)),
                2 => Kind::NullValue(0),
                _ => Kind::StringValue(format!("v{n}\u{e9}").repeat((n % 3) as usize)),
            }),
        };
        for _ in 0..500 {
            let mut map = prost_types::Struct::default();
            for i in 0..(next() % 12) {
                let n = next();
                let value = match n % 4 {
                    0 => prost_types::Value {
                        kind: Some(Kind::ListValue(prost_types::ListValue {
                            values: (0..n % 4).map(|k| scalar(next() + k)).collect(),
                        })),
                    },
                    1 => prost_types::Value {
                        kind: Some(Kind::StructValue(prost_types::Struct::default())),
                    },
                    _ => scalar(n),
                };
                map.fields.insert(format!("x-h{i}-{}", n % 7), value);
            }
            let reply = map.encode_to_vec();
            let s = Snapshot::decode(&json, &reply).unwrap();
            let ours: Vec<(Vec<u8>, Vec<u8>)> =
                s.headers().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
            assert_eq!(Some(ours), prost_pairs(&reply));
        }
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
            if let Ok(s) = Snapshot::decode(&a, &b) {
                let _ = s.header_map();
                let _ = s.property("ngx.request_time");
                let _ = s.property("kong.route_id");
            }
            let _ = crate::frame::split(&b);
        }
    }
}
