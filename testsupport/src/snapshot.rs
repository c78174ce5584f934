//! The log snapshot Kong keeps for a request, as an external plugin server
//! reads it in the log phase: `kong.log.serialize()` (its `Authorization`
//! redacted) and the raw request headers, built from what the test host
//! would have served.

use kong_looker_testkit::Request;
use kong_looker_testkit::plugin_server::LogSnapshot;

/// nginx seconds (`1.234`) as whole ms.
fn ms(s: &str) -> i64 {
    let (whole, frac) = s.split_once('.').unwrap_or((s, "0"));
    whole.parse::<i64>().unwrap() * 1000 + format!("{frac:0<3}")[..3].parse::<i64>().unwrap()
}

/// What Kong's log timer would hold for a request the test host would have
/// served as `r`: `kong.log.serialize()` (its Authorization redacted) and
/// the raw request headers.
pub fn of(r: &Request, ended_at_ms: i64) -> LogSnapshot {
    let prop = |n: &str| {
        r.properties
            .get(n)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let header = |n: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let num = |v: Option<String>| v.and_then(|s| s.parse::<i64>().ok());
    let total_ms = prop("ngx.request_time").map(|s| ms(&s)).unwrap_or(0);
    let path = header(":path").unwrap_or_default();
    let host = header("host").unwrap_or_default();
    let scheme = header(":scheme").unwrap_or_else(|| "http".into());
    let headers: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(n, _)| !n.starts_with(':'))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect();
    let mut shown = serde_json::Map::new();
    for (n, v) in &headers {
        let v = if n == "authorization" { "REDACTED" } else { v };
        shown.insert(n.clone(), v.into());
    }
    let started_at = ended_at_ms - total_ms;
    let upstream_status = prop("ngx.upstream_status");
    let mut entry = serde_json::json!({
        "request": {
            "id": prop("ngx.kong_request_id"),
            "method": header(":method"),
            "uri": path,
            "url": format!("{scheme}://{host}{path}"),
            "size": num(prop("ngx.request_length")),
            "querystring": {},
            "headers": shown,
        },
        "response": {
            "status": num(prop("response.code")).unwrap_or(i64::from(r.response.status)),
            "size": num(prop("ngx.bytes_sent")),
            "headers": {},
        },
        "latencies": {
            "request": total_ms,
            "proxy": prop("ngx.upstream_response_time").map(|s| ms(&s)).unwrap_or(-1),
            "kong": 0,
            "receive": 0,
        },
        "client_ip": prop("ngx.remote_addr"),
        "started_at": started_at,
        "source": if upstream_status.is_some() { "upstream" } else { "kong" },
        "workspace": "f381e34e-5c25-4e65-b91b-3c0a86cfc393",
        "workspace_name": "default",
        "tries": [],
    });
    if let Some(s) = upstream_status {
        entry["upstream_status"] = s.into();
    }
    if let Some(ai) = &r.log_ai {
        entry["ai"] = ai.clone();
    }
    if let Some(id) = prop("kong.route_id") {
        entry["route"] = serde_json::json!({
            "id": id, "name": prop("kong.route_name"),
            "service": {"id": prop("kong.service_id")},
            "protocols": ["http", "https"], "strip_path": false,
        });
    }
    if let Some(id) = prop("kong.service_id") {
        entry["service"] = serde_json::json!({
            "id": id, "name": prop("kong.service_name"),
            "host": "upstream.internal", "port": 8080, "protocol": "http",
        });
    }
    LogSnapshot {
        serialize: entry,
        request_headers: headers,
        response_status: r.response.status.into(),
        req_start_time: started_at as f64 / 1000.0,
        node_id: "3f1b6a52-6c1d-4f0e-9d55-0c8f8f6b2a10".into(),
    }
}
