//! Configuration as Kong hands it over: the examples in `kong.yml` and the
//! README validate against `kong_looker.meta.json` (the draft-4 schema
//! Kong's admin API applies) and the filter accepts each one; bad configs
//! are refused by both, and the filter then stays inert, says why, and
//! never breaks traffic.

use std::time::Duration;

use kong_looker_testkit::{Kong, Profile, Request, Sink};
use kong_looker_testsupport::{Collected, filter};
use serde_json::{Value, json};
use yaml_rust2::{Yaml, YamlLoader};

fn schema() -> jsonschema::Validator {
    let meta: Value =
        serde_json::from_str(include_str!("../kong_looker.meta.json")).expect("meta is JSON");
    jsonschema::draft4::new(&meta["config_schema"]).expect("a valid draft-4 schema")
}

fn to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Real(r) => json!(r.parse::<f64>().unwrap()),
        Yaml::Integer(i) => json!(i),
        Yaml::String(s) => json!(s),
        Yaml::Boolean(b) => json!(b),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| (k.as_str().unwrap().to_string(), to_json(v)))
                .collect(),
        ),
        Yaml::Null => Value::Null,
        other => panic!("unexpected YAML {other:?}"),
    }
}

/// Every `kong_looker` filter config in `kong.yml`.
fn kong_yml_configs() -> Vec<Value> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/kong.yml")).unwrap();
    let doc = &YamlLoader::load_from_str(&text).unwrap()[0];
    let mut out = Vec::new();
    for service in doc["services"].as_vec().unwrap() {
        for chain in service["filter_chains"].as_vec().into_iter().flatten() {
            for f in chain["filters"].as_vec().unwrap() {
                if f["name"].as_str() == Some("kong_looker") {
                    out.push(to_json(&f["config"]));
                }
            }
        }
    }
    out
}

/// Every JSON block in the README that follows `<!-- kong_looker config -->`.
fn readme_configs() -> Vec<Value> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    text.split("<!-- kong_looker config -->")
        .skip(1)
        .map(|rest| {
            let block = rest.split("```json").nth(1).unwrap();
            let json = block.split("```").next().unwrap();
            serde_json::from_str(json).unwrap_or_else(|e| panic!("README config: {e}\n{json}"))
        })
        .collect()
}

/// Loads `config` (its collector pointed at a sink) in the host, sends one
/// request and returns what reached the sink and the host.
fn try_config(mut config: Value, profile: Profile) -> (Collected, Kong) {
    let sink = Sink::start().unwrap();
    if config.get("collector").is_some_and(Value::is_string) {
        config["collector"] = json!(sink.address());
    }
    let f = filter();
    let mut kong = Kong::builder(&f, profile)
        .chain(&config.to_string())
        .build();
    let out = kong.request(
        0,
        &Request::get("/orders/1").property("response.code", "200"),
    );
    assert_eq!(out.status, 200, "traffic flows");
    assert_eq!(out.trap, None);
    kong.advance(Duration::from_secs(3));
    (Collected::from(&sink.received()), kong)
}

#[test]
fn shipped_examples_validate_and_the_filter_accepts_them() {
    let v = schema();
    let mut examples = kong_yml_configs();
    assert!(examples.len() >= 2, "kong.yml has its filter chains");
    let readme = readme_configs();
    assert!(!readme.is_empty(), "the README shows a config");
    examples.extend(readme);
    for config in examples {
        let errors: Vec<String> = v.iter_errors(&config).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{config}: {errors:?}");
        for profile in Profile::ALL {
            let (c, kong) = try_config(config.clone(), profile);
            let refused: Vec<_> = kong
                .logs()
                .into_iter()
                .filter(|l| l.message.contains("config refused"))
                .collect();
            assert!(refused.is_empty(), "{config}: {refused:?}");
            // A sampled chain may leave the one request out.
            let sampled = config.get("sample_rate").is_some();
            assert!(sampled || c.rows.len() == 1, "{config}: captured");
        }
    }
}

#[test]
fn bad_configs_are_refused_by_the_schema_and_leave_the_filter_inert() {
    let v = schema();
    let cases = [
        (json!({}), "collector"),
        (json!({"collector": 9400}), "collector"),
        (
            json!({"collector": "10.0.0.5:9400", "colector": "typo"}),
            "colector",
        ),
        (
            json!({"collector": "10.0.0.5:9400", "batch": {"max_records": 0}}),
            "batch.max_records",
        ),
        (
            json!({"collector": "10.0.0.5:9400", "batch": {"max_records": "many"}}),
            "batch.max_records",
        ),
        (
            json!({"collector": "10.0.0.5:9400", "sample_rate": 0}),
            "sample_rate",
        ),
        (
            json!({"collector": "10.0.0.5:9400", "sample_rate": 1.5}),
            "sample_rate",
        ),
        (
            json!({"collector": "10.0.0.5:9400", "privacy": {"client_address": "blur"}}),
            "privacy.client_address",
        ),
        (
            json!({"collector": "10.0.0.5:9400", "identity": {"trusted_headers": ["bad header"]}}),
            "identity.trusted_headers[0]",
        ),
        (
            json!({"collector": "10.0.0.5:9400", "timeout_ms": -5}),
            "timeout_ms",
        ),
        (
            json!({"collector": "10.0.0.5:9400", "paths": {"templates": [{"prefix": "v1"}]}}),
            "paths.templates[0]",
        ),
    ];
    for (config, field) in cases {
        assert!(!v.is_valid(&config), "the schema accepts {config}");
        for profile in Profile::ALL {
            let (c, kong) = try_config(config.clone(), profile);
            assert!(
                c.rows.is_empty(),
                "{config}: an inert chain captures nothing"
            );
            assert!(kong.dispatches().is_empty(), "{config}: and sends nothing");
            assert!(kong.traps().is_empty(), "{config}: {:?}", kong.traps());
            let logs = kong.logs();
            let line = logs
                .iter()
                .find(|l| l.message.contains("config refused"))
                .unwrap_or_else(|| panic!("{config}: no refusal logged: {logs:?}"));
            assert!(
                line.message.contains(field),
                "{config}: the log names {field}: {}",
                line.message
            );
        }
    }
}

#[test]
fn a_bad_chain_does_not_disturb_a_good_one() {
    let sink = Sink::start().unwrap();
    let good = json!({"collector": sink.address(), "workspace": "good"}).to_string();
    let f = filter();
    let mut kong = Kong::builder(&f, Profile::from_env())
        .chain(r#"{"collector": "no-port"}"#)
        .chain(&good)
        .build();
    for chain in [0, 1, 0, 1] {
        let out = kong.request(0, &Request::get("/x").on_chain(chain));
        assert_eq!((out.status, out.trap), (200, None));
    }
    kong.advance(Duration::from_secs(3));
    let c = Collected::from(&sink.received());
    assert_eq!(c.rows.len(), 2);
    assert!(
        c.rows
            .iter()
            .all(|r| r.workspace.as_deref() == Some("good"))
    );
}

/// The whole of `kong.yml`, as far as Kong's declarative format can be
/// checked without Kong: known top-level keys, the entities' required
/// fields and nesting, filter names that match the `.wasm` Kong loads,
/// configs that validate, and an http-log plugin aimed at the collector's
/// http-log endpoint with a bearer token.
#[test]
fn kong_yml_has_kong_s_declarative_shape() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/kong.yml")).unwrap();
    let doc = to_json(&YamlLoader::load_from_str(&text).unwrap()[0]);
    let problems = declarative_problems(&doc);
    assert!(problems.is_empty(), "{problems:#?}");
    // The checker is not a rubber stamp.
    let mut broken = doc.clone();
    broken["services"][0]["filter_chains"][0]["filters"][0]["name"] = json!("kong-looker");
    broken["services"][1]["routes"][0]
        .as_object_mut()
        .unwrap()
        .remove("paths");
    broken["_format_version"] = json!("2.1");
    broken["plugins"][0]["config"]["http_endpoint"] = json!("http://10.0.9.20:9400/v1/batches");
    let found = declarative_problems(&broken);
    assert_eq!(found.len(), 4, "{found:#?}");
}

fn declarative_problems(doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };
    // The entity keys of Kong 3.x declarative config (DB-less and decK).
    const TOP: [&str; 16] = [
        "_format_version",
        "_transform",
        "_workspace",
        "services",
        "routes",
        "consumers",
        "plugins",
        "upstreams",
        "targets",
        "certificates",
        "ca_certificates",
        "snis",
        "vaults",
        "consumer_groups",
        "filter_chains",
        "keys",
    ];
    let top = doc.as_object().expect("a mapping");
    for key in top.keys() {
        check(
            TOP.contains(&key.as_str()),
            format!("unknown top-level key {key}"),
        );
    }
    check(
        doc["_format_version"] == "3.0",
        "_format_version must be \"3.0\"".into(),
    );
    // The filter Kong loads is named after its file in wasm_filters_path.
    let wasm_name = "kong_looker";
    let validator = schema();
    for (i, s) in doc["services"].as_array().into_iter().flatten().enumerate() {
        check(s["name"].is_string(), format!("services[{i}] has no name"));
        check(
            s["url"].is_string() || s["host"].is_string(),
            format!("services[{i}] needs url or host"),
        );
        for (j, r) in s["routes"].as_array().into_iter().flatten().enumerate() {
            check(
                r["name"].is_string(),
                format!("services[{i}].routes[{j}] has no name"),
            );
            check(
                ["paths", "hosts", "methods", "headers", "snis"]
                    .iter()
                    .any(|k| !r[*k].is_null()),
                format!("services[{i}].routes[{j}] matches nothing (no paths, hosts, methods...)"),
            );
            for p in r["plugins"].as_array().into_iter().flatten() {
                check(
                    p["name"].is_string(),
                    format!("a plugin of route {j} has no name"),
                );
            }
        }
        for (j, c) in s["filter_chains"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("services[{i}].filter_chains[{j}]");
            check(c["name"].is_string(), format!("{at} has no name"));
            let filters = c["filters"].as_array();
            check(
                filters.is_some_and(|f| !f.is_empty()),
                format!("{at} has no filters"),
            );
            for f in filters.into_iter().flatten() {
                check(
                    f["name"] == wasm_name,
                    format!("{at}: filter {} is not {wasm_name}.wasm", f["name"]),
                );
                check(
                    validator.is_valid(&f["config"]),
                    format!("{at}: config does not validate against kong_looker.meta.json"),
                );
            }
        }
    }
    let names: Vec<&str> = doc["consumers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["username"].as_str().or(c["custom_id"].as_str()))
        .collect();
    check(
        !names.is_empty(),
        "consumers need a username or custom_id".into(),
    );
    let http_log: Vec<&Value> = doc["plugins"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == "http-log")
        .collect();
    check(http_log.len() == 1, "one global http-log plugin".into());
    for p in http_log {
        let endpoint = p["config"]["http_endpoint"].as_str().unwrap_or("");
        check(
            endpoint.ends_with("/v1/kong/http-log"),
            format!("http-log posts to {endpoint}, not the collector's /v1/kong/http-log"),
        );
        check(
            p["config"]["headers"]["Authorization"]
                .as_str()
                .is_some_and(|a| a.starts_with("Bearer ")),
            "http-log sends no bearer token".into(),
        );
    }
    problems
}
