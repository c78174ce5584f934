//! One chain's capture: notes where the needed request headers lie
//! ([`RequestFacts`]), reads Kong's properties through a [`LogSource`]
//! ([`Capturer::read`]), and assembles the record from what was read
//! ([`Capturer::assemble`]). Reading must happen in the log phase, where
//! the host answers; assembling asks the host for nothing, so a host may
//! run it later, records in a row. Properties are read only when the
//! config and the request call for them, because each read is a host call
//! (and, for `kong.*`, Lua): nginx's figures come in one read where nginx
//! defines `$kong_looker_log` ([`super::log_line`]). Route names and
//! decoded tokens are cached, because they repeat.
//!
//! The host is behind [`LogSource`], so all of this runs natively and on
//! wasm32 with a map standing in for Kong.

use std::borrow::Cow;
use std::hash::{BuildHasher, Hasher};
use std::ops::Range;
use std::sync::Arc;

use kong_looker_proto::bytes::{Key, Query};
use kong_looker_proto::row::method_from_name;
use kong_looker_proto::v1::{Method, ResponseSource};
use kong_looker_proto::{AgentRef, IdentityRef, Memo, Record, RouteRef};

use super::agent::AgentClassifier;
use super::ai::{self, AiUsage};
use super::cache::Cache;
use super::identity::{self, Evidence, Packed};
use super::jwt::{self, Claims};
use super::log_line::{self, LineError};
use super::memo::{self, EndpointKeys};
use super::path::{self, PathTemplater};
use super::privacy::{self, AddressMode, Pseudonymiser, Recorded};
use super::sampler::Sampler;
use super::{headers, router, timing};
use crate::config::Config;
use foldhash::fast::FixedState;

/// Longest `Authorization` value kept between phases (a JWT is at most
/// [`super::jwt::MAX_TOKEN_BYTES`]).
const MAX_AUTHORIZATION_BYTES: usize = super::jwt::MAX_TOKEN_BYTES + 64;
/// Longest value kept of any other header.
const MAX_HEADER_BYTES: usize = 4096;
/// Route ids whose names a chain remembers.
const NAME_CACHE_ENTRIES: usize = 4096;
/// How long remembered names are trusted, ms.
const NAME_TTL_MS: i64 = 60_000;
/// Decoded tokens a chain remembers. Sized, like the identities, for
/// production cardinality (50,000 consumers): at 4,096 entries each the
/// high-cardinality mix missed often enough to cost 830 instructions a
/// request natively, and 1.5 µs in Kong's engine (`bench/RESULTS.md`).
/// Traffic of lower cardinality holds only what it uses. Their bytes,
/// tables included, come from `max_cache_bytes`: a third for the tokens,
/// the rest for the identities (some 260 bytes each on wasm32, packed). Each
/// cache may hold up to twice its caps for a while after it starts
/// afresh, until its old entries are freed (the `cache` module).
const TOKEN_CACHE_ENTRIES: usize = 65_536;
/// Resolved identities a chain remembers, by their evidence.
const IDENTITY_CACHE_ENTRIES: usize = 65_536;

/// Every property a [`Capturer`] may ask a [`LogSource`] for: what a host
/// must be able to answer (a test keeps the list exact).
pub const PROPERTIES: [&str; 21] = [
    log_line::PROPERTY,
    "response.code",
    "ngx.request_time",
    "ngx.upstream_status",
    "ngx.upstream_response_time",
    "ngx.request_length",
    "ngx.bytes_sent",
    "ngx.remote_addr",
    "ngx.kong_request_id",
    "request.method",
    "request.path",
    "kong.route_id",
    "kong.route_name",
    "kong.router.route",
    "kong.service_id",
    "kong.service_name",
    "kong.router.service",
    "kong.ctx.shared.authenticated_jwt_token",
    "ngx.ssl_client_s_dn",
    "ngx.ssl_client_fingerprint",
    "connection.mtls",
];

/// Where [`Capturer::assemble_into`] hands its records: for the filter, a
/// lane's outbox.
pub trait RecordSink {
    /// Whether a record may give its caller by `key` alone
    /// ([`Memo::identity_by_key`]).
    fn knows_identity(&mut self, key: u64) -> bool;
    /// Whether the sink's builder remembers the endpoint of `key`
    /// ([`Memo::endpoint`]): then the path template need not be looked up
    /// in the set of templates seen, which a record of a known endpoint
    /// must have passed through already.
    fn knows_endpoint(&mut self, _key: u64) -> bool {
        false
    }
    /// The sink's builder's hash of the client address `text` when it
    /// remembers it ([`Memo::client`]). Every address a capturer records
    /// as given has passed its check, so such a text needs none again.
    fn knows_client(&mut self, _text: &[u8]) -> Option<u64> {
        None
    }
    /// Takes a record; false only when it gave its caller by key alone and
    /// the key is no longer known, and then the record is sent again with
    /// its caller.
    fn push(&mut self, record: &Record<'_>) -> bool;
}

/// A sink that knows no caller by key: every record carries its own.
struct Resolving<F>(F);

impl Resolving<()> {
    /// The sink of one record, handed to `f`.
    fn once(f: impl FnOnce(&Record<'_>)) -> Resolving<impl FnMut(&Record<'_>)> {
        let mut f = Some(f);
        Resolving(move |record: &Record<'_>| {
            if let Some(f) = f.take() {
                f(record);
            }
        })
    }
}

impl<F: FnMut(&Record<'_>)> RecordSink for Resolving<F> {
    fn knows_identity(&mut self, _: u64) -> bool {
        false
    }

    fn push(&mut self, record: &Record<'_>) -> bool {
        (self.0)(record);
        true
    }
}

/// What Kong shows a filter in the log phase. Values may borrow from the
/// source (a native host's snapshot) or be its own copies (a Wasm host
/// call); several are held at once while a record is assembled.
pub trait LogSource {
    /// A property by its dotted name, e.g. `ngx.request_time`.
    fn property(&self, name: &str) -> Option<Cow<'_, [u8]>>;
    /// A response header by lowercase name, e.g. `:status`.
    fn response_header(&self, name: &str) -> Option<Cow<'_, [u8]>>;
    /// A request header by name, e.g. `:authority`: read singly where
    /// `$kong_looker_log` brought the others. `None` where the host has
    /// no request header map of its own.
    fn request_header(&self, _name: &str) -> Option<Cow<'_, [u8]>> {
        None
    }
    /// What Kong's AI Gateway recorded for the request, where the host can
    /// see it: the log entry's `ai` section for the plugin server and
    /// http-log. `None` for a request without AI figures.
    fn ai(&self) -> Option<AiUsage> {
        None
    }
}

/// The request headers a record needs: the host's header map, kept whole,
/// and where in it each needed value lies, so that nothing is copied per
/// header.
#[derive(Clone, Debug, Default)]
pub struct RequestFacts {
    /// When the request started, Unix ms, as the host knows it.
    pub started_at_ms: i64,
    /// The headers were read at the end of the request, so the start is
    /// that time less nginx's request time (the Wasm filter reads them in
    /// the log phase only: one host call fewer per request).
    pub start_from_request_time: bool,
    /// A configured API key header was present, and not empty.
    pub api_key_present: bool,
    /// The header map, or the `$kong_looker_log` line whose request
    /// fields the spans index ([`log_line::request_fields`]).
    map: Vec<u8>,
    spans: Spans,
    trusted_rank: usize,
    /// `map` is the line, which the client address lies in too.
    from_line: bool,
    /// In a line, where the consumer and authenticated-user headers'
    /// values lie, in a row with newlines between ([`CONSUMER_RUN`]).
    consumer_run: (u32, u32),
}

/// The request fields of a line, by their index in
/// [`log_line::REQUEST_FIELDS`], that lie in a row and are the caller's
/// evidence: `x-consumer-id` to `x-authenticated-scope`.
const CONSUMER_RUN: core::ops::RangeInclusive<usize> = 7..=15;
const _: () = assert!(
    matches!(LINE_FIELDS[7], Some(Field::ConsumerId))
        && matches!(LINE_FIELDS[15], Some(Field::AuthenticatedScope)),
    "the consumer run is the consumer headers'"
);

/// Where each field's value lies in the map, start and end, for the fields
/// whose bit is set: cleared in one store when the facts are refilled, and
/// half the size of optional ranges.
#[derive(Clone, Debug, Default)]
struct Spans {
    at: [(u32, u32); FIELDS],
    present: u32,
}

impl Spans {
    /// Notes where `field`'s value lies; a range past what `u32` holds (no
    /// host map is that large) is left out.
    fn set(&mut self, field: Field, value: Range<usize>) {
        let (Ok(start), Ok(end)) = (u32::try_from(value.start), u32::try_from(value.end)) else {
            return;
        };
        if let Some(slot) = self.at.get_mut(field as usize) {
            *slot = (start, end);
            self.present |= 1 << field as u32;
        }
    }

    #[inline(always)]
    fn get(&self, field: Field) -> Option<Range<usize>> {
        match self.at.get(field as usize) {
            Some(&(start, end)) if self.present & (1 << field as u32) != 0 => {
                Some(start as usize..end as usize)
            }
            _ => None,
        }
    }
}

/// The headers a record may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `:method`.
    Method,
    /// `:path`, query included (the templater drops it).
    Path,
    /// `:authority`.
    Authority,
    /// `host`.
    Host,
    /// `user-agent`.
    UserAgent,
    /// `authorization` (parsed in the log phase, never stored in a record).
    Authorization,
    /// `traceparent`.
    Traceparent,
    /// `x-consumer-id`.
    ConsumerId,
    /// `x-consumer-username`.
    ConsumerUsername,
    /// `x-consumer-custom-id`.
    ConsumerCustomId,
    /// `x-credential-identifier`.
    Credential,
    /// `x-anonymous-consumer`.
    Anonymous,
    /// `x-consumer-groups`.
    ConsumerGroups,
    /// `x-authenticated-groups`.
    AuthenticatedGroups,
    /// `x-authenticated-userid`.
    AuthenticatedUserid,
    /// `x-authenticated-scope`.
    AuthenticatedScope,
    /// The first configured trusted proxy header present.
    Trusted,
    /// `:scheme`.
    Scheme,
}

const FIELDS: usize = 18;
const _: () = assert!(FIELDS <= u32::BITS as usize, "a bit per field");

/// The header names of the fields, as Kong's plugins and clients write them
/// (matched in any case). Configured key and trusted proxy headers are
/// matched apart.
const FIELD_NAMES: headers::NameTable<Field> = headers::NameTable::new(&[
    (":method", Field::Method),
    (":path", Field::Path),
    (":authority", Field::Authority),
    (":scheme", Field::Scheme),
    ("host", Field::Host),
    ("user-agent", Field::UserAgent),
    ("authorization", Field::Authorization),
    ("traceparent", Field::Traceparent),
    ("x-consumer-id", Field::ConsumerId),
    ("x-consumer-username", Field::ConsumerUsername),
    ("x-consumer-custom-id", Field::ConsumerCustomId),
    ("x-credential-identifier", Field::Credential),
    ("x-anonymous-consumer", Field::Anonymous),
    ("x-consumer-groups", Field::ConsumerGroups),
    ("x-authenticated-groups", Field::AuthenticatedGroups),
    ("x-authenticated-userid", Field::AuthenticatedUserid),
    ("x-authenticated-scope", Field::AuthenticatedScope),
]);

/// The field each of [`log_line::REQUEST_FIELDS`] is; `None` for the last,
/// `$http_apikey`, key-auth's header by default (`identity.key_names`).
const LINE_FIELDS: [Option<Field>; log_line::REQUEST_FIELDS.len()] = [
    Some(Field::Method),
    Some(Field::Path),
    Some(Field::Scheme),
    Some(Field::Host),
    Some(Field::UserAgent),
    Some(Field::Authorization),
    Some(Field::Traceparent),
    Some(Field::ConsumerId),
    Some(Field::ConsumerUsername),
    Some(Field::ConsumerCustomId),
    Some(Field::Credential),
    Some(Field::Anonymous),
    Some(Field::ConsumerGroups),
    Some(Field::AuthenticatedGroups),
    Some(Field::AuthenticatedUserid),
    Some(Field::AuthenticatedScope),
    None,
];

/// The one API key header the line carries.
const LINE_KEY_NAME: &str = "apikey";

impl RequestFacts {
    /// Facts of a request whose headers were not seen.
    pub fn empty(started_at_ms: i64) -> Self {
        RequestFacts {
            started_at_ms,
            ..RequestFacts::default()
        }
    }

    /// The header map it keeps, for a host that reuses the buffer.
    pub fn into_map(self) -> Vec<u8> {
        self.map
    }

    /// In a line, the consumer headers' values in a row
    /// ([`CONSUMER_RUN`]); `None` for a header map.
    fn consumer_run(&self) -> Option<&[u8]> {
        let (start, end) = self.consumer_run;
        self.from_line
            .then(|| self.map.get(start as usize..end as usize))
            .flatten()
    }

    /// A header's value; empty when absent. Invalid UTF-8 is replaced.
    pub fn get(&self, field: Field) -> Cow<'_, str> {
        lossy(self.raw(field))
    }

    /// A header's bytes, cut at the length [`RequestFacts::get`] keeps;
    /// empty when absent. Inlined: at each of its score of calls the field
    /// is known, and the call cost more than the lookup.
    #[inline(always)]
    pub fn raw(&self, field: Field) -> &[u8] {
        let bytes = self
            .spans
            .get(field)
            .and_then(|range| self.map.get(range))
            .unwrap_or_default();
        let limit = if field == Field::Authorization {
            MAX_AUTHORIZATION_BYTES
        } else {
            MAX_HEADER_BYTES
        };
        bytes.get(..limit).unwrap_or(bytes)
    }
}

/// What one request's log phase read from the host for its record
/// ([`Capturer::read`]): nginx's figures as numbers (they come as one line
/// or one by one), the other answers as the host gave them, parsed only
/// where a later read depends on them. A Wasm host's answers are its own
/// buffers, so it can keep these past the log phase and assemble records
/// in a row, with the code that assembles them still in the caches.
#[derive(Debug)]
pub struct Reads<'a> {
    facts: Cow<'a, RequestFacts>,
    now_ms: i64,
    status: u16,
    sample_weight: f32,
    /// nginx's figures, parsed as read: from one line or from single reads.
    latency_total_us: Option<u64>,
    upstream_status: Option<u16>,
    latency_upstream_us: Option<u64>,
    request_bytes: u64,
    response_bytes: u64,
    /// The route's names, shared with the cache: held here, they cannot
    /// be evicted before the record is assembled.
    names: Option<Arc<Names>>,
    /// `request.method` and `request.path`, read when the headers lack them.
    method: Option<Cow<'a, [u8]>>,
    path: Option<Cow<'a, [u8]>>,
    evidence: EvidenceReads<'a>,
    /// `ngx.remote_addr`, or the log line it lies in; `None` also where
    /// the line is the facts' map (its request fields were read).
    remote_addr: Option<Cow<'a, [u8]>>,
    /// Where the address lies in `remote_addr`, or in the facts' line.
    remote_addr_at: Range<usize>,
    /// `:authority`, read where the line brought the headers but no Host.
    authority: Option<Cow<'a, [u8]>>,
    request_id: Option<Cow<'a, [u8]>>,
    /// Boxed: rare, and large for a value moved with every request.
    ai: Option<Box<AiUsage>>,
}

impl<'a> Reads<'a> {
    /// Reads not yet made, for the request `facts` describes.
    pub fn of(facts: Cow<'a, RequestFacts>) -> Self {
        Reads {
            facts,
            now_ms: 0,
            status: 0,
            sample_weight: 1.0,
            latency_total_us: None,
            upstream_status: None,
            latency_upstream_us: None,
            request_bytes: 0,
            response_bytes: 0,
            names: None,
            method: None,
            path: None,
            evidence: EvidenceReads::default(),
            remote_addr: None,
            remote_addr_at: 0..0,
            authority: None,
            request_id: None,
            ai: None,
        }
    }

    /// Room for one request's reads, which a host keeps and refills in
    /// place ([`Reads::facts_mut`], [`Capturer::read_into`]).
    pub fn empty() -> Self {
        Reads::of(Cow::Owned(RequestFacts::default()))
    }

    /// The request facts, to refill ([`Capturer::request_facts_into`]);
    /// borrowed facts are copied first.
    pub fn facts_mut(&mut self) -> &mut RequestFacts {
        self.facts.to_mut()
    }

    /// Gives back what the host's answers hold (the buffers return to the
    /// allocator, for the next request's answers), keeping the room.
    pub fn release(&mut self) {
        if let Cow::Owned(facts) = &mut self.facts {
            facts.map = Vec::new();
        }
        self.names = None;
        self.method = None;
        self.path = None;
        self.evidence = EvidenceReads::default();
        self.remote_addr = None;
        self.authority = None;
        self.request_id = None;
        self.ai = None;
    }

    /// When the log phase read it: the clock its record is assembled at.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }
}

/// The caller's evidence that comes from properties, not headers.
#[derive(Debug, Default)]
struct EvidenceReads<'a> {
    verified_jwt: Option<Cow<'a, [u8]>>,
    client_dn: Option<Cow<'a, [u8]>>,
    client_fingerprint: Option<Cow<'a, [u8]>>,
    mtls_verified: bool,
}

/// A value of Kong's router cache: what one route id resolves to.
#[derive(Clone, Debug)]
struct Names {
    /// The route id as text, checked once for the route's cache entry.
    route_id: String,
    route_name: String,
    service_id: String,
    service_name: String,
    expires_ms: i64,
    /// Stands for these names and their route id in endpoint keys.
    memo: u64,
}

/// Per-chain capture state: the compiled config and the caches.
#[derive(Debug)]
pub struct Capturer {
    config: Config,
    key_names: Vec<String>,
    trusted_headers: Vec<String>,
    templater: PathTemplater,
    agents: AgentClassifier,
    sampler: Sampler,
    address_mode: AddressMode,
    hasher: Option<Pseudonymiser>,
    names: Cache<Key<[u8]>, Arc<Names>>,
    /// Decoded claims by token; capped in bytes too, so that clients
    /// sending ever new tokens with large claims cannot grow the worker's
    /// memory.
    tokens: Cache<u64, Option<Claims>>,
    token_hasher: FixedState,
    /// Identities by a hash of all their evidence: a caller seen before
    /// costs a lookup, not a resolution and a dozen strings. Each comes
    /// with its key for the builder.
    identities: Cache<u64, Option<Packed>>,
    identity_hasher: FixedState,
    /// Mixed into a caller's evidence key to make the builder's key for
    /// it ([`Memo::identity`]): unique to this capturer, whose config the
    /// resolution follows, among those that share an outbox.
    caller_salt: u64,
    /// The client address being recorded, kept for its capacity.
    address: String,
    endpoint_keys: EndpointKeys,
    /// Whether the host has `$kong_looker_log` ([`log_line`]).
    line: LineUse,
    /// Whether the config asks for no header that the line leaves out.
    line_fields: bool,
    /// Where a line's request fields lie, noted here for each request:
    /// kept, the array is neither zeroed nor copied.
    fields: [Range<usize>; log_line::REQUEST_FIELDS.len()],
}

/// Whether a capturer reads nginx's figures as one line ([`log_line`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineUse {
    /// Not asked yet: the first request tries it.
    Untried,
    /// Defined and read on every request, the request's fields with it.
    Read,
    /// Defined and read for nginx's figures; the request's headers come
    /// from the header map, for the reason given.
    FiguresOnly(FiguresOnly),
    /// Not defined: the figures are read one by one.
    Absent,
    /// Defined, but not in the format this build reads: the figures are
    /// read one by one, and the host says why once.
    Refused(LineError),
}

/// Why the line's request fields are not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FiguresOnly {
    /// The line is in the older format, which has none.
    OlderFormat,
    /// The config names API key or trusted headers that it does not carry.
    ConfiguredHeaders,
}

impl core::fmt::Display for FiguresOnly {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FiguresOnly::OlderFormat => {
                "it is in the format of an earlier release, without the request's fields"
            }
            FiguresOnly::ConfiguredHeaders => {
                "identity.key_names or identity.trusted_headers name headers it does not carry"
            }
        })
    }
}

impl Capturer {
    /// A capturer for a checked config; `seed` varies the sampling per
    /// instance.
    pub fn new(config: Config, seed: u64) -> Self {
        let lower = |names: &[String]| names.iter().map(|n| n.to_ascii_lowercase()).collect();
        let key_names: Vec<String> = lower(&config.identity.key_names);
        let line_fields = config.identity.trusted_headers.is_empty()
            && key_names.iter().all(|n| n == LINE_KEY_NAME);
        let cache_bytes = usize::try_from(config.max_cache_bytes).unwrap_or(usize::MAX);
        let token_bytes = cache_bytes / 3;
        Capturer {
            key_names,
            trusted_headers: lower(&config.identity.trusted_headers),
            templater: PathTemplater::new(
                config.paths.templates.clone(),
                usize::try_from(config.paths.max_templates).unwrap_or(usize::MAX),
                seed.rotate_left(41),
            ),
            agents: AgentClassifier::new(seed.rotate_left(53)),
            sampler: Sampler::new(config.sample_rate, seed),
            address_mode: config.privacy.client_address,
            hasher: Pseudonymiser::new(config.privacy.hash_key.as_bytes()),
            names: Cache::new(NAME_CACHE_ENTRIES, usize::MAX, seed.rotate_left(11)),
            tokens: Cache::new(TOKEN_CACHE_ENTRIES, token_bytes, seed.rotate_left(23)),
            token_hasher: FixedState::with_seed(seed.rotate_left(37)),
            identities: Cache::new(
                IDENTITY_CACHE_ENTRIES,
                cache_bytes.saturating_sub(token_bytes),
                seed.rotate_left(43),
            ),
            identity_hasher: FixedState::with_seed(seed.rotate_left(47)),
            caller_salt: memo::fresh().wrapping_mul(0x9e37_79b9_7f4a_7c15),
            address: String::new(),
            endpoint_keys: EndpointKeys::new(seed.rotate_left(59)),
            line: LineUse::Untried,
            fields: Default::default(),
            line_fields,
            config,
        }
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether nginx's figures come as one line ([`log_line`]), so that
    /// a host can say so once.
    pub fn line_use(&self) -> &LineUse {
        &self.line
    }

    /// Paths recorded as `{other}` because the template bound was reached.
    pub fn paths_overflowed(&self) -> u64 {
        self.templater.overflowed()
    }

    /// Notes where the needed headers lie in the host's serialized header
    /// map, which it keeps. Names are matched without regard to case.
    pub fn request_facts(&self, map: Vec<u8>, started_at_ms: i64) -> RequestFacts {
        let mut facts = RequestFacts::default();
        self.request_facts_into(&mut facts, map, started_at_ms);
        facts
    }

    /// [`Capturer::request_facts`] in place of what `facts` held (a host
    /// that keeps its reads refills them where they lie).
    pub fn request_facts_into(&self, facts: &mut RequestFacts, map: Vec<u8>, started_at_ms: i64) {
        facts.started_at_ms = started_at_ms;
        facts.start_from_request_time = false;
        facts.api_key_present = false;
        facts.trusted_rank = usize::MAX;
        facts.spans.present = 0;
        facts.from_line = false;
        facts.map = map;
        let consumer = self.config.identity.consumer_headers;
        let map = &facts.map;
        for (name, value) in headers::spans(map) {
            let Some(raw) = map.get(name.clone()) else {
                continue;
            };
            // Matched as bytes: names are ASCII, and a name that is not
            // UTF-8 matches nothing anyway.
            let known = FIELD_NAMES.find_at(map, name);
            let field = match known {
                Some(Field::Authorization) if value.len() > MAX_AUTHORIZATION_BYTES => None,
                Some(
                    Field::ConsumerId
                    | Field::ConsumerUsername
                    | Field::ConsumerCustomId
                    | Field::Credential,
                ) if !consumer => None,
                field => field,
            };
            let Some(field) = field else {
                let is = |configured: &String| raw.eq_ignore_ascii_case(configured.as_bytes());
                if self.key_names.iter().any(is) {
                    // An empty key is none (key-auth finds none in it);
                    // nginx's `$http_apikey` cannot tell it from absent.
                    facts.api_key_present |= !value.is_empty();
                } else if let Some(rank) = self.trusted_headers.iter().position(is)
                    && rank < facts.trusted_rank
                    && !value.is_empty()
                {
                    facts.trusted_rank = rank;
                    facts.spans.set(Field::Trusted, value);
                }
                continue;
            };
            facts.spans.set(field, value);
        }
    }

    /// Assembles the record of a finished request and hands it to `f`;
    /// false when sampling leaves the request out. `now_ms` is the filter
    /// clock in `on_log`. When the route, caller, path template and agent
    /// have been seen before, nothing is allocated here: values are
    /// borrowed from `facts`, `src` and the caches.
    ///
    /// The same as [`Capturer::read`] then [`Capturer::assemble`], which a
    /// host may run apart.
    pub fn capture(
        &mut self,
        facts: &RequestFacts,
        src: &dyn LogSource,
        now_ms: i64,
        f: impl FnOnce(&Record<'_>),
    ) -> bool {
        self.capture_into(facts, src, now_ms, &mut Resolving::once(f))
    }

    /// [`Capturer::capture`] into `sink`, which may know the caller by its
    /// key ([`Capturer::assemble_into`]).
    pub fn capture_into(
        &mut self,
        facts: &RequestFacts,
        src: &dyn LogSource,
        now_ms: i64,
        sink: &mut impl RecordSink,
    ) -> bool {
        // Filled where it lies: returned from `read`, the reads would be
        // moved once more.
        let mut reads = Reads::of(Cow::Borrowed(facts));
        let kept = self.read_into(&mut reads, src, || now_ms);
        if kept {
            self.assemble_into(&reads, sink);
        }
        kept
    }

    /// Everything the record of a finished request needs from the host,
    /// read now, in the order and under the conditions that the config,
    /// the request and the caches call for; `None` when sampling leaves
    /// the request out. The host can answer only in the log phase; what
    /// is read can wait for [`Capturer::assemble`], which reads nothing.
    pub fn read<'a, S: LogSource + ?Sized>(
        &mut self,
        facts: Cow<'a, RequestFacts>,
        src: &'a S,
        now_ms: i64,
    ) -> Option<Reads<'a>> {
        let mut reads = Reads::of(facts);
        self.read_into(&mut reads, src, || now_ms).then_some(reads)
    }

    /// [`Capturer::read`] for the request whose facts `reads` holds, in
    /// place of the reads it held before; false when sampling leaves the
    /// request out. A host that keeps reads refills them where they lie:
    /// moved, they are a `memory.copy` of some 450 bytes in Wasm.
    pub fn read_into<'a, S: LogSource + ?Sized>(
        &mut self,
        reads: &mut Reads<'a>,
        src: &'a S,
        now_ms: impl FnOnce() -> i64,
    ) -> bool {
        self.read_with(reads, src, None::<fn() -> Vec<u8>>, now_ms)
    }

    /// [`Capturer::read_into`] for a host that reads the request's headers
    /// in the log phase too, as the Wasm filter does: they come with
    /// `$kong_looker_log` where its format has them, and from `header_map`
    /// (the host's serialized request header map) where not. The start is
    /// then the log time less nginx's request time.
    pub fn read_request_into<'a, S: LogSource + ?Sized>(
        &mut self,
        reads: &mut Reads<'a>,
        src: &'a S,
        header_map: impl FnOnce() -> Vec<u8>,
        now_ms: impl FnOnce() -> i64,
    ) -> bool {
        reads.facts_mut().from_line = false;
        self.read_with(reads, src, Some(header_map), now_ms)
    }

    fn read_with<'a, S: LogSource + ?Sized>(
        &mut self,
        reads: &mut Reads<'a>,
        src: &'a S,
        header_map: Option<impl FnOnce() -> Vec<u8>>,
        now_ms: impl FnOnce() -> i64,
    ) -> bool {
        reads.now_ms = i64::MIN;
        reads.authority = None;
        let wants_fields = header_map.is_some();
        let kept = match self.line {
            LineUse::Untried | LineUse::Read | LineUse::FiguresOnly(_) => {
                self.read_line(reads, src, wants_fields)
            }
            LineUse::Absent | LineUse::Refused(_) => None,
        };
        // Left out by sampling is not a loss: kept records carry its weight.
        if !kept.unwrap_or_else(|| self.read_figures(reads, src)) {
            return false;
        }
        if let Some(header_map) = header_map {
            if reads.facts.from_line {
                // Not in the line (a server name where no Host was sent).
                if reads.facts.raw(Field::Host).is_empty() {
                    reads.authority = src.request_header(":authority");
                }
            } else {
                let facts = reads.facts_mut();
                self.request_facts_into(facts, header_map(), 0);
                facts.start_from_request_time = true;
            }
        }
        // The host's clock only where the line did not bring nginx's.
        if reads.now_ms == i64::MIN {
            reads.now_ms = now_ms();
        }
        let now_ms = reads.now_ms;

        // Looked up by its bytes: the names' entry holds it as text.
        let route = src.property("kong.route_id");
        let route_key = route
            .as_deref()
            .map_or(&[][..], |b| b.get(..router::MAX_FIELD_BYTES).unwrap_or(b));
        // Kong names a route's service only when a route matched: with no
        // route id there is nothing to look up (five reads, each Lua on
        // Kong, for every request that matched no route).
        reads.names = if route_key.is_empty() {
            None
        } else {
            match self.names.get(&Query(route_key)) {
                Some(n) if n.expires_ms > now_ms => Some(Arc::clone(n)),
                _ => Some(self.look_up_names(src, route_key, now_ms)),
            }
        };

        // A request nginx answered in its rewrite phase never reached the
        // headers phase; the log phase can still read what it was.
        let facts = &reads.facts;
        reads.method = match facts.raw(Field::Method) {
            b"" => src.property("request.method"),
            _ => None,
        };
        reads.path = match facts.raw(Field::Path) {
            b"" => src.property("request.path"),
            _ => None,
        };
        reads.evidence = self.evidence_reads(facts, src);
        reads.request_id = if self.config.request_id {
            src.property("ngx.kong_request_id")
        } else {
            None
        };
        let ai = src.ai().or_else(|| {
            if !self.config.ai_model_header {
                return None;
            }
            let model = src.response_header("x-kong-llm-model")?;
            let cache = src.response_header("x-cache-status");
            ai::from_headers(Some(&model), cache.as_deref())
        });
        reads.ai = ai.map(Box::new);
        true
    }

    /// nginx's figures from `$kong_looker_log`, in one host call: whether
    /// sampling keeps the request, or `None` when the host has no such line
    /// (the figures are then read one by one, and the line is not asked for
    /// again). `reads.now_ms` stays `i64::MIN` when the line had no clock.
    ///
    /// With `wants_fields`, the request's fields are taken from the line
    /// into the facts where its format has them, they are exactly as many
    /// as it has, and the config asks for no header they leave out.
    fn read_line<'a, S: LogSource + ?Sized>(
        &mut self,
        reads: &mut Reads<'a>,
        src: &'a S,
        wants_fields: bool,
    ) -> Option<bool> {
        let Some(line) = src.property(log_line::PROPERTY) else {
            self.line = LineUse::Absent;
            return None;
        };
        let at = match log_line::figures(&line) {
            Ok(l) => {
                reads.status = l
                    .status
                    .or_else(|| {
                        src.response_header(":status")
                            .and_then(|s| timing::status(&s))
                    })
                    .unwrap_or(0);
                reads.latency_total_us = l.request_time_us;
                reads.upstream_status = l.upstream_status;
                reads.latency_upstream_us = match reads.upstream_status {
                    Some(_) => l.upstream_time_us,
                    None => None,
                };
                reads.request_bytes = l.request_length.unwrap_or(0);
                reads.response_bytes = l.bytes_sent.unwrap_or(0);
                reads.now_ms = l.now_ms.unwrap_or(i64::MIN);
                (l.remote_addr, l.request_at)
            }
            Err(e) => {
                self.line = LineUse::Refused(e);
                return None;
            }
        };
        let (address, request_at) = at;
        if self.line == LineUse::Untried {
            self.line = if line.starts_with(b"kl1|") {
                LineUse::FiguresOnly(FiguresOnly::OlderFormat)
            } else if !self.line_fields {
                LineUse::FiguresOnly(FiguresOnly::ConfiguredHeaders)
            } else {
                LineUse::Read
            };
        }
        let weight = self.sampler.keep(reads.status);
        reads.sample_weight = weight.unwrap_or(0.0);
        reads.remote_addr_at = address.clone();
        let split = match (wants_fields, request_at, &self.line) {
            (true, Some(at), LineUse::Read) if weight.is_some() => {
                log_line::request_fields_into(&line, at, &mut self.fields)
            }
            _ => false,
        };
        if split {
            let facts = reads.facts_mut();
            self.facts_from_line(facts, line.into_owned(), &self.fields);
            reads.remote_addr = None;
        } else {
            reads.remote_addr = (!address.is_empty()).then_some(line);
        }
        Some(weight.is_some())
    }

    /// The facts from a line's request fields, in place of what `facts`
    /// held: as [`Capturer::request_facts_into`] finds them in a header
    /// map, where nginx's `$http_*` leaves an empty header as absent.
    fn facts_from_line(
        &self,
        facts: &mut RequestFacts,
        line: Vec<u8>,
        fields: &[Range<usize>; log_line::REQUEST_FIELDS.len()],
    ) {
        facts.started_at_ms = 0;
        facts.start_from_request_time = true;
        facts.api_key_present = false;
        facts.trusted_rank = usize::MAX;
        facts.spans.present = 0;
        facts.from_line = true;
        facts.consumer_run = match (
            fields.get(*CONSUMER_RUN.start()),
            fields.get(*CONSUMER_RUN.end()),
        ) {
            (Some(first), Some(last)) => (
                u32::try_from(first.start).unwrap_or(u32::MAX),
                u32::try_from(last.end).unwrap_or(u32::MAX),
            ),
            _ => (0, 0),
        };
        let consumer = self.config.identity.consumer_headers;
        for (field, value) in LINE_FIELDS.iter().zip(fields) {
            if value.is_empty() {
                continue;
            }
            match field {
                Some(Field::Authorization) if value.len() > MAX_AUTHORIZATION_BYTES => {}
                Some(
                    Field::ConsumerId
                    | Field::ConsumerUsername
                    | Field::ConsumerCustomId
                    | Field::Credential,
                ) if !consumer => {}
                Some(field) => facts.spans.set(*field, value.clone()),
                None => facts.api_key_present = !self.key_names.is_empty(),
            }
        }
        facts.map = line;
    }

    /// nginx's figures read one by one: false when sampling leaves the
    /// request out.
    fn read_figures<'a, S: LogSource + ?Sized>(
        &mut self,
        reads: &mut Reads<'a>,
        src: &'a S,
    ) -> bool {
        reads.status = src
            .property("response.code")
            .and_then(|s| timing::status(&s))
            .or_else(|| {
                src.response_header(":status")
                    .and_then(|s| timing::status(&s))
            })
            .unwrap_or(0);
        let Some(sample_weight) = self.sampler.keep(reads.status) else {
            return false;
        };
        reads.sample_weight = sample_weight;
        reads.latency_total_us = src
            .property("ngx.request_time")
            .and_then(|t| timing::seconds_to_us(&t));
        reads.upstream_status = src
            .property("ngx.upstream_status")
            .and_then(|s| timing::last_upstream_status(&s));
        reads.latency_upstream_us = match reads.upstream_status {
            Some(_) => src
                .property("ngx.upstream_response_time")
                .and_then(|t| timing::upstream_us(&t)),
            None => None,
        };
        // The schema counts headers and body, as Kong's own log serializer
        // does: nginx's $request_length and $bytes_sent. (The Envoy-style
        // `request.size` is $content_length in ngx_wasm_module, absent for
        // a GET, and `response.size` is the body alone.)
        reads.request_bytes = src
            .property("ngx.request_length")
            .and_then(|v| timing::size(&v))
            .unwrap_or(0);
        reads.response_bytes = src
            .property("ngx.bytes_sent")
            .and_then(|v| timing::size(&v))
            .unwrap_or(0);
        reads.remote_addr = src.property("ngx.remote_addr");
        reads.remote_addr_at = 0..reads.remote_addr.as_ref().map_or(0, |a| a.len());
        true
    }

    /// Assembles the record from what [`Capturer::read`] read, and hands it
    /// to `f`. It asks the host for nothing, so it may run after the log
    /// phase, records in a row.
    pub fn assemble(&mut self, reads: &Reads<'_>, f: impl FnOnce(&Record<'_>)) {
        self.assemble_into(reads, &mut Resolving::once(f));
    }

    /// [`Capturer::assemble`] into `sink`, which may know the caller by its
    /// key: the record then gives the key alone, and the caller's cache
    /// entry, at high cardinality a read from far memory on every record,
    /// is not looked at (`bench/RESULTS.md`, "Callers by key").
    pub fn assemble_into(&mut self, reads: &Reads<'_>, sink: &mut impl RecordSink) {
        let facts = &*reads.facts;
        let key = match facts.consumer_run() {
            Some(run) => self.line_evidence_key(facts, run, &reads.evidence),
            None => self.evidence_key(facts, &reads.evidence),
        };
        let memo = (key ^ self.caller_salt).max(1);
        let by_key = sink.knows_identity(memo);
        if !by_key {
            self.resolve_caller(key, facts, &reads.evidence);
        }
        let overflowed = self.templater.overflowed();
        if !self.assemble_once(reads, key, memo, by_key, sink) && by_key {
            // A new dictionary generation forgot the key in between. The
            // record is made again, and its path counts once.
            self.templater.rewind_overflowed(overflowed);
            self.resolve_caller(key, facts, &reads.evidence);
            self.assemble_once(reads, key, memo, false, sink);
        }
    }

    /// The record, with its caller by key alone when `by_key`, else from
    /// the cache, into `sink`; what `sink` answered.
    fn assemble_once(
        &mut self,
        reads: &Reads<'_>,
        key: u64,
        memo: u64,
        by_key: bool,
        sink: &mut impl RecordSink,
    ) -> bool {
        let facts = &reads.facts;
        let now_ms = reads.now_ms;
        // Capped before the multiply, which then cannot overflow (a
        // saturating u64 multiply is a 128-bit call on wasm32).
        // A host that counts from nginx's request time has no start of its
        // own to count from.
        let own_clock_us = if facts.start_from_request_time {
            0
        } else {
            u64::try_from(now_ms.saturating_sub(facts.started_at_ms))
                .unwrap_or(0)
                .min(timing::MAX_DURATION_US / 1000)
                .wrapping_mul(1000)
        };
        let latency_total_us = reads.latency_total_us.unwrap_or(own_clock_us);
        let started_at_ms = if facts.start_from_request_time {
            now_ms.saturating_sub(i64::try_from(latency_total_us / 1000).unwrap_or(0))
        } else {
            facts.started_at_ms
        };
        let latency_upstream_us = reads.latency_upstream_us;
        let source = if reads.upstream_status.is_some() {
            ResponseSource::Upstream
        } else {
            ResponseSource::Kong
        };
        let (request_bytes, response_bytes) = (reads.request_bytes, reads.response_bytes);

        let method_raw = match &reads.method {
            Some(m) => m.as_ref(),
            None => facts.raw(Field::Method),
        };
        let method = method_from_name(method_raw);
        // Text only for a method outside the enum.
        let method_token = if method == Method::Other {
            lossy(method_raw)
        } else {
            Cow::Borrowed("")
        };
        let method_text = super::cut(&method_token, 32);
        let mut host = facts.get(Field::Host);
        if host.is_empty() {
            host = facts.get(Field::Authority);
        }
        if let (true, Some(authority)) = (host.is_empty(), &reads.authority) {
            host = lossy(authority.get(..MAX_HEADER_BYTES).unwrap_or(authority));
        }
        let raw_path = match &reads.path {
            Some(p) => lossy(p),
            None => facts.get(Field::Path),
        };
        // Borrowed from the host's answer when kept as it is.
        let in_line = match &reads.remote_addr {
            Some(a) => Some(a.as_ref()),
            None if facts.from_line && !reads.remote_addr_at.is_empty() => Some(&facts.map[..]),
            None => None,
        };
        // An address the sink's builder remembers was checked when it was
        // first recorded, and goes by the builder's hash of it.
        let mut client_memo = 0;
        let address = match in_line.and_then(|a| a.get(reads.remote_addr_at.clone())) {
            Some(a) => privacy::recorded_address_unless_known(
                a,
                &self.address_mode,
                self.hasher.as_ref(),
                &mut self.address,
                |text| {
                    client_memo = sink.knows_client(text).unwrap_or(0);
                    client_memo != 0
                },
            ),
            None => Recorded::Nothing,
        };
        if !matches!(address, Recorded::AsGiven(_)) {
            client_memo = 0;
        }
        let agent = self.agents.classify_keyed(facts.raw(Field::UserAgent));
        let agent_memo = agent.map_or(0, |(_, key)| key);
        let agent = agent.map(|(rule, _)| AgentRef {
            category: rule.category,
            name: rule.name.as_str(),
        });
        let request_id_text = reads
            .request_id
            .as_deref()
            .map(lossy)
            .filter(|id| id.len() <= 64 && id.bytes().all(|b| b.is_ascii_graphic()));
        let ai_ref = reads.ai.as_deref().map(AiUsage::as_record);
        // Last of the mutable work: the template borrows the templater. An
        // endpoint the sink's builder knows by key has had its template
        // through the templater before, so the set of templates is not
        // read for it.
        let names = reads.names.as_deref();
        let names_memo = names.map_or(0, |n| n.memo);
        let host = super::cut(&host, 256);
        let endpoint_keys = &self.endpoint_keys;
        let mut endpoint_memo = 0;
        let path = self.templater.template_unless(&raw_path, |candidate| {
            endpoint_memo = endpoint_keys.key(names_memo, method, method_text, host, candidate);
            sink.knows_endpoint(endpoint_memo)
        });
        if path == path::OTHER {
            // Past the cap: the key is of what the record says.
            endpoint_memo = endpoint_keys.key(names_memo, method, method_text, host, path);
        }

        // The record borrows from here on.
        // Without an entry (which `resolve_caller` has just made) the record
        // says nothing of its key: the builder must not take it for no caller.
        let (identity, identity_memo) = match by_key {
            true => (None, memo),
            false => self
                .identities
                .get(&key)
                .map_or((None, 0), |entry| (entry.as_ref(), memo)),
        };
        // The groups as the record lends them, without a Vec.
        let mut group_refs: [&str; identity::MAX_GROUPS] = [""; identity::MAX_GROUPS];
        let mut groups = 0;
        if let Some(i) = identity.filter(|i| i.group_count() > 0) {
            for (slot, g) in group_refs.iter_mut().zip(i.groups()) {
                *slot = g;
            }
            groups = i.group_count().min(identity::MAX_GROUPS);
        }
        let fields = identity.map_or([""; 7], Packed::fields);
        let record = Record {
            started_at_ms,
            route: RouteRef {
                route_id: names.map_or("", |n| n.route_id.as_str()),
                route_name: names.map_or("", |n| n.route_name.as_str()),
                service_id: names.map_or("", |n| n.service_id.as_str()),
                service_name: names.map_or("", |n| n.service_name.as_str()),
                workspace: &self.config.workspace,
            },
            method,
            method_text,
            host,
            path,
            status: reads.status,
            source,
            latency_total_us,
            latency_upstream_us,
            request_bytes,
            response_bytes,
            identity: identity.map(|i| {
                let [
                    consumer_id,
                    consumer_username,
                    consumer_custom_id,
                    credential,
                    subject,
                    issuer,
                    client_id,
                ] = fields;
                IdentityRef {
                    auth_method: i.auth_method(),
                    trust: i.trust(),
                    consumer_id,
                    consumer_username,
                    consumer_custom_id,
                    credential,
                    consumer_groups: group_refs.get(..groups).unwrap_or_default(),
                    subject,
                    issuer,
                    client_id,
                    anonymous: i.anonymous(),
                }
            }),
            client_address: match address {
                Recorded::AsGiven(text) => text,
                Recorded::Written => &self.address,
                Recorded::Nothing => "",
            },
            agent,
            request_id: request_id_text.as_deref().unwrap_or(""),
            trace_id: timing::trace_id(facts.raw(Field::Traceparent)).unwrap_or_default(),
            sample_weight: reads.sample_weight,
            ai: ai_ref.as_ref(),
            memo: Memo {
                endpoint: endpoint_memo,
                identity: identity_memo,
                identity_by_key: by_key,
                agent: agent_memo,
                client: client_memo,
            },
        };
        sink.push(&record)
    }

    /// Route name, service id and service name for `route_id`: from
    /// `kong.route_name` and friends (3.9), else from the router JSON
    /// (3.8). Cached per route id for a minute, because on Kong each of
    /// these reads runs Lua; a route's names change rarely, and a changed
    /// config gets a fresh instance anyway.
    fn look_up_names<S: LogSource + ?Sized>(
        &mut self,
        src: &S,
        route_key: &[u8],
        now_ms: i64,
    ) -> Arc<Names> {
        let field = |v: Option<Cow<'_, [u8]>>| {
            text(v)
                .map(|s| bounded(&s, router::MAX_FIELD_BYTES))
                .unwrap_or_default()
        };
        let mut service_id = field(src.property("kong.service_id"));
        let route_name = match text(src.property("kong.route_name")) {
            Some(name) => bounded(&name, router::MAX_FIELD_BYTES),
            None => src
                .property("kong.router.route")
                .and_then(|json| router::entity(&json))
                .and_then(|e| e.name)
                .unwrap_or_default(),
        };
        let service_name = match text(src.property("kong.service_name")) {
            Some(name) => bounded(&name, router::MAX_FIELD_BYTES),
            None => {
                let entity = src
                    .property("kong.router.service")
                    .and_then(|json| router::entity(&json))
                    .unwrap_or_default();
                if service_id.is_empty() {
                    service_id = entity.id.unwrap_or_default();
                }
                entity.name.unwrap_or_default()
            }
        };
        let names = Arc::new(Names {
            route_id: bounded(&lossy(route_key), router::MAX_FIELD_BYTES),
            route_name,
            service_id,
            service_name,
            expires_ms: now_ms.saturating_add(NAME_TTL_MS),
            memo: memo::fresh(),
        });
        if !route_key.is_empty() {
            self.names
                .insert(Key(route_key.into()), Arc::clone(&names), 0);
        }
        names
    }

    /// The properties the caller's evidence needs beyond the headers: the
    /// token Kong's jwt plugin verified, and the client certificate.
    fn evidence_reads<'a, S: LogSource + ?Sized>(
        &self,
        facts: &RequestFacts,
        src: &'a S,
    ) -> EvidenceReads<'a> {
        use Field::*;
        let cfg = &self.config.identity;
        let raw = |f| facts.raw(f);
        // Kong's jwt plugin keeps the token it verified here. The read is
        // Lua on Kong, so it is made only where that plugin may have
        // authenticated the request: the plugin always sets the credential
        // header (to its key), and a token it took from `Authorization`
        // is a bearer token the filter decodes itself. It is left out when
        // the header is missing (consumer headers alone, anonymous), when
        // `Authorization` holds any credential (a bearer token, Basic,
        // HMAC, SigV4: another plugin's) and when a key was sent; what is
        // left is a token from the query or a cookie.
        let verified_jwt = if cfg.jwt
            && !raw(Credential).is_empty()
            && raw(Authorization).trim_ascii().is_empty()
            && !facts.api_key_present
        {
            src.property("kong.ctx.shared.authenticated_jwt_token")
        } else {
            None
        };
        // A client certificate needs TLS: skip the read on plain HTTP.
        let tls = raw(Scheme) != b"http";
        let (client_dn, client_fingerprint, mtls_verified) = if cfg.mtls && tls {
            match src
                .property("ngx.ssl_client_s_dn")
                .filter(|d| !d.is_empty())
            {
                Some(dn) => (
                    Some(dn),
                    src.property("ngx.ssl_client_fingerprint"),
                    src.property("connection.mtls")
                        .is_some_and(|v| *v == *b"true"),
                ),
                None => (None, None, false),
            }
        } else {
            (None, None, false)
        };
        EvidenceReads {
            verified_jwt,
            client_dn,
            client_fingerprint,
            mtls_verified,
        }
    }

    /// Resolves the caller whose evidence has the key `key`, unless the
    /// cache has it, and caches the result (which may be `None`: no
    /// evidence).
    fn resolve_caller(&mut self, key: u64, facts: &RequestFacts, reads: &EvidenceReads<'_>) {
        use Field::*;
        if self.identities.contains_key(&key) {
            return;
        }
        let cfg = &self.config.identity;
        let mtls_verified = reads.mtls_verified;
        let verified_jwt = reads.verified_jwt.as_deref();
        let client_dn = reads.client_dn.as_deref();
        let client_fingerprint = reads.client_fingerprint.as_deref();
        let verified_jwt = verified_jwt.map(lossy).unwrap_or_default();
        let client_dn = client_dn.map(lossy).unwrap_or_default();
        let client_fingerprint = client_fingerprint.map(lossy).unwrap_or_default();
        let evidence = Evidence {
            consumer_id: &facts.get(ConsumerId),
            consumer_username: &facts.get(ConsumerUsername),
            consumer_custom_id: &facts.get(ConsumerCustomId),
            credential: &facts.get(Credential),
            anonymous: &facts.get(Anonymous),
            consumer_groups: &facts.get(ConsumerGroups),
            authenticated_groups: &facts.get(AuthenticatedGroups),
            authenticated_userid: &facts.get(AuthenticatedUserid),
            authenticated_scope: &facts.get(AuthenticatedScope),
            api_key_present: facts.api_key_present,
            authorization: &facts.get(Authorization),
            verified_jwt: &verified_jwt,
            client_dn: &client_dn,
            client_fingerprint: &client_fingerprint,
            mtls_verified,
            trusted_user: &facts.get(Trusted),
        };
        let claims = identity::jwt_token(&evidence, cfg).and_then(|(token, trust)| {
            // Clients reuse a token for its lifetime: decode each once.
            let key = self.token_hasher.hash_one(token);
            if !self.tokens.contains_key(&key) {
                let claims = jwt::claims(token, &cfg.groups_claim).ok();
                let size = claims.as_ref().map_or(0, claims_bytes);
                self.tokens.insert(key, claims, size);
            }
            self.tokens
                .get(&key)
                .and_then(Option::as_ref)
                .map(|c| (c, trust))
        });
        let mut id = identity::resolve_with_claims(&evidence, cfg, claims);
        if self.config.privacy.pseudonymize
            && let (Some(id), Some(hasher)) = (id.as_mut(), &self.hasher)
        {
            id.pseudonymise(hasher);
        }
        let packed = id.as_ref().map(Packed::new);
        let size = packed.as_ref().map_or(0, Packed::heap_bytes);
        self.identities.insert(key, packed, size);
    }

    /// The identity cache's key for a caller whose headers came one by
    /// one: everything the resolution depends on, as raw bytes (the config
    /// and keys are the capturer's own), so that equal evidence is an equal
    /// key. Hashing the bytes spares checking a dozen headers' UTF-8 for a
    /// caller met before. The hasher is seeded per instance, so clients
    /// cannot aim at a collision.
    fn evidence_key(&self, facts: &RequestFacts, reads: &EvidenceReads<'_>) -> u64 {
        use Field::*;
        let raw = |f| facts.raw(f);
        let verified_jwt = reads.verified_jwt.as_deref();
        let client_dn = reads.client_dn.as_deref();
        let client_fingerprint = reads.client_fingerprint.as_deref();
        let mtls_verified = reads.mtls_verified;
        const EVIDENCE: usize = 14;
        let raw_evidence: [&[u8]; EVIDENCE] = [
            raw(ConsumerId),
            raw(ConsumerUsername),
            raw(ConsumerCustomId),
            raw(Credential),
            raw(Anonymous),
            raw(ConsumerGroups),
            raw(AuthenticatedGroups),
            raw(AuthenticatedUserid),
            raw(AuthenticatedScope),
            raw(Authorization),
            raw(Trusted),
            verified_jwt.unwrap_or_default(),
            client_dn.unwrap_or_default(),
            client_fingerprint.unwrap_or_default(),
        ];
        // Most of it is absent: a mask of what is present, then only the
        // present values, each with its length (so no two differ alike).
        let mut mask = u32::from(facts.api_key_present) << 1 | u32::from(mtls_verified);
        for value in &raw_evidence {
            mask = mask << 1 | u32::from(!value.is_empty());
        }
        // The mask and the lengths go in one write: foldhash takes each
        // integer written alone through 128-bit shifts, calls on wasm32.
        let mut head = [0u8; 4 + 2 * EVIDENCE];
        let (mask_bytes, lens) = head.split_at_mut(4);
        mask_bytes.copy_from_slice(&mask.to_le_bytes());
        for (slot, value) in lens.as_chunks_mut::<2>().0.iter_mut().zip(&raw_evidence) {
            *slot = u16::try_from(value.len()).unwrap_or(u16::MAX).to_le_bytes();
        }
        let mut hasher = self.identity_hasher.build_hasher();
        hasher.write(&head);
        for value in raw_evidence.iter().filter(|v| !v.is_empty()) {
            hasher.write(value);
        }
        hasher.finish()
    }

    /// [`Capturer::evidence_key`] for a caller whose headers came in a
    /// `$kong_looker_log` line, where the nine consumer and
    /// authenticated-user headers lie in a row, newlines between: one
    /// write hashes them all, where one by one each was a write of its own
    /// and a length (some 500 Wasm instructions a request). No value holds
    /// a newline (the line would have too many fields), so values that
    /// end elsewhere are other bytes. The key may be finer than the
    /// resolution: a header the config ignores is still in the run.
    fn line_evidence_key(
        &self,
        facts: &RequestFacts,
        run: &[u8],
        reads: &EvidenceReads<'_>,
    ) -> u64 {
        use Field::*;
        const OTHERS: usize = 5;
        let others: [&[u8]; OTHERS] = [
            facts.raw(Authorization),
            facts.raw(Trusted),
            reads.verified_jwt.as_deref().unwrap_or_default(),
            reads.client_dn.as_deref().unwrap_or_default(),
            reads.client_fingerprint.as_deref().unwrap_or_default(),
        ];
        // The flags, then two bytes that a header-map key never has there
        // (its mask's upper half is zero), then each other value's length.
        let mut head = [0u8; 4 + 2 * OTHERS];
        let (flags, lens) = head.split_at_mut(4);
        flags.copy_from_slice(&[
            u8::from(facts.api_key_present) << 1 | u8::from(reads.mtls_verified),
            0,
            0xff,
            0xff,
        ]);
        for (slot, value) in lens.as_chunks_mut::<2>().0.iter_mut().zip(&others) {
            *slot = u16::try_from(value.len()).unwrap_or(u16::MAX).to_le_bytes();
        }
        let mut hasher = self.identity_hasher.build_hasher();
        hasher.write(&head);
        hasher.write(run);
        for value in others.iter().filter(|v| !v.is_empty()) {
            hasher.write(value);
        }
        hasher.finish()
    }
}

/// A string's bytes on the heap, with an allocator's header.
fn heap_bytes(s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        s.len().saturating_add(16)
    }
}

/// A string's bytes in a vector: its own, and its place in the vector's.
fn in_vec_bytes(s: &str) -> usize {
    heap_bytes(s).saturating_add(size_of::<String>())
}

/// Roughly what a decoded token's claims occupy.
fn claims_bytes(c: &Claims) -> usize {
    [&c.subject, &c.issuer, &c.client_id]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .map(heap_bytes)
        .chain(c.groups.iter().map(String::as_str).map(in_vec_bytes))
        .fold(0, usize::saturating_add)
}

/// Bytes as text, borrowed when they are UTF-8 (checked the fast way
/// first: the lossy decoder is several times slower on valid text).
fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    match kong_looker_proto::bytes::text(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// A property as text; invalid UTF-8 is replaced.
fn text(value: Option<Cow<'_, [u8]>>) -> Option<Cow<'_, str>> {
    value.map(|v| match v {
        Cow::Borrowed(b) => lossy(b),
        Cow::Owned(v) => Cow::Owned(match String::from_utf8(v) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }),
    })
}

fn bounded(value: &str, max: usize) -> String {
    super::cut(value, max).to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Answers every property but `missing` with `answer` and notes what
    /// was asked.
    struct Recording {
        asked: std::cell::RefCell<BTreeSet<String>>,
        answer: Option<&'static str>,
        missing: &'static [&'static str],
    }

    impl LogSource for Recording {
        fn property(&self, name: &str) -> Option<Cow<'_, [u8]>> {
            self.asked.borrow_mut().insert(name.to_owned());
            self.answer
                .filter(|_| !self.missing.contains(&name))
                .map(|a| Cow::Borrowed(a.as_bytes()))
        }
        fn response_header(&self, _: &str) -> Option<Cow<'_, [u8]>> {
            None
        }
    }

    #[test]
    fn the_capturer_asks_for_exactly_the_listed_properties() {
        let config = Config::parse(
            br#"{"collector":"127.0.0.1:9","request_id":true,"identity":{"jwt":true,"mtls":true}}"#,
        )
        .unwrap();
        let mut capturer = Capturer::new(config, 7);
        let mut asked = BTreeSet::new();
        // Over TLS with a consumer and no bearer token, every read happens:
        // with answers (names from Kong 3.9's properties, then from the
        // router JSON of 3.8, on routes not met before), and without (the
        // rewrite-phase reads of method and path).
        let map = headers::serialize([
            (&b":scheme"[..], &b"https"[..]),
            (b"x-consumer-id", b"c-1"),
            (b"x-credential-identifier", b"jwt-key-1"),
        ]);
        let passes: [(Option<&str>, &[&str]); 3] = [
            (Some("200"), &[]),
            (Some("201"), &["kong.route_name", "kong.service_name"]),
            (None, &[]),
        ];
        for (answer, missing) in passes {
            let facts = capturer.request_facts(map.clone(), 1_000);
            let src = Recording {
                asked: Default::default(),
                answer,
                missing,
            };
            capturer.capture(&facts, &src, 2_000, |_| {});
            asked.extend(src.asked.into_inner());
        }
        let listed: BTreeSet<String> = PROPERTIES.iter().map(|p| p.to_string()).collect();
        assert_eq!(asked, listed);
    }

    /// nginx with or without `$kong_looker_log`: the single reads answer
    /// from `vars`, and the line, where defined, joins the same values.
    struct Nginx {
        vars: Vec<(&'static str, &'static str)>,
        line: Option<String>,
        /// `:authority`, for a single read of the header map.
        authority: Option<String>,
        asked: std::cell::RefCell<Vec<String>>,
    }

    impl Nginx {
        fn new(vars: &[(&'static str, &'static str)], now_ms: i64, line: bool) -> Nginx {
            let var = |n: &str| vars.iter().find(|(k, _)| *k == n).map_or("", |(_, v)| v);
            let line = line.then(|| {
                format!(
                    "kl1|{}|{}|{}|{}|{}|{}|{}.{:03}|{}",
                    var("response.code"),
                    var("ngx.request_time"),
                    var("ngx.upstream_status"),
                    var("ngx.upstream_response_time"),
                    var("ngx.request_length"),
                    var("ngx.bytes_sent"),
                    now_ms / 1000,
                    now_ms % 1000,
                    var("ngx.remote_addr"),
                )
            });
            Nginx {
                vars: vars.to_vec(),
                line,
                authority: None,
                asked: Default::default(),
            }
        }

        /// The line in `version`'s format, with the request fields of
        /// `headers` after it in `kl2`; `headers`' `:authority` answers a
        /// single read.
        fn with_request(mut self, version: &str, headers: &[(&str, &str)]) -> Nginx {
            if let Some(line) = &mut self.line {
                line.replace_range(..3, version);
                if version == "kl2" {
                    line.push('\n');
                    line.push_str(&request_fields(headers));
                }
            }
            self.authority = headers
                .iter()
                .find(|(k, _)| *k == ":authority")
                .map(|(_, v)| v.to_string());
            self
        }
    }

    impl LogSource for Nginx {
        fn property(&self, name: &str) -> Option<Cow<'_, [u8]>> {
            self.asked.borrow_mut().push(name.to_owned());
            if name == log_line::PROPERTY {
                return self.line.as_deref().map(|l| Cow::Borrowed(l.as_bytes()));
            }
            let (_, v) = self.vars.iter().find(|(k, _)| *k == name)?;
            Some(Cow::Borrowed(v.as_bytes()))
        }
        fn response_header(&self, _: &str) -> Option<Cow<'_, [u8]>> {
            None
        }
        fn request_header(&self, name: &str) -> Option<Cow<'_, [u8]>> {
            self.asked.borrow_mut().push(format!("header {name}"));
            match name {
                ":authority" => self
                    .authority
                    .as_deref()
                    .map(|a| Cow::Borrowed(a.as_bytes())),
                _ => None,
            }
        }
    }

    /// The request fields nginx would put in a `kl2` line for `headers`
    /// (a header map's pairs): `$http_*` joins repeated headers.
    fn request_fields(headers: &[(&str, &str)]) -> String {
        let find = |name: &str| {
            let values: Vec<&str> = headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
                .collect();
            values.join(", ")
        };
        let fields: Vec<String> = log_line::REQUEST_FIELDS
            .iter()
            .map(|f| match *f {
                "$request_method" => find(":method"),
                "$uri$is_args$args" => find(":path"),
                "$scheme" => find(":scheme"),
                http => find(&http.strip_prefix("$http_").unwrap().replace('_', "-")),
            })
            .collect();
        fields.join("\n")
    }

    #[test]
    fn the_log_line_and_the_single_reads_make_the_same_record() {
        let requests: [&[(&str, &str)]; 4] = [
            &[
                ("response.code", "200"),
                ("ngx.request_time", "0.012"),
                ("ngx.upstream_status", "502, 200"),
                ("ngx.upstream_response_time", "0.004, 0.007"),
                ("ngx.request_length", "431"),
                ("ngx.bytes_sent", "1290"),
                ("ngx.remote_addr", "2001:db8::7"),
                ("kong.route_id", "r-1"),
            ],
            // Answered by nginx: no upstream.
            &[
                ("response.code", "301"),
                ("ngx.request_time", "0.000"),
                ("ngx.request_length", "87"),
                ("ngx.bytes_sent", "312"),
                ("ngx.remote_addr", "10.1.2.3"),
            ],
            // Nothing but a status, and garbage where numbers go.
            &[("response.code", "503"), ("ngx.request_time", "soon")],
            &[],
        ];
        let token = "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1LTEiLCJpc3MiOiJodHRwczovL2lkcCJ9.";
        let header_sets: [&[(&str, &str)]; 5] = [
            &[
                (":method", "GET"),
                (":path", "/v1/users/42?page=2"),
                (":scheme", "https"),
                (":authority", "kong:8000"),
                ("Host", "api.example.com"),
                ("User-Agent", "curl/8.5.0"),
                ("X-Consumer-ID", "c-1"),
                ("X-Consumer-Username", "alice"),
                ("X-Consumer-Groups", "gold"),
                ("X-Credential-Identifier", "key-1"),
                ("apikey", "k-123"),
                (
                    "traceparent",
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                ),
            ],
            // No Host: the server's name, read singly beside the line.
            &[
                (":method", "POST"),
                (":path", "/orders"),
                (":authority", "kong:8000"),
                ("authorization", token),
                ("X-Authenticated-Userid", "u-9"),
                ("X-Authenticated-Scope", "read write"),
                // An empty key is no key, either way.
                ("apikey", ""),
            ],
            // A newline in a field (a decoded %0A): too many fields, so the
            // header map is read for this request.
            &[(":method", "GET"), (":path", "/a\nb"), ("Host", "h")],
            // A method outside the enum, and an anonymous consumer.
            &[
                (":method", "PURGE"),
                (":path", "/cache"),
                ("Host", "h"),
                ("X-Anonymous-Consumer", "true"),
                ("X-Consumer-ID", "anon"),
            ],
            &[],
        ];
        for vars in requests {
            for headers in header_sets {
                let map =
                    headers::serialize(headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())));
                let mut records = Vec::new();
                let mut asked = Vec::new();
                let mut maps_read = Vec::new();
                for version in [None, Some("kl1"), Some("kl2")] {
                    let config = Config::parse(br#"{"collector":"127.0.0.1:9"}"#).unwrap();
                    let mut capturer = Capturer::new(config, 7);
                    let src = Nginx::new(vars, 2_345, version.is_some())
                        .with_request(version.unwrap_or(""), headers);
                    let mut reads = Reads::empty();
                    let mut map_read = false;
                    let header_map = || {
                        map_read = true;
                        map.clone()
                    };
                    assert!(capturer.read_request_into(&mut reads, &src, header_map, || 2_345));
                    // The memo keys are the capturer's own, not the record's.
                    capturer.assemble(&reads, |r| {
                        records.push(format!(
                            "{:?}",
                            Record {
                                memo: Memo::default(),
                                ..*r
                            }
                        ));
                    });
                    asked.push(src.asked.into_inner());
                    maps_read.push(map_read);
                    let want = match version {
                        None => LineUse::Absent,
                        Some("kl1") => LineUse::FiguresOnly(FiguresOnly::OlderFormat),
                        _ => LineUse::Read,
                    };
                    assert_eq!(*capturer.line_use(), want);
                }
                assert_eq!(records[0], records[1], "{vars:?} {headers:?}");
                assert_eq!(records[0], records[2], "{vars:?} {headers:?}");
                // One read for nginx's figures, where there were up to seven;
                // with the request's fields in it, no header map, but for the
                // request whose path has a newline.
                let ngx = |a: &Vec<String>| {
                    a.iter()
                        .filter(|n| PROPERTIES[..8].contains(&n.as_str()))
                        .count()
                };
                assert_eq!(ngx(&asked[1]), 1, "{:?}", asked[1]);
                assert_eq!(ngx(&asked[2]), 1, "{:?}", asked[2]);
                assert!(ngx(&asked[0]) >= 3, "{:?}", asked[0]);
                let newline = headers.iter().any(|(_, v)| v.contains('\n'));
                assert_eq!(maps_read, [true, true, newline], "{headers:?}");
            }
        }
    }

    #[test]
    fn each_request_field_of_the_line_is_the_header_the_map_would_give() {
        for (expr, field) in log_line::REQUEST_FIELDS.iter().zip(LINE_FIELDS) {
            let name = match *expr {
                "$request_method" => ":method".to_owned(),
                "$uri$is_args$args" => ":path".to_owned(),
                "$scheme" => ":scheme".to_owned(),
                http => http.strip_prefix("$http_").unwrap().replace('_', "-"),
            };
            let want = match name.as_str() {
                LINE_KEY_NAME => None,
                _ => Some(FIELD_NAMES.get(name.as_bytes()).unwrap()),
            };
            assert_eq!(field, want, "{expr}");
        }
        // Every header field but `:authority` (read singly) and the trusted
        // proxy header (configured) is in the line.
        let mut carried: Vec<Field> = LINE_FIELDS.iter().flatten().copied().collect();
        carried.extend([Field::Authority, Field::Trusted]);
        assert_eq!(carried.len(), FIELDS);
    }

    #[test]
    fn a_config_naming_headers_the_line_leaves_out_reads_the_header_map() {
        let headers = [(":path", "/p"), ("X-Api-Key", "k"), ("X-User", "bob")];
        let map = headers::serialize(headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())));
        for (identity, api_key, user) in [
            (r#"{"key_names":["x-api-key"]}"#, true, ""),
            (r#"{"trusted_headers":["X-User"]}"#, false, "bob"),
            (r#"{"key_names":[]}"#, false, ""),
        ] {
            let config = format!(r#"{{"collector":"127.0.0.1:9","identity":{identity}}}"#);
            let mut capturer = Capturer::new(Config::parse(config.as_bytes()).unwrap(), 7);
            let src =
                Nginx::new(&[("response.code", "200")], 2_345, true).with_request("kl2", &headers);
            let mut reads = Reads::empty();
            let mut map_read = false;
            assert!(capturer.read_request_into(
                &mut reads,
                &src,
                || {
                    map_read = true;
                    map.clone()
                },
                || 0
            ));
            let empty_keys = identity.contains("[]");
            assert_eq!(map_read, !empty_keys, "{identity}");
            let want = match empty_keys {
                true => LineUse::Read,
                false => LineUse::FiguresOnly(FiguresOnly::ConfiguredHeaders),
            };
            assert_eq!(*capturer.line_use(), want);
            assert_eq!(reads.facts.api_key_present, api_key, "{identity}");
            assert_eq!(
                reads.facts.raw(Field::Trusted),
                user.as_bytes(),
                "{identity}"
            );
            assert_eq!(reads.facts.raw(Field::Path), b"/p");
        }
    }

    #[test]
    fn without_a_line_it_is_asked_for_once_and_one_of_another_format_is_refused() {
        let vars = [("response.code", "200"), ("ngx.request_time", "0.001")];
        let map = headers::serialize([(&b":path"[..], &b"/"[..])]);
        for (line, want) in [
            (None, LineUse::Absent),
            (
                Some("kl9|200|0.001|||1|1|2.345|::1"),
                LineUse::Refused(LineError::Version),
            ),
            (
                Some("kl1|200|0.001"),
                LineUse::Refused(LineError::Fields(3)),
            ),
        ] {
            let config = Config::parse(br#"{"collector":"127.0.0.1:9"}"#).unwrap();
            let mut capturer = Capturer::new(config, 7);
            assert_eq!(*capturer.line_use(), LineUse::Untried);
            for i in 0..3 {
                let facts = capturer.request_facts(map.clone(), 1_000);
                let mut src = Nginx::new(&vars, 2_345, false);
                src.line = line.map(str::to_owned);
                let mut status = 0;
                assert!(capturer.capture(&facts, &src, 2_345, |r| status = r.status));
                // Every figure still arrives, from the single reads.
                assert_eq!(status, 200);
                let asked_line = src.asked.borrow().iter().any(|n| n == log_line::PROPERTY);
                assert_eq!(asked_line, i == 0, "request {i}");
                assert_eq!(*capturer.line_use(), want);
            }
        }
    }

    #[test]
    fn a_line_without_a_clock_takes_the_hosts() {
        let config = Config::parse(br#"{"collector":"127.0.0.1:9"}"#).unwrap();
        let mut capturer = Capturer::new(config, 7);
        let mut facts = capturer.request_facts(Vec::new(), 0);
        facts.start_from_request_time = true;
        let mut src = Nginx::new(&[], 0, true);
        let mut at = Vec::new();
        for (line, clock) in [
            ("kl1|200|1.500||||||", 9_000),
            ("kl1|200|1.500|||||7.250|", 9_000),
        ] {
            src.line = Some(line.to_owned());
            let mut clock_read = false;
            let mut reads = Reads::of(Cow::Borrowed(&facts));
            assert!(capturer.read_into(&mut reads, &src, || {
                clock_read = true;
                clock
            }));
            capturer.assemble(&reads, |r| at.push((r.started_at_ms, r.latency_total_us)));
            assert_eq!(clock_read, line.contains("||||||"), "{line}");
        }
        // The start is the log time less nginx's request time.
        assert_eq!(at, [(7_500, 1_500_000), (5_750, 1_500_000)]);
    }

    #[test]
    fn the_verified_token_is_read_only_where_the_jwt_plugin_may_have_put_it() {
        let config = Config::parse(br#"{"collector":"127.0.0.1:9"}"#).unwrap();
        let mut capturer = Capturer::new(config, 7);
        let jwt = "kong.ctx.shared.authenticated_jwt_token";
        let id = (&b"x-consumer-id"[..], &b"c-1"[..]);
        let credential = (&b"x-credential-identifier"[..], &b"jwt-key-1"[..]);
        type Header = (&'static [u8], &'static [u8]);
        let cases: [(&[Header], bool); 8] = [
            // A token from the query or a cookie: only Kong knows it.
            (&[id, credential], true),
            (&[credential], true),
            (&[id, credential, (b"authorization", b"  ")], true),
            // Consumer headers without a credential: not the jwt plugin.
            (&[id], false),
            (&[id, (b"x-anonymous-consumer", b"true")], false),
            // The credential is in the request for the filter to see.
            (
                &[id, credential, (b"authorization", b"Bearer a.b.c")],
                false,
            ),
            (
                &[
                    id,
                    credential,
                    (b"authorization", b"AWS4-HMAC-SHA256 Credential=AKIA"),
                ],
                false,
            ),
            (&[id, credential, (b"apikey", b"k-1")], false),
        ];
        for (headers, read) in cases {
            let facts = capturer.request_facts(headers::serialize(headers.iter().copied()), 1_000);
            let src = Recording {
                asked: Default::default(),
                answer: Some("200"),
                missing: &[],
            };
            capturer.capture(&facts, &src, 2_000, |_| {});
            assert_eq!(src.asked.borrow().contains(jwt), read, "{headers:?}");
        }
    }

    /// Kong 3.9's answers for a request on route `r-N`, named `route-N`.
    struct OnRoute(u32);

    impl LogSource for OnRoute {
        fn property(&self, name: &str) -> Option<Cow<'_, [u8]>> {
            let text = match name {
                "response.code" => "200".to_string(),
                "kong.route_id" => format!("r-{}", self.0),
                "kong.route_name" => format!("route-{}", self.0),
                "kong.service_id" => "s-1".to_string(),
                "kong.service_name" => "service".to_string(),
                _ => return None,
            };
            Some(Cow::Owned(text.into_bytes()))
        }
        fn response_header(&self, _: &str) -> Option<Cow<'_, [u8]>> {
            None
        }
    }

    #[test]
    fn names_read_with_a_request_outlast_their_cache_entry() {
        let config = Config::parse(br#"{"collector":"127.0.0.1:9"}"#).unwrap();
        let mut capturer = Capturer::new(config, 7);
        let first = capturer
            .read(Cow::Owned(RequestFacts::empty(1_000)), &OnRoute(0), 2_000)
            .unwrap();
        // More routes than the cache holds, read before the first record
        // is assembled: its route's entry is gone by then.
        for route in 1..=2 * NAME_CACHE_ENTRIES as u32 {
            capturer.read(
                Cow::Owned(RequestFacts::empty(1_000)),
                &OnRoute(route),
                2_000,
            );
        }
        assert!(capturer.names.get(&Query(b"r-0")).is_none());
        let mut seen = None;
        capturer.assemble(&first, |r| {
            seen = Some((r.route.route_id.to_string(), r.route.route_name.to_string()));
        });
        assert_eq!(seen, Some(("r-0".into(), "route-0".into())));
    }

    /// A sink that knows a caller's key once a record gave it with the
    /// caller (or with none), as the batch builder does, and can forget.
    #[derive(Default)]
    struct Knowing {
        known: BTreeSet<u64>,
        /// Refuses this many of the records that give their caller by key.
        refuse: usize,
        /// (identity's consumer id, key, by key) of each record pushed.
        pushed: Vec<(Option<String>, u64, bool)>,
    }

    impl RecordSink for Knowing {
        fn knows_identity(&mut self, key: u64) -> bool {
            self.known.contains(&key)
        }

        fn push(&mut self, r: &Record<'_>) -> bool {
            if r.memo.identity_by_key && self.refuse > 0 {
                self.refuse -= 1;
                return false;
            }
            self.pushed.push((
                r.identity.map(|i| i.consumer_id.to_string()),
                r.memo.identity,
                r.memo.identity_by_key,
            ));
            if !r.memo.identity_by_key && r.memo.identity != 0 {
                self.known.insert(r.memo.identity);
            }
            true
        }
    }

    #[test]
    fn a_caller_the_sink_knows_goes_by_key_alone_and_again_whole_when_forgotten() {
        let config = Config::parse(br#"{"collector":"127.0.0.1:9"}"#).unwrap();
        let mut capturer = Capturer::new(config.clone(), 7);
        let mut other = Capturer::new(config, 7);
        let mut sink = Knowing::default();
        let assemble = |capturer: &mut Capturer, sink: &mut Knowing, consumer: &str| {
            let mut headers = vec![(":method", "GET"), (":path", "/")];
            if !consumer.is_empty() {
                headers.push(("X-Consumer-ID", consumer));
            }
            let src =
                Nginx::new(&[("response.code", "200")], 2_345, true).with_request("kl2", &headers);
            let mut reads = Reads::empty();
            assert!(capturer.read_request_into(&mut reads, &src, Vec::new, || 2_345));
            capturer.assemble_into(&reads, sink);
            sink.pushed.last().cloned().unwrap()
        };
        // Met first, the caller comes whole, with its key; then by key alone.
        let alice = Some("alice".to_string());
        let (id, key, by_key) = assemble(&mut capturer, &mut sink, "alice");
        assert_eq!((id.clone(), by_key), (alice.clone(), false));
        assert_ne!(key, 0);
        assert_eq!(
            assemble(&mut capturer, &mut sink, "alice"),
            (None, key, true)
        );
        // A request without evidence has a key too, standing for no caller.
        let (id, nobody, by_key) = assemble(&mut capturer, &mut sink, "");
        assert_eq!((id, by_key), (None, false));
        assert!(nobody != 0 && nobody != key);
        assert_eq!(assemble(&mut capturer, &mut sink, ""), (None, nobody, true));
        // Another caller has another key.
        let (_, bob, _) = assemble(&mut capturer, &mut sink, "bob");
        assert!(bob != key && bob != nobody);
        // A sink that forgot the key refuses the record by key, and the
        // capturer sends it again whole.
        sink.refuse = 1;
        let pushed = sink.pushed.len();
        assert_eq!(
            assemble(&mut capturer, &mut sink, "alice"),
            (alice.clone(), key, false)
        );
        assert_eq!((sink.refuse, sink.pushed.len()), (0, pushed + 1));
        // Another capturer (another config as far as keys go) keys the same
        // evidence apart.
        let (id, other_key, by_key) = assemble(&mut other, &mut sink, "alice");
        assert_eq!((id, by_key), (alice, false));
        assert_ne!(other_key, key);
    }

    #[test]
    fn in_a_line_evidence_that_differs_only_in_where_values_end_is_another_caller() {
        // From a line the key hashes the consumer headers as one run,
        // newlines between; from a header map, value by value. One
        // capturer meets each caller both ways (a newline in the path
        // sends a request to the header map), twice: each way and from
        // the cache, every caller is itself.
        let config = Config::parse(br#"{"collector":"127.0.0.1:9"}"#).unwrap();
        let mut capturer = Capturer::new(config, 7);
        let callers = [
            ("ab", "c", "", ""),
            ("a", "bc", "", ""),
            ("a", "b", "c", ""),
            ("ab", "", "c", ""),
            ("abc", "", "", ""),
            ("a", "", "b", ""),
            ("c", "", "ab", ""),
            ("a", "", "", "Basic YTpi"),
            ("a", "", "", ""),
        ];
        let mut seen = Vec::new();
        let mut maps_read = 0;
        for _ in 0..2 {
            for (id, username, credential, authorization) in callers {
                for path in ["/", "/a\nb"] {
                    let headers: Vec<(&str, &str)> = [
                        (":method", "GET"),
                        (":path", path),
                        ("X-Consumer-ID", id),
                        ("X-Consumer-Username", username),
                        ("X-Credential-Identifier", credential),
                        ("Authorization", authorization),
                    ]
                    .into_iter()
                    .filter(|(_, v)| !v.is_empty())
                    .collect();
                    let map = headers::serialize(
                        headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
                    );
                    let src = Nginx::new(&[("response.code", "200")], 2_345, true)
                        .with_request("kl2", &headers);
                    let mut reads = Reads::empty();
                    let header_map = || {
                        maps_read += 1;
                        map.clone()
                    };
                    assert!(capturer.read_request_into(&mut reads, &src, header_map, || 2_345));
                    capturer.assemble(&reads, |r| {
                        let i = r.identity.as_ref().unwrap();
                        seen.push((
                            i.consumer_id.to_string(),
                            i.consumer_username.to_string(),
                            i.auth_method,
                        ));
                    });
                }
            }
        }
        assert_eq!(maps_read, 2 * callers.len());
        for (i, pair) in seen.chunks(2).enumerate() {
            let (id, username, _, _) = callers[i % callers.len()];
            assert_eq!(pair[0], pair[1], "{:?}", callers[i % callers.len()]);
            assert_eq!((pair[0].0.as_str(), pair[0].1.as_str()), (id, username));
        }
        // The same consumer with Basic credentials and without is told
        // apart by how it authenticated.
        let n = callers.len();
        assert_ne!(seen[2 * (n - 2)].2, seen[2 * (n - 1)].2, "{seen:?}");
    }

    #[test]
    fn evidence_that_differs_only_in_where_values_end_is_another_caller() {
        // The cache key hashes the values' lengths with them: the
        // same bytes split differently between headers are not one caller.
        let config = Config::parse(br#"{"collector":"127.0.0.1:9"}"#).unwrap();
        let mut capturer = Capturer::new(config, 7);
        let src = Recording {
            asked: Default::default(),
            answer: Some("200"),
            missing: &[],
        };
        let callers = [
            ("ab", "c", ""),
            ("a", "bc", ""),
            ("a", "b", "c"),
            ("ab", "", "c"),
            ("abc", "", ""),
            // The same values in other headers.
            ("a", "", "b"),
            ("c", "", "ab"),
        ];
        let mut seen = Vec::new();
        for _ in 0..2 {
            for (id, username, credential) in callers {
                let map = headers::serialize(
                    [
                        (&b"x-consumer-id"[..], id.as_bytes()),
                        (b"x-consumer-username", username.as_bytes()),
                        (b"x-credential-identifier", credential.as_bytes()),
                    ]
                    .into_iter()
                    .filter(|(_, v)| !v.is_empty()),
                );
                let facts = capturer.request_facts(map, 1_000);
                capturer.capture(&facts, &src, 2_000, |r| {
                    let i = r.identity.as_ref().unwrap();
                    seen.push((i.consumer_id.to_string(), i.consumer_username.to_string()));
                });
            }
        }
        // The second pass comes from the cache, and must say the same.
        let expected: Vec<_> = callers
            .iter()
            .chain(&callers)
            .map(|(id, username, _)| (id.to_string(), username.to_string()))
            .collect();
        assert_eq!(seen, expected);
    }
}
