//! A serde model of Kong's http-log entry (`kong.log.serialize()`), shaped
//! like the sample in Kong's plugin docs, filled from reference-mix
//! requests: the baseline our wire format is compared against.

// The fields are Kong's, named as its serializer names them.
#![allow(missing_docs)]
use kong_looker_proto::mix::{Mix, Request};
use kong_looker_proto::v1::ResponseSource;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Entry {
    pub response: Response,
    pub route: Route,
    pub workspace: String,
    pub workspace_name: String,
    pub tries: Vec<Try>,
    pub client_ip: String,
    pub request: HttpRequest,
    pub upstream_uri: String,
    pub started_at: i64,
    pub source: String,
    pub upstream_status: String,
    pub latencies: Latencies,
    pub service: Service,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer: Option<Consumer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authenticated_entity: Option<AuthenticatedEntity>,
}

#[derive(Serialize, Deserialize)]
pub struct Response {
    pub size: u64,
    pub headers: ResponseHeaders,
    pub status: u16,
}

#[derive(Serialize, Deserialize)]
pub struct ResponseHeaders {
    #[serde(rename = "content-length")]
    pub content_length: String,
    pub date: String,
    #[serde(rename = "content-type")]
    pub content_type: String,
    pub via: String,
    pub connection: String,
    pub server: String,
    #[serde(rename = "x-kong-upstream-latency")]
    pub upstream_latency: String,
    #[serde(rename = "x-kong-proxy-latency")]
    pub proxy_latency: String,
    #[serde(rename = "x-kong-request-id")]
    pub request_id: String,
}

#[derive(Serialize, Deserialize)]
pub struct Route {
    pub updated_at: i64,
    pub tags: Vec<String>,
    pub response_buffering: bool,
    pub path_handling: String,
    pub protocols: Vec<String>,
    pub service: IdOnly,
    pub https_redirect_status_code: u16,
    pub regex_priority: i32,
    pub name: String,
    pub id: String,
    pub strip_path: bool,
    pub preserve_host: bool,
    pub created_at: i64,
    pub request_buffering: bool,
    pub ws_id: String,
    pub paths: Vec<String>,
}

#[derive(Serialize, Deserialize)]
pub struct IdOnly {
    pub id: String,
}

#[derive(Serialize, Deserialize)]
pub struct Try {
    pub balancer_start: i64,
    pub balancer_start_ns: f64,
    pub ip: String,
    pub balancer_latency: u64,
    pub port: u16,
    pub balancer_latency_ns: u64,
}

#[derive(Serialize, Deserialize)]
pub struct HttpRequest {
    pub id: String,
    pub headers: RequestHeaders,
    pub uri: String,
    pub size: u64,
    pub method: String,
    pub querystring: serde_json::Map<String, serde_json::Value>,
    pub url: String,
}

#[derive(Serialize, Deserialize)]
pub struct RequestHeaders {
    pub accept: String,
    #[serde(rename = "user-agent", skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    pub host: String,
    pub connection: String,
    #[serde(rename = "accept-encoding")]
    pub accept_encoding: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub struct Latencies {
    pub kong: u64,
    pub proxy: i64,
    pub request: u64,
    pub receive: u64,
}

#[derive(Serialize, Deserialize)]
pub struct Service {
    pub write_timeout: u32,
    pub read_timeout: u32,
    pub updated_at: i64,
    pub host: String,
    pub name: String,
    pub id: String,
    pub port: u16,
    pub enabled: bool,
    pub created_at: i64,
    pub protocol: String,
    pub ws_id: String,
    pub connect_timeout: u32,
    pub retries: u32,
}

#[derive(Serialize, Deserialize)]
pub struct Consumer {
    pub id: String,
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub tags: Vec<String>,
    pub ws_id: String,
}

#[derive(Serialize, Deserialize)]
pub struct AuthenticatedEntity {
    pub id: String,
    pub consumer_id: IdOnly,
}

const WS: &str = "f381e34e-5c25-4e65-b91b-3c0a86cfc393";

/// The http-log entry Kong would send for `r`.
pub fn entry(mix: &Mix, r: &Request) -> Entry {
    let route = &mix.routes()[r.route];
    let host = mix.hosts().nth(r.host).unwrap_or("api.example.com");
    let path = mix.raw_path(r);
    let request_id = r
        .request_id
        .clone()
        .unwrap_or_else(|| format!("{:032x}", r.started_at_ms as u128 * 7919 + r.route as u128));
    let upstream_ms = r.upstream_us.map(|u| (u / 1000) as i64).unwrap_or(-1);
    let total_ms = r.total_us / 1000;
    let consumer = r.consumer.map(|c| &mix.consumers()[c]);
    Entry {
        response: Response {
            size: r.response_bytes,
            headers: ResponseHeaders {
                content_length: r.response_bytes.saturating_sub(389).to_string(),
                date: "Mon, 05 Jan 2026 12:00:00 GMT".into(),
                content_type: "application/json".into(),
                via: "1.1 kong/3.9.1".into(),
                connection: "close".into(),
                server: "envoy".into(),
                upstream_latency: upstream_ms.max(0).to_string(),
                proxy_latency: total_ms
                    .saturating_sub(upstream_ms.max(0) as u64)
                    .to_string(),
                request_id: request_id.clone(),
            },
            status: r.status,
        },
        route: Route {
            updated_at: 1_726_782_477,
            tags: vec![],
            response_buffering: true,
            path_handling: "v0".into(),
            protocols: vec!["http".into(), "https".into()],
            service: IdOnly {
                id: route.service_id.clone(),
            },
            https_redirect_status_code: 426,
            regex_priority: 0,
            name: route.route_name.clone(),
            id: route.route_id.clone(),
            strip_path: true,
            preserve_host: false,
            created_at: 1_726_782_477,
            request_buffering: true,
            ws_id: WS.into(),
            paths: vec![format!("/{}", route.service_name)],
        },
        workspace: WS.into(),
        workspace_name: route.workspace.into(),
        tries: vec![Try {
            balancer_start: r.started_at_ms,
            balancer_start_ns: r.started_at_ms as f64 * 1e6,
            ip: "10.0.3.17".into(),
            balancer_latency: 0,
            port: 8080,
            balancer_latency_ns: 27_904,
        }],
        client_ip: mix.addresses()[r.address].clone(),
        request: HttpRequest {
            id: request_id,
            headers: RequestHeaders {
                accept: "*/*".into(),
                user_agent: r
                    .agent
                    .and_then(|a| mix.agents().nth(a))
                    .map(|a| a.user_agent.to_owned()),
                host: host.into(),
                connection: "keep-alive".into(),
                accept_encoding: "gzip, deflate".into(),
                authorization: consumer.map(|_| "REDACTED".into()),
            },
            uri: path.clone(),
            size: r.request_bytes,
            method: format!("{:?}", route.method).to_uppercase(),
            querystring: serde_json::Map::new(),
            url: format!("https://{host}{path}"),
        },
        upstream_uri: path,
        started_at: r.started_at_ms,
        source: if r.source == ResponseSource::Kong {
            "kong"
        } else {
            "upstream"
        }
        .into(),
        upstream_status: if r.source == ResponseSource::Kong {
            String::new()
        } else {
            r.status.to_string()
        },
        latencies: Latencies {
            kong: total_ms.saturating_sub(upstream_ms.max(0) as u64),
            proxy: upstream_ms,
            request: total_ms,
            receive: 0,
        },
        service: Service {
            write_timeout: 60_000,
            read_timeout: 60_000,
            updated_at: 1_726_782_459,
            host: format!("{}.internal", route.service_name),
            name: route.service_name.into(),
            id: route.service_id.clone(),
            port: 8080,
            enabled: true,
            created_at: 1_726_782_459,
            protocol: "http".into(),
            ws_id: WS.into(),
            connect_timeout: 60_000,
            retries: 5,
        },
        authenticated_entity: consumer.filter(|c| !c.credential.is_empty()).map(|c| {
            AuthenticatedEntity {
                id: c.credential.clone(),
                consumer_id: IdOnly {
                    id: c.consumer_id.clone(),
                },
            }
        }),
        consumer: consumer.map(|c| Consumer {
            id: c.consumer_id.clone(),
            username: c.username.clone(),
            custom_id: (!c.custom_id.is_empty()).then(|| c.custom_id.clone()),
            created_at: 1_726_782_400,
            updated_at: 1_726_782_400,
            tags: vec![],
            ws_id: WS.into(),
        }),
    }
}
