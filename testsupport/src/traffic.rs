//! The reference mix as Kong would present it to the filter: each consumer's
//! auth method becomes the headers its Kong plugin leaves (X-Consumer-*,
//! X-Credential-Identifier), the credential the client sent (an API key,
//! a bearer token, Basic, SigV4, a client certificate) and the properties
//! Kong sets; each request also gets the row the filter must produce.
//!
//! Chains: one per team and trust level. Verified consumers go through a
//! chain that says an auth plugin guards it; the few claimed ones through
//! one that does not.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use kong_looker_proto::mix::{self, Mix};
use kong_looker_proto::row::{agent_category_name, method_name, source_name};
use kong_looker_proto::v1::{AuthMethod, ResponseSource, Trust};
use kong_looker_testkit::{Profile, Request};

use kong_looker_proto::{AiRef, OwnedRow};

/// Teams of the mix, in chain order.
pub const TEAMS: [&str; 3] = ["commerce", "discovery", "platform"];

/// Secrets the translation puts in requests; none may leave the filter.
pub const API_KEY_PREFIX: &str = "sk_live_";
/// The Basic password every Basic consumer sends.
pub const BASIC_PASSWORD: &str = "hunter2-Basic-Secret";
/// The SigV4 signature every SigV4 request carries.
pub const SIGV4_SIGNATURE: &str =
    "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f";
/// The signature part of every JWT.
pub const JWT_SIGNATURE: &str = "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

/// The chain configs: for each team, a guarded chain (even index) and an
/// unguarded one (odd index).
pub fn chains(collector: &str, extra: &str) -> Vec<String> {
    let sep = if extra.is_empty() { "" } else { "," };
    TEAMS
        .iter()
        .flat_map(|team| {
            [true, false].map(|guarded| {
                format!(
                    r#"{{"collector":"{collector}","workspace":"{team}","batch":{{"flush_interval_ms":100}},"identity":{{"auth_plugin":{guarded}}}{sep}{extra}}}"#
                )
            })
        })
        .collect()
}

/// The same chains with the default batching (1,000 records, 256 KiB or
/// one second), as the wire-size measurements use them.
pub fn default_batching_chains(collector: &str) -> Vec<String> {
    TEAMS
        .iter()
        .flat_map(|team| {
            [true, false].map(|guarded| {
                format!(
                    r#"{{"collector":"{collector}","workspace":"{team}","identity":{{"auth_plugin":{guarded}}}}}"#
                )
            })
        })
        .collect()
}

/// A token with `claims` and a fixed signature.
pub fn jwt(claims: &serde_json::Value) -> String {
    format!(
        "{}.{}.{JWT_SIGNATURE}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// The `ai` section Kong 3.10+ logs for a request with these figures: the
/// proxied call under `proxy` (meta, usage, cache, a guardrail's verdict),
/// or an MCP call under `mcp` (docs/kong_ai_log_fields.md has the shapes).
pub fn ai_section(ai: &AiRef<'_>) -> serde_json::Value {
    use serde_json::json;
    if ai.mcp_tool_calls > 0 {
        return json!({"mcp": {
            "mcp_session_id": "0b0c0d0e-0000-4000-8000-00000000000a",
            "rpc": [{"method": "tools/call", "id": "1", "tool_name": ai.mcp_tool, "latency": 40}],
        }});
    }
    let mut proxy = json!({"meta": {
        "plugin_id": "6e7c40f6-0000-4000-8000-00000000a001",
        "provider_name": ai.provider,
        "request_model": ai.request_model,
    }});
    if !ai.response_model.is_empty() {
        proxy["meta"]["response_model"] = json!(ai.response_model);
    }
    if !ai.request_mode.is_empty() {
        proxy["meta"]["request_mode"] = json!(ai.request_mode);
    }
    if let Some(ms) = ai.llm_latency_ms {
        proxy["meta"]["llm_latency"] = json!(ms);
    }
    if ai.calls > 0 {
        // Kong's cost is a float in the price unit.
        proxy["usage"] = json!({
            "prompt_tokens": ai.prompt_tokens,
            "completion_tokens": ai.completion_tokens,
            "total_tokens": ai.total_tokens,
            "cost": ai.cost_micros as f64 / 1e6,
        });
        if let Some(ms) = ai.time_to_first_token_ms {
            proxy["usage"]["time_to_first_token"] = json!(ms);
        }
    }
    if !ai.cache_status.is_empty() {
        let status = if ai.cache_status == "hit" {
            "Hit"
        } else {
            "Miss"
        };
        proxy["cache"] = json!({"cache_status": status});
        if let Some(ms) = ai.cache_fetch_latency_ms {
            proxy["cache"]["fetch_latency"] = json!(ms);
        }
        if !ai.embeddings_model.is_empty() {
            proxy["cache"]["embeddings_model"] = json!(ai.embeddings_model);
        }
    }
    if ai.guardrail_blocks > 0 {
        proxy[ai.guardrail] =
            json!({"input_block_reason": "denied topic", "input_processing_latency": 78});
    }
    json!({"proxy": proxy})
}

/// Turns `req` into what Kong shows the filter, and the row it must write
/// (its start time is the test's to check).
pub fn kong_request(mix: &Mix, req: &mix::Request, profile: Profile) -> (Request, OwnedRow) {
    let route = &mix.routes()[req.route];
    let host = mix.hosts().nth(req.host).unwrap();
    let path = mix.raw_path(req);
    let method = method_name(route.method).unwrap();
    let mut r = Request::new(method, &format!("{path}?page=2&token=query-secret"))
        .header("host", host)
        .respond(req.status)
        .lasting(req.total_us / 1000)
        .property("response.code", req.status.to_string())
        .property("ngx.request_time", seconds(req.total_us))
        .property("ngx.request_length", req.request_bytes.to_string())
        .property("ngx.bytes_sent", req.response_bytes.to_string())
        .property("ngx.remote_addr", mix.addresses()[req.address].clone())
        .property("kong.route_id", route.route_id.clone())
        .property("kong.service_id", route.service_id.clone())
        .property("kong.node.id", "3f1b6a52-6c1d-4f0e-9d55-0c8f8f6b2a10");
    r.headers.retain(|(n, _)| n != ":authority" && n != "host");
    r = r.header(":authority", host).header("host", host);
    if profile == Profile::Kong39 {
        r = r
            .property("kong.route_name", route.route_name.clone())
            .property("kong.service_name", route.service_name);
    } else {
        r = r
            .property(
                "kong.router.route",
                serde_json::json!({
                    "id": route.route_id, "name": route.route_name,
                    "paths": [format!("/{}", route.service_name)], "protocols": ["http", "https"],
                    "service": {"id": route.service_id}, "strip_path": false,
                })
                .to_string(),
            )
            .property(
                "kong.router.service",
                serde_json::json!({
                    "id": route.service_id, "name": route.service_name,
                    "host": "upstream.internal", "port": 8080, "protocol": "http",
                })
                .to_string(),
            );
    }
    if req.source == ResponseSource::Upstream {
        r = r.property("ngx.upstream_status", req.status.to_string());
        if let Some(up) = req.upstream_us {
            r = r.property("ngx.upstream_response_time", seconds(up));
        }
    }
    if let Some(id) = &req.request_id {
        r = r.property("ngx.kong_request_id", id.clone());
    }
    let agent = req.agent.map(|a| mix.agents().nth(a).unwrap());
    if let Some(a) = agent {
        r = r.header("user-agent", a.user_agent);
    }
    if let Some(ai) = &req.ai {
        r = r.log_ai(ai_section(ai));
        // ai-proxy names the model on 200s from the provider; the
        // semantic cache's status goes beside it.
        if req.status == 200 && !ai.provider.is_empty() {
            r = r.response_header(
                "x-kong-llm-model",
                &format!("{}/{}", ai.provider, ai.request_model),
            );
            let status = match ai.cache_status {
                "hit" => "Hit",
                "miss" => "Miss",
                other => other,
            };
            if !status.is_empty() {
                r = r.response_header("x-cache-status", status);
            }
        }
    }

    let team = TEAMS.iter().position(|t| *t == route.workspace).unwrap();
    let address: std::net::IpAddr = mix.addresses()[req.address].parse().unwrap();
    let mut row = OwnedRow {
        route_id: Some(route.route_id.clone()),
        route_name: Some(route.route_name.clone()),
        service_id: Some(route.service_id.clone()),
        service_name: Some(route.service_name.to_string()),
        workspace: Some(route.workspace.to_string()),
        method: Some(method.to_string()),
        host: Some(host.to_string()),
        path: Some(route.paths[req.path].clone()),
        status: Some(req.status),
        response_source: source_name(req.source),
        latency_total_us: req.total_us,
        latency_upstream_us: if req.source == ResponseSource::Upstream {
            req.upstream_us
        } else {
            None
        },
        request_bytes: req.request_bytes,
        response_bytes: req.response_bytes,
        client_address: Some(address.to_string()),
        agent_category: agent.map(|a| agent_category_name(a.category)),
        agent_name: agent.map(|a| a.name.to_string()),
        request_id: req.request_id.clone(),
        sample_weight: 1.0,
        ..OwnedRow::default()
    };

    let mut chain = team * 2;
    if let Some(c) = req.consumer.map(|c| &mix.consumers()[c]) {
        let verified = c.trust == Trust::Verified;
        if !verified {
            chain += 1;
        }
        r = r
            .header("x-consumer-id", &c.consumer_id)
            .header("x-consumer-username", &c.username);
        if !c.custom_id.is_empty() {
            r = r.header("x-consumer-custom-id", &c.custom_id);
        }
        if !c.groups.is_empty() {
            r = r.header("x-consumer-groups", &c.groups.join(", "));
        }
        row.consumer_id = Some(c.consumer_id.clone());
        row.consumer_username = Some(c.username.clone());
        row.consumer_custom_id = (!c.custom_id.is_empty()).then(|| c.custom_id.clone());
        row.consumer_groups = c.groups.iter().map(|g| g.to_string()).collect();
        row.trust = Some(if verified { "verified" } else { "claimed" });
        row.auth_method = kong_looker_proto::row::auth_method_name(c.auth_method);
        match c.auth_method {
            AuthMethod::KeyAuth => {
                r = r
                    .header("apikey", &format!("{API_KEY_PREFIX}{}", c.consumer_id))
                    .header("x-credential-identifier", &c.credential);
                row.credential = Some(c.credential.clone());
            }
            AuthMethod::Oidc => {
                let token = jwt(&serde_json::json!({
                    "sub": c.subject, "iss": c.issuer, "azp": c.client_id,
                    "aud": "api://default", "exp": 1_900_000_000, "scp": ["orders.read"],
                }));
                r = r.header("authorization", &format!("Bearer {token}"));
                row.subject = Some(c.subject.clone());
                row.issuer = Some(c.issuer.to_string());
                row.client_id = Some(c.client_id.clone());
            }
            AuthMethod::Jwt => {
                let token = jwt(&serde_json::json!({
                    "sub": c.subject, "iss": c.issuer, "exp": 1_900_000_000,
                }));
                r = r
                    .header("authorization", &format!("Bearer {token}"))
                    .header("x-credential-identifier", &c.credential);
                row.subject = Some(c.subject.clone());
                row.issuer = Some(c.issuer.to_string());
                row.credential = Some(c.credential.clone());
            }
            AuthMethod::Mtls => {
                // Client certificates come over TLS only.
                r.headers.retain(|(n, _)| n != ":scheme");
                r = r
                    .header(":scheme", "https")
                    .property("ngx.ssl_client_s_dn", c.subject.clone())
                    .property("ngx.ssl_client_fingerprint", c.credential.clone())
                    .property("connection.mtls", if verified { "true" } else { "false" });
                row.subject = Some(c.username.clone());
                row.credential = Some(c.credential.clone());
            }
            AuthMethod::AwsSigv4 => {
                r = r.header(
                    "authorization",
                    &format!(
                        "AWS4-HMAC-SHA256 Credential={}/20261129/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature={SIGV4_SIGNATURE}",
                        c.credential
                    ),
                );
                row.credential = Some(c.credential.clone());
                row.issuer = Some(c.issuer.to_string());
            }
            AuthMethod::Basic => {
                let basic = STANDARD.encode(format!("{}:{BASIC_PASSWORD}", c.username));
                r = r
                    .header("authorization", &format!("Basic {basic}"))
                    .header("x-credential-identifier", &c.credential);
                row.credential = Some(c.credential.clone());
                row.subject = Some(c.username.clone());
            }
            _ => {}
        }
    }
    (r.on_chain(chain), row)
}

/// nginx's seconds with milliseconds.
pub fn seconds(us: u64) -> String {
    format!("{}.{:03}", us / 1_000_000, (us / 1000) % 1000)
}
