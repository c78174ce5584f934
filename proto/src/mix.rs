//! The reference traffic mix: a seeded, deterministic generator of API
//! requests that every test and bench uses, so figures are comparable.
//!
//! # Parameters (see [`MixParams`] for the knobs)
//! - **Topology:** 10 services in 3 teams (the workspace label), 5 routes
//!   each, so 50 routes; each route has 1 to 3 path templates and one
//!   method. Route popularity is Zipf (s = 0.8). Hosts: `api.example.com`
//!   80%, `partners.example.com` 15%, `internal.example.com` 5%.
//! - **Consumers:** 2,000, picked with Zipf popularity (s = 1.07). Each has
//!   one auth method: key-auth 40%, OIDC 15%, JWT 10%, mTLS 8%, AWS SigV4 7%,
//!   basic 5%, Kong consumer headers only 15%; 0 to 3 consumer groups; 3% of
//!   identities are claimed rather than verified. 15% of requests are
//!   anonymous.
//! - **Status:** 92% 2xx (200, 201, 204), 5% 4xx (400, 401, 403, 404, 409,
//!   429), 3% 5xx (500, 502, 503, 504). 401, 403 and 429 come from Kong, as
//!   do half of the 502s and 504s; the rest from the upstream.
//! - **Latency:** total log-normal with median 20 ms and p99 800 ms
//!   (sigma 1.586), whole milliseconds as Kong's `ngx.request_time` reports
//!   them; Kong adds 0 to 3 ms of gateway time. Responses Kong produced
//!   itself take 0 to 2 ms and have no upstream latency.
//! - **Sizes:** request log-normal, median 400 B; response log-normal,
//!   median 2.5 KB, heavy tail (sigma 1.5).
//! - **Agents:** 5% named AI agents (GPTBot, ChatGPT-User, ClaudeBot, ...),
//!   30% browsers, 10% CLI, 40% libraries and SDKs, 5% API tools, 5% other
//!   bots and monitors, 5% without a User-Agent.
//! - **Clients:** 5,000 addresses (80% IPv4, 20% IPv6); each consumer uses 1
//!   to 3 home addresses for 90% of its requests.
//! - **AI Gateway** (only with [`MixParams::ai_share`] above 0, e.g.
//!   [`AI_SHARE`]): that share of requests goes to an `llm-gateway` service
//!   (team platform) with a chat route and an MCP route. Of them: 55% chat
//!   completions, 30% streamed, 8% semantic-cache hits, 2% prompts a
//!   guardrail blocks (400 from Kong, no tokens), 5% MCP tool calls. Models:
//!   gpt-4o 35%, gpt-4o-mini 25%, claude-sonnet-4 20%, gemini-2.0-flash
//!   12%, mistral-large 8%, at their list prices per million tokens.
//!   Prompt tokens log-normal, median 600; completion median 200; LLM
//!   latency 250 ms plus the model's ms per completion token. The AI draws
//!   come from a stream of their own: the other requests are the same at
//!   any share.
//! - **Time:** Poisson arrivals at 2,000 requests per second from
//!   2026-01-05T12:00:00Z; requests are emitted in the order they finish, as
//!   the filter's `on_log` sees them.
#![allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, LogNormal, Zipf};

use crate::record::{AgentRef, AiRef, IdentityRef, Memo, Record, RouteRef};
use crate::v1::{AgentCategory, AuthMethod, Method, ResponseSource, Trust};

/// Knobs of the mix; [`MixParams::default`] is the reference mix.
#[derive(Clone, Debug, PartialEq)]
pub struct MixParams {
    /// RNG seed.
    pub seed: u64,
    /// Number of consumers.
    pub consumers: usize,
    /// Number of distinct client addresses.
    pub addresses: usize,
    /// Requests per second.
    pub rate_per_s: f64,
    /// First arrival, Unix ms.
    pub start_ms: i64,
    /// Attach a Kong request id to every request.
    pub request_ids: bool,
    /// Share of requests that go through Kong's AI Gateway (0 in the
    /// reference mix; [`AI_SHARE`] in its AI form). Drawn from a stream of
    /// their own, so the rest of the traffic is the same at any share.
    pub ai_share: f64,
}

/// The AI share of the reference mix's AI form: an API platform whose
/// LLM and MCP routes carry one request in twenty.
pub const AI_SHARE: f64 = 0.05;

/// Cardinalities to measure beyond the reference mix: (name, consumers,
/// client addresses). The reference is [`MixParams::default`]'s; the
/// others are what a large Kong fleet's busiest gateway sees in a day.
pub const CARDINALITIES: [(&str, usize, usize); 3] = [
    ("reference", 2_000, 5_000),
    ("high", 50_000, 200_000),
    ("very high", 200_000, 1_000_000),
];

impl Default for MixParams {
    fn default() -> Self {
        MixParams {
            seed: 1,
            consumers: 2000,
            addresses: 5000,
            rate_per_s: 2000.0,
            start_ms: 1_767_614_400_000,
            request_ids: false,
            ai_share: 0.0,
        }
    }
}

const SERVICES: [(&str, &str); 10] = [
    ("orders", "commerce"),
    ("payments", "commerce"),
    ("inventory", "commerce"),
    ("shipping", "commerce"),
    ("catalog", "discovery"),
    ("search", "discovery"),
    ("reviews", "discovery"),
    ("users", "platform"),
    ("notifications", "platform"),
    ("analytics", "platform"),
];
const ROUTES_PER_SERVICE: usize = 5;
const HOSTS: [(&str, f64); 3] = [
    ("api.example.com", 0.80),
    ("partners.example.com", 0.15),
    ("internal.example.com", 0.05),
];
const SUBRESOURCES: [&str; 6] = ["items", "events", "history", "status", "refunds", "lines"];
const GROUPS: [&str; 6] = ["gold", "silver", "bronze", "partners", "internal", "beta"];
const ISSUERS: [&str; 3] = [
    "https://example.okta.com/oauth2/default",
    "https://example.eu.auth0.com/",
    "https://login.microsoftonline.com/4a1c2b7e-2f0d-4d8c-9b8e-1c2d3e4f5a6b/v2.0",
];
const STATUSES: [(u16, f64); 13] = [
    (200, 0.80),
    (201, 0.08),
    (204, 0.04),
    (400, 0.012),
    (401, 0.010),
    (403, 0.006),
    (404, 0.015),
    (409, 0.002),
    (429, 0.005),
    (500, 0.012),
    (502, 0.008),
    (503, 0.006),
    (504, 0.004),
];

/// One row of the agent table: what the filter would classify a User-Agent
/// as, with a realistic header value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentSpec {
    /// Family.
    pub category: AgentCategory,
    /// Product name.
    pub name: &'static str,
    /// A User-Agent header that identifies it.
    pub user_agent: &'static str,
}

const fn agent(category: AgentCategory, name: &'static str, user_agent: &'static str) -> AgentSpec {
    AgentSpec {
        category,
        name,
        user_agent,
    }
}

/// Agents with their share of requests (the rest have no User-Agent).
const AGENTS: [(AgentSpec, f64); 27] = {
    use AgentCategory::*;
    [
        (
            agent(
                Browser,
                "Chrome",
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            ),
            0.16,
        ),
        (
            agent(
                Browser,
                "Safari",
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
            ),
            0.07,
        ),
        (
            agent(
                Browser,
                "Firefox",
                "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            ),
            0.04,
        ),
        (
            agent(
                Browser,
                "Edge",
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            ),
            0.03,
        ),
        (agent(Cli, "curl", "curl/8.11.0"), 0.08),
        (agent(Cli, "HTTPie", "HTTPie/3.2.4"), 0.01),
        (agent(Cli, "Wget", "Wget/1.24.5"), 0.01),
        (
            agent(Library, "python-requests", "python-requests/2.32.3"),
            0.12,
        ),
        (agent(Library, "Go-http-client", "Go-http-client/2.0"), 0.09),
        (agent(Library, "Java", "Java/21.0.5"), 0.06),
        (agent(Library, "okhttp", "okhttp/4.12.0"), 0.06),
        (agent(Library, "axios", "axios/1.7.9"), 0.04),
        (
            agent(
                Library,
                "aws-sdk",
                "aws-sdk-js/3.705.0 ua/2.1 os/linux lang/js",
            ),
            0.03,
        ),
        (agent(ApiTool, "Postman", "PostmanRuntime/7.43.0"), 0.05),
        (agent(Monitor, "Datadog", "Datadog/Synthetics"), 0.03),
        (
            agent(
                SearchCrawler,
                "Googlebot",
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            ),
            0.02,
        ),
        (
            agent(
                AiCrawler,
                "GPTBot",
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
            ),
            0.010,
        ),
        (
            agent(
                AiAssistant,
                "ChatGPT-User",
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; +https://openai.com/bot",
            ),
            0.008,
        ),
        (
            agent(
                AiSearch,
                "OAI-SearchBot",
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; OAI-SearchBot/1.0; +https://openai.com/searchbot",
            ),
            0.004,
        ),
        (
            agent(
                AiCrawler,
                "ClaudeBot",
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)",
            ),
            0.008,
        ),
        (
            agent(
                AiAssistant,
                "Claude-User",
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Claude-User/1.0; +Claude-User@anthropic.com)",
            ),
            0.004,
        ),
        (
            agent(
                AiSearch,
                "PerplexityBot",
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; PerplexityBot/1.0; +https://perplexity.ai/perplexitybot)",
            ),
            0.004,
        ),
        (
            agent(
                AiCrawler,
                "CCBot",
                "CCBot/2.0 (https://commoncrawl.org/faq/)",
            ),
            0.003,
        ),
        (
            agent(
                AiCrawler,
                "Bytespider",
                "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)",
            ),
            0.003,
        ),
        (
            agent(
                AiCrawler,
                "meta-externalagent",
                "meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)",
            ),
            0.003,
        ),
        (
            agent(
                AiCrawler,
                "Amazonbot",
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Amazonbot/0.1; +https://developer.amazon.com/support/amazonbot)",
            ),
            0.002,
        ),
        (
            agent(McpClient, "claude-code", "claude-code/1.0.31 (mcp)"),
            0.001,
        ),
    ]
};

/// Seed offset of the AI traffic's own random stream.
const AI_SEED: u64 = 0xa1_a1_a1_a1;
/// The AI Gateway's routes, after the topology's: chat and MCP.
const AI_ROUTES: [(&str, &str); 2] = [
    ("llm-chat", "/llm/v1/chat/completions"),
    ("mcp-tools", "/mcp"),
];

/// What an AI Gateway request was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AiKind {
    Chat,
    Stream,
    CacheHit,
    Blocked,
    Mcp,
}

const AI_KINDS: [(AiKind, f64); 5] = [
    (AiKind::Chat, 0.55),
    (AiKind::Stream, 0.30),
    (AiKind::CacheHit, 0.08),
    (AiKind::Blocked, 0.02),
    (AiKind::Mcp, 0.05),
];

/// A model: name, provider, USD per million prompt and completion tokens
/// (list prices of 2026), ms per completion token, share of traffic.
struct Model(&'static str, &'static str, f64, f64, f64, f64);

impl Model {
    fn clone_parts(&self) -> (&'static str, &'static str, f64, f64, f64) {
        (self.0, self.1, self.2, self.3, self.4)
    }
}

const MODELS: [Model; 5] = [
    Model("gpt-4o", "openai", 2.5, 10.0, 12.0, 0.35),
    Model("gpt-4o-mini", "openai", 0.15, 0.6, 8.0, 0.25),
    Model("claude-sonnet-4", "anthropic", 3.0, 15.0, 14.0, 0.20),
    Model("gemini-2.0-flash", "gemini", 0.1, 0.4, 6.0, 0.12),
    Model("mistral-large", "mistral", 2.0, 6.0, 16.0, 0.08),
];

/// MCP tools the mix calls.
const MCP_TOOLS: [&str; 4] = [
    "search_orders",
    "get_invoice",
    "create_ticket",
    "list_users",
];

/// A route of the topology.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteSpec {
    /// Kong route id.
    pub route_id: String,
    /// Route name.
    pub route_name: String,
    /// Kong service id.
    pub service_id: String,
    /// Service name.
    pub service_name: &'static str,
    /// Team label.
    pub workspace: &'static str,
    /// The route's method.
    pub method: Method,
    /// Path templates the route serves.
    pub paths: Vec<String>,
}

/// A consumer of the topology.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsumerSpec {
    /// How it authenticates.
    pub auth_method: AuthMethod,
    /// Verified or claimed.
    pub trust: Trust,
    /// Kong consumer id.
    pub consumer_id: String,
    /// Kong username.
    pub username: String,
    /// Kong custom id, or empty.
    pub custom_id: String,
    /// Credential identifier.
    pub credential: String,
    /// Consumer groups.
    pub groups: Vec<&'static str>,
    /// Subject, or empty.
    pub subject: String,
    /// Issuer, or empty.
    pub issuer: &'static str,
    /// Client application id, or empty.
    pub client_id: String,
    /// Indexes into the address pool it mostly uses.
    pub home: Vec<u32>,
}

/// One generated request, referring to the topology by index.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// Start, Unix ms.
    pub started_at_ms: i64,
    /// Index into [`Mix::routes`].
    pub route: usize,
    /// Index into the route's paths.
    pub path: usize,
    /// Index into the hosts.
    pub host: usize,
    /// HTTP status.
    pub status: u16,
    /// Who produced the response.
    pub source: ResponseSource,
    /// Total latency, microseconds (whole milliseconds).
    pub total_us: u64,
    /// Upstream latency, microseconds.
    pub upstream_us: Option<u64>,
    /// Request bytes.
    pub request_bytes: u64,
    /// Response bytes.
    pub response_bytes: u64,
    /// Index into [`Mix::consumers`]; `None` when anonymous.
    pub consumer: Option<usize>,
    /// Index into [`Mix::addresses`].
    pub address: usize,
    /// Index into [`Mix::agents`]; `None` without a User-Agent.
    pub agent: Option<usize>,
    /// Kong request id (32 hex digits) when enabled.
    pub request_id: Option<String>,
    /// AI Gateway figures, for the AI share of the traffic.
    pub ai: Option<AiRef<'static>>,
}

/// The generator. Iterate it for requests; [`Mix::record`] turns one into
/// the builder's input.
pub struct Mix {
    params: MixParams,
    rng: ChaCha8Rng,
    routes: Vec<RouteSpec>,
    consumers: Vec<ConsumerSpec>,
    addresses: Vec<String>,
    route_pick: Zipf<f64>,
    /// Index of the first AI Gateway route, when the mix has AI traffic.
    ai_routes: Option<usize>,
    ai_rng: ChaCha8Rng,
    ai_prompt: LogNormal<f64>,
    ai_completion: LogNormal<f64>,
    consumer_pick: Zipf<f64>,
    latency: LogNormal<f64>,
    request_size: LogNormal<f64>,
    response_size: LogNormal<f64>,
    arrival: Exp<f64>,
    next_arrival_us: i64,
    /// Requests started but not finished, by (end in us, serial).
    in_flight: BTreeMap<(i64, u64), Request>,
    serial: u64,
}

impl Mix {
    /// The reference mix for `params`.
    pub fn new(params: MixParams) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        let mut routes = Vec::new();
        for (s, &(service, team)) in SERVICES.iter().enumerate() {
            let service_id = uuid(&mut rng);
            for r in 0..ROUTES_PER_SERVICE {
                let method = [
                    Method::Get,
                    Method::Get,
                    Method::Post,
                    Method::Put,
                    Method::Delete,
                ][r];
                let base = format!("/{service}/v{}", 1 + (s + r) % 2);
                let sub = SUBRESOURCES[(s + r) % SUBRESOURCES.len()];
                let paths = match r {
                    0 => vec![base.clone(), format!("{base}/{{id}}")],
                    1 => vec![
                        format!("{base}/{{id}}/{sub}"),
                        format!("{base}/{{id}}/{sub}/{{id}}"),
                        format!("{base}/search"),
                    ],
                    _ => vec![format!("{base}/{{id}}")],
                };
                routes.push(RouteSpec {
                    route_id: uuid(&mut rng),
                    route_name: format!(
                        "{service}-{}",
                        ["list", "items", "create", "update", "delete"][r]
                    ),
                    service_id: service_id.clone(),
                    service_name: service,
                    workspace: team,
                    method,
                    paths,
                });
            }
        }
        // The AI Gateway's routes come after the others, drawn from the AI
        // stream, so the reference topology is the same with or without.
        let mut ai_rng = ChaCha8Rng::seed_from_u64(params.seed ^ AI_SEED);
        let ai_routes = if params.ai_share > 0.0 {
            let service_id = uuid(&mut ai_rng);
            let first = routes.len();
            for (name, path) in AI_ROUTES {
                routes.push(RouteSpec {
                    route_id: uuid(&mut ai_rng),
                    route_name: name.to_owned(),
                    service_id: service_id.clone(),
                    service_name: "llm-gateway",
                    workspace: "platform",
                    method: Method::Post,
                    paths: vec![path.to_owned()],
                });
            }
            Some(first)
        } else {
            None
        };
        let addresses: Vec<String> = (0..params.addresses)
            .map(|_| {
                if rng.random_bool(0.8) {
                    let [a, b, c, d]: [u8; 4] = rng.random();
                    format!("{}.{b}.{c}.{d}", 1 + a % 223)
                } else {
                    let w: [u16; 4] = rng.random();
                    format!("2001:db8:{:x}:{:x}::{:x}:{:x}", w[0], w[1], w[2], w[3])
                }
            })
            .collect();
        let consumers = (0..params.consumers)
            .map(|i| consumer(&mut rng, i, params.addresses))
            .collect();
        let start_us = params.start_ms * 1000;
        Mix {
            route_pick: Zipf::new(ai_routes.unwrap_or(routes.len()) as f64, 0.8)
                .unwrap_or_else(|_| unreachable!()),
            ai_routes,
            ai_rng,
            ai_prompt: LogNormal::new(600f64.ln(), 1.0).unwrap_or_else(|_| unreachable!()),
            ai_completion: LogNormal::new(200f64.ln(), 0.9).unwrap_or_else(|_| unreachable!()),
            consumer_pick: Zipf::new(params.consumers.max(1) as f64, 1.07)
                .unwrap_or_else(|_| unreachable!()),
            latency: LogNormal::new(20f64.ln(), 1.586).unwrap_or_else(|_| unreachable!()),
            request_size: LogNormal::new(400f64.ln(), 1.0).unwrap_or_else(|_| unreachable!()),
            response_size: LogNormal::new(2500f64.ln(), 1.5).unwrap_or_else(|_| unreachable!()),
            arrival: Exp::new(params.rate_per_s / 1e6).unwrap_or_else(|_| unreachable!()),
            next_arrival_us: start_us,
            in_flight: BTreeMap::new(),
            serial: 0,
            params,
            rng,
            routes,
            consumers,
            addresses,
        }
    }

    /// The reference mix.
    pub fn reference() -> Self {
        Mix::new(MixParams::default())
    }

    /// The parameters.
    pub fn params(&self) -> &MixParams {
        &self.params
    }

    /// The routes.
    pub fn routes(&self) -> &[RouteSpec] {
        &self.routes
    }

    /// `req`'s path as its client sends it (no query): each `{id}` of the
    /// template a number of one of that client's resources, from 1,000 to
    /// 9,999,999. Production's paths carry many ids per template, not one,
    /// so that a cost that depends on the raw path (a cache of templates
    /// by path, say) shows here as it would there.
    pub fn raw_path(&self, req: &Request) -> String {
        let template = self
            .routes
            .get(req.route)
            .and_then(|r| r.paths.get(req.path))
            .map_or("/", String::as_str);
        let mut out = String::with_capacity(template.len() + 8);
        for (k, part) in template.split("{id}").enumerate() {
            if k > 0 {
                let seed = (req.address as u64)
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .wrapping_add((req.route as u64) << 8 | k as u64);
                let mixed = (seed ^ seed >> 31).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                out.push_str(&(1000 + (mixed ^ mixed >> 29) % 9_999_000).to_string());
            }
            out.push_str(part);
        }
        out
    }

    /// The consumers.
    pub fn consumers(&self) -> &[ConsumerSpec] {
        &self.consumers
    }

    /// The client address pool.
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// The agent table.
    pub fn agents(&self) -> impl Iterator<Item = &'static AgentSpec> {
        AGENTS.iter().map(|(a, _)| a)
    }

    /// The host names.
    pub fn hosts(&self) -> impl Iterator<Item = &'static str> {
        HOSTS.iter().map(|(h, _)| *h)
    }

    /// Generates `n` requests.
    pub fn take_requests(&mut self, n: usize) -> Vec<Request> {
        (0..n).map(|_| self.next_request()).collect()
    }

    /// The next request to finish.
    pub fn next_request(&mut self) -> Request {
        // Start requests until the earliest one in flight ends before the
        // next arrival; then it is the next to finish.
        loop {
            if let Some(entry) = self.in_flight.first_entry()
                && entry.key().0 <= self.next_arrival_us
            {
                return entry.remove();
            }
            let started_us = self.next_arrival_us;
            self.next_arrival_us += self.arrival.sample(&mut self.rng).ceil() as i64;
            let request = self.start(started_us);
            let end = started_us + request.total_us as i64;
            self.serial += 1;
            self.in_flight.insert((end, self.serial), request);
        }
    }

    fn start(&mut self, started_us: i64) -> Request {
        let rng = &mut self.rng;
        let route = self.route_pick.sample(rng) as usize - 1;
        let path = rng.random_range(0..self.routes[route].paths.len());
        let host = pick(rng, &HOSTS.map(|(_, w)| w)).unwrap_or(0);
        let status = STATUSES[pick(rng, &STATUSES.map(|(_, w)| w)).unwrap_or(0)].0;
        let from_kong = matches!(status, 401 | 403 | 429)
            || (matches!(status, 502 | 504) && rng.random_bool(0.5));
        let (source, total_ms, upstream_ms) = if from_kong {
            (ResponseSource::Kong, rng.random_range(0..=2u64), None)
        } else {
            let total = (self.latency.sample(rng).round() as u64).clamp(1, 60_000);
            let gateway = [0, 0, 0, 1, 1, 2, 3][rng.random_range(0..7)];
            (
                ResponseSource::Upstream,
                total,
                Some(total.saturating_sub(gateway)),
            )
        };
        let anonymous = rng.random_bool(0.15);
        let consumer = (!anonymous && !self.consumers.is_empty())
            .then(|| (self.consumer_pick.sample(rng) as usize - 1).min(self.consumers.len() - 1));
        let address = match consumer {
            Some(c) if rng.random_bool(0.9) => {
                let home = &self.consumers[c].home;
                home[rng.random_range(0..home.len())] as usize
            }
            _ => rng.random_range(0..self.addresses.len()),
        };
        let agent_weights = AGENTS.map(|(_, w)| w);
        let agent = if rng.random_bool(0.05) {
            None
        } else {
            pick(rng, &agent_weights)
        };
        let request_id = self.params.request_ids.then(|| {
            let bytes: [u8; 16] = rng.random();
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        });
        let mut request = Request {
            started_at_ms: started_us.div_euclid(1000),
            route,
            path,
            host,
            status,
            source,
            total_us: total_ms * 1000,
            upstream_us: upstream_ms.map(|ms| ms * 1000),
            request_bytes: (self.request_size.sample(rng) as u64).clamp(60, 10 << 20),
            response_bytes: if status == 204 {
                180
            } else {
                (self.response_size.sample(rng) as u64).clamp(120, 50 << 20)
            },
            consumer,
            address,
            agent,
            request_id,
            ai: None,
        };
        if let Some(first) = self.ai_routes
            && self.ai_rng.random_bool(self.params.ai_share)
        {
            self.make_ai(&mut request, first);
        }
        request
    }

    /// Turns `request` into AI Gateway traffic: a chat completion (streamed
    /// or not, sometimes answered from the semantic cache), a prompt a
    /// guardrail blocks, or an MCP tool call. Shapes follow what Kong logs
    /// for each (docs/kong_ai_log_fields.md).
    fn make_ai(&mut self, request: &mut Request, first_route: usize) {
        let rng = &mut self.ai_rng;
        let kind = pick(rng, &AI_KINDS.map(|(_, w)| w)).map_or(AiKind::Chat, |k| AI_KINDS[k].0);
        let (model, provider, input_price, output_price, ms_per_token) =
            MODELS[pick(rng, &MODELS.map(|m| m.5)).unwrap_or(0)].clone_parts();
        let gateway_ms = rng.random_range(1..=3u64);
        request.path = 0;
        request.status = 200;
        request.source = ResponseSource::Upstream;
        let mut ai = AiRef::default();
        let total_ms = match kind {
            AiKind::Mcp => {
                request.route = first_route + 1;
                ai.mcp_tool_calls = 1;
                ai.mcp_tool = MCP_TOOLS[rng.random_range(0..MCP_TOOLS.len())];
                rng.random_range(30..=250u64)
            }
            AiKind::Blocked => {
                request.route = first_route;
                request.status = 400;
                request.source = ResponseSource::Kong;
                ai.provider = provider;
                ai.request_model = model;
                ai.guardrail_blocks = 1;
                ai.guardrail = "aws-guardrails";
                rng.random_range(80..=300u64)
            }
            AiKind::Chat | AiKind::Stream | AiKind::CacheHit => {
                request.route = first_route;
                let prompt = (self.ai_prompt.sample(rng) as u64).clamp(5, 120_000);
                let completion = (self.ai_completion.sample(rng) as u64).clamp(1, 16_000);
                ai.provider = provider;
                ai.request_model = model;
                ai.response_model = model;
                ai.request_mode = if kind == AiKind::Stream {
                    "stream"
                } else {
                    "oneshot"
                };
                ai.prompt_tokens = prompt;
                ai.completion_tokens = completion;
                ai.total_tokens = prompt + completion;
                // Kong's prices are per million tokens, so dollars per
                // million are micro-dollars per token.
                ai.cost_micros =
                    (prompt as f64 * input_price + completion as f64 * output_price).round() as u64;
                ai.calls = 1;
                ai.cache_status = "miss";
                if kind == AiKind::CacheHit {
                    ai.cache_status = "hit";
                    ai.embeddings_model = "text-embedding-3-small";
                    let fetch = rng.random_range(15..=80u64);
                    ai.cache_fetch_latency_ms = Some(fetch);
                    fetch
                } else {
                    let llm = 250 + (completion as f64 * ms_per_token) as u64;
                    ai.llm_latency_ms = Some(llm);
                    if kind == AiKind::Stream {
                        ai.time_to_first_token_ms = Some(rng.random_range(150..=700u64));
                    }
                    llm
                }
            }
        };
        request.total_us = (total_ms + gateway_ms) * 1000;
        request.upstream_us =
            (request.source == ResponseSource::Upstream).then_some(total_ms * 1000);
        request.response_bytes = match kind {
            AiKind::Stream => 120 + ai.completion_tokens * 40,
            AiKind::Chat | AiKind::CacheHit => 400 + ai.completion_tokens * 4,
            AiKind::Blocked => 180,
            AiKind::Mcp => rng.random_range(300..=4000u64),
        };
        request.request_bytes = 300 + ai.prompt_tokens * 4;
        request.ai = Some(ai);
    }

    /// The builder input for `request`, borrowing the topology's strings.
    pub fn record<'a>(&'a self, request: &'a Request) -> Record<'a> {
        let route = &self.routes[request.route];
        let identity = request.consumer.map(|c| {
            let c = &self.consumers[c];
            IdentityRef {
                auth_method: c.auth_method,
                trust: c.trust,
                consumer_id: &c.consumer_id,
                consumer_username: &c.username,
                consumer_custom_id: &c.custom_id,
                credential: &c.credential,
                consumer_groups: &c.groups,
                subject: &c.subject,
                issuer: c.issuer,
                client_id: &c.client_id,
                anonymous: false,
            }
        });
        Record {
            started_at_ms: request.started_at_ms,
            route: RouteRef {
                route_id: &route.route_id,
                route_name: &route.route_name,
                service_id: &route.service_id,
                service_name: route.service_name,
                workspace: route.workspace,
            },
            method: route.method,
            method_text: "",
            host: HOSTS[request.host].0,
            path: &route.paths[request.path],
            status: request.status,
            source: request.source,
            latency_total_us: request.total_us,
            latency_upstream_us: request.upstream_us,
            request_bytes: request.request_bytes,
            response_bytes: request.response_bytes,
            identity,
            client_address: &self.addresses[request.address],
            agent: request.agent.map(|a| AgentRef {
                category: AGENTS[a].0.category,
                name: AGENTS[a].0.name,
            }),
            request_id: request.request_id.as_deref().unwrap_or(""),
            trace_id: "",
            sample_weight: 1.0,
            ai: request.ai.as_ref(),
            memo: Memo::default(),
        }
    }
}

/// Index drawn with the given weights (which need not sum to 1).
fn pick(rng: &mut ChaCha8Rng, weights: &[f64]) -> Option<usize> {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return Some(i);
        }
        x -= w;
    }
    weights.len().checked_sub(1)
}

fn uuid(rng: &mut ChaCha8Rng) -> String {
    let mut bytes: [u8; 16] = rng.random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    crate::coding::format_uuid(bytes)
}

fn hex(rng: &mut ChaCha8Rng, bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

fn consumer(rng: &mut ChaCha8Rng, i: usize, addresses: usize) -> ConsumerSpec {
    let methods = [
        (AuthMethod::KeyAuth, 0.40),
        (AuthMethod::Oidc, 0.15),
        (AuthMethod::Jwt, 0.10),
        (AuthMethod::Mtls, 0.08),
        (AuthMethod::AwsSigv4, 0.07),
        (AuthMethod::Basic, 0.05),
        (AuthMethod::KongConsumer, 0.15),
    ];
    let auth_method = methods[pick(rng, &methods.map(|(_, w)| w)).unwrap_or(0)].0;
    let username = format!("{}-{i:04}", ["app", "partner", "svc", "team"][i % 4]);
    let consumer_id = uuid(rng);
    let (credential, subject, issuer, client_id) = match auth_method {
        AuthMethod::KeyAuth => (uuid(rng), String::new(), "", String::new()),
        AuthMethod::Oidc => (
            String::new(),
            uuid(rng),
            ISSUERS[rng.random_range(0..ISSUERS.len())],
            format!("0oa{}", hex(rng, 8)),
        ),
        AuthMethod::Jwt => (
            format!("jwt-key-{}", hex(rng, 6)),
            format!("user-{i}"),
            "https://auth.example.com",
            String::new(),
        ),
        AuthMethod::Mtls => (
            hex(rng, 32),
            format!("CN={username},OU=clients,O=Example Corp,C=US"),
            "",
            String::new(),
        ),
        AuthMethod::AwsSigv4 => {
            let key: String = (0..16)
                .map(|_| (b'A' + rng.random_range(0..26u8)) as char)
                .collect();
            (
                format!("AKIA{key}"),
                String::new(),
                "aws:us-east-1:execute-api",
                String::new(),
            )
        }
        AuthMethod::Basic => (username.clone(), String::new(), "", String::new()),
        _ => (String::new(), String::new(), "", String::new()),
    };
    let group_count = rng.random_range(0..=3usize);
    let mut groups: Vec<&'static str> = Vec::new();
    while groups.len() < group_count {
        let g = GROUPS[rng.random_range(0..GROUPS.len())];
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let home_count = rng.random_range(1..=3usize);
    ConsumerSpec {
        auth_method,
        trust: if rng.random_bool(0.03) {
            Trust::Claimed
        } else {
            Trust::Verified
        },
        consumer_id,
        custom_id: if rng.random_bool(0.3) {
            format!("crm-{}", 100_000 + i)
        } else {
            String::new()
        },
        username,
        credential,
        groups,
        subject,
        issuer,
        client_id,
        home: (0..home_count)
            .map(|_| rng.random_range(0..addresses.max(1)) as u32)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_paths_fill_their_templates_with_many_ids() {
        let mut mix = Mix::reference();
        let requests = mix.take_requests(20_000);
        let mut by_template: std::collections::HashMap<
            &str,
            (usize, std::collections::HashSet<String>),
        > = Default::default();
        for r in &requests {
            let template = mix.routes()[r.route].paths[r.path].as_str();
            let raw = mix.raw_path(r);
            // Each {id} a number of four to seven digits, the rest as is.
            let mut rest = raw.as_str();
            for (k, part) in template.split("{id}").enumerate() {
                if k > 0 {
                    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                    assert!((4..=7).contains(&digits), "{raw} for {template}");
                    rest = &rest[digits..];
                }
                rest = rest
                    .strip_prefix(part)
                    .unwrap_or_else(|| panic!("{raw} for {template}"));
            }
            assert!(rest.is_empty(), "{raw} for {template}");
            let (sent, raws) = by_template.entry(template).or_default();
            *sent += 1;
            raws.insert(raw);
        }
        // A template with an id comes with many of them, not one: most of
        // its requests (from 2,000 clients) name a path of their own.
        for (template, (sent, raws)) in &by_template {
            if template.contains("{id}") {
                assert!(
                    raws.len() * 2 > *sent,
                    "{template}: {} paths in {sent}",
                    raws.len()
                );
            }
        }
    }

    #[test]
    fn same_seed_same_traffic_and_the_shares_match_the_docs() {
        let mut a = Mix::reference();
        let mut b = Mix::reference();
        let first = a.take_requests(20_000);
        assert_eq!(first, b.take_requests(20_000));
        let share = |f: &dyn Fn(&Request) -> bool| {
            first.iter().filter(|r| f(r)).count() as f64 / first.len() as f64
        };
        let ok = share(&|r| (200..300).contains(&r.status));
        let client = share(&|r| (400..500).contains(&r.status));
        let server = share(&|r| r.status >= 500);
        assert!((0.91..0.93).contains(&ok), "2xx {ok}");
        assert!((0.04..0.06).contains(&client), "4xx {client}");
        assert!((0.025..0.035).contains(&server), "5xx {server}");
        let anonymous = share(&|r| r.consumer.is_none());
        assert!((0.14..0.16).contains(&anonymous), "anonymous {anonymous}");
        let ai = share(&|r| {
            r.agent.is_some_and(|i| {
                matches!(
                    AGENTS[i].0.category,
                    AgentCategory::AiCrawler | AgentCategory::AiSearch | AgentCategory::AiAssistant
                )
            })
        });
        assert!((0.04..0.06).contains(&ai), "AI agents {ai}");
        let mut upstream: Vec<u64> = first
            .iter()
            .filter(|r| r.source == ResponseSource::Upstream)
            .map(|r| r.total_us)
            .collect();
        upstream.sort_unstable();
        let median = upstream[upstream.len() / 2];
        let p99 = upstream[upstream.len() * 99 / 100];
        assert!((17_000..=23_000).contains(&median), "median {median}");
        assert!((600_000..=1_000_000).contains(&p99), "p99 {p99}");
        let ends: Vec<i64> = first
            .iter()
            .map(|r| r.started_at_ms * 1000 + r.total_us as i64)
            .collect();
        assert!(
            ends.windows(2).all(|w| w[0] <= w[1] + 1000),
            "emitted in the order requests finish"
        );
    }

    #[test]
    fn ai_traffic_has_its_share_and_leaves_the_rest_alone() {
        let plain = Mix::reference().take_requests(20_000);
        let mut with_ai = Mix::new(MixParams {
            ai_share: AI_SHARE,
            ..MixParams::default()
        });
        let ai = with_ai.take_requests(20_000);
        assert!(plain.iter().all(|r| r.ai.is_none()));
        let figures: Vec<&AiRef<'_>> = ai.iter().filter_map(|r| r.ai.as_ref()).collect();
        // LLM calls take seconds, so they finish (and are emitted) late:
        // count the share among requests that started early on.
        let more = with_ai.take_requests(20_000);
        let cutoff = ai[5_000].started_at_ms;
        let early: Vec<&Request> = ai
            .iter()
            .chain(&more)
            .filter(|r| r.started_at_ms < cutoff)
            .collect();
        let share = early.iter().filter(|r| r.ai.is_some()).count() as f64 / early.len() as f64;
        assert!((0.04..0.06).contains(&share), "AI share {share}");
        // The non-AI requests keep their place in the seeded stream.
        let same = ai
            .iter()
            .filter(|r| r.ai.is_none())
            .filter(|r| plain.contains(r))
            .count();
        assert!(
            same as f64 > 0.9 * (ai.len() - figures.len()) as f64,
            "{same}"
        );
        let count = |f: &dyn Fn(&AiRef<'_>) -> bool| figures.iter().filter(|a| f(a)).count();
        assert!(count(&|a| a.cache_status == "hit") > 0);
        assert!(count(&|a| a.guardrail_blocks > 0) > 0);
        assert!(count(&|a| a.mcp_tool_calls > 0) > 0);
        assert!(count(&|a| a.request_mode == "stream" && a.time_to_first_token_ms.is_some()) > 0);
        for a in &figures {
            assert_eq!(a.total_tokens, a.prompt_tokens + a.completion_tokens);
            assert_eq!(a.calls > 0, a.prompt_tokens > 0, "{a:?}");
        }
    }
}
