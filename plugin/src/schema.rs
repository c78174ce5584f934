//! The plugin's Kong schema, as `-dump` and `cmd_get_plugin_info` give it:
//! derived at run time from `kong_looker.meta.json`, the filter's JSON
//! Schema, so that both hosts describe one config. Owns only the
//! translation from JSON Schema (draft-4) to Kong's schema language; the
//! real checks stay in the core's `Config::parse`.

use serde_json::{Map, Value, json};

/// Fields that hold secrets: Kong may resolve them from a vault
/// (`{vault://env/...}`), so that the key is not kept in its database.
const SECRETS: [&str; 1] = ["signing_key"];

/// The filter's config schema, the one source of truth for both hosts.
const META: &str = include_str!("../../kong_looker.meta.json");

/// Kong's schema of the plugin: `{"name", "fields": [{"config": record}]}`,
/// the shape go-pdk emits.
pub fn kong_schema(plugin_name: &str) -> Result<Value, String> {
    let meta: Value = serde_json::from_str(META).map_err(|e| format!("meta.json: {e}"))?;
    let config = meta
        .get("config_schema")
        .ok_or("meta.json has no config_schema")?;
    Ok(json!({
        "name": plugin_name,
        "fields": [
            {"config": field(config, true)?},
        ],
    }))
}

/// One JSON Schema node as a Kong field declaration.
fn field(s: &Value, top: bool) -> Result<Value, String> {
    let kind = s.get("type").and_then(Value::as_str).unwrap_or("");
    let mut out = Map::new();
    match kind {
        "object" => {
            out.insert("type".into(), "record".into());
            let required: Vec<&str> = s
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut fields = Vec::new();
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    let mut f = field(sub, false)?;
                    if let Some(obj) = f.as_object_mut() {
                        if required.contains(&name.as_str()) {
                            obj.insert("required".into(), true.into());
                        }
                        if SECRETS.contains(&name.as_str()) {
                            obj.insert("referenceable".into(), true.into());
                        }
                    }
                    fields.push(json!({ name: f }));
                }
            }
            out.insert("fields".into(), fields.into());
            // A nested record whose fields all have defaults is filled in
            // by Kong when absent; `required` makes it do so.
            if !top && required.is_empty() {
                out.insert("required".into(), true.into());
            }
        }
        "string" => {
            out.insert("type".into(), "string".into());
            copy(s, "minLength", &mut out, "len_min");
            copy(s, "maxLength", &mut out, "len_max");
            copy(s, "enum", &mut out, "one_of");
            // Kong matches Lua patterns, not regexes: only a literal
            // prefix carries over; the core checks the rest.
            if let Some(prefix) = s
                .get("pattern")
                .and_then(Value::as_str)
                .and_then(|p| p.strip_prefix('^'))
                .filter(|p| p.chars().all(|c| c.is_ascii_alphanumeric() || c == '/'))
            {
                out.insert("starts_with".into(), prefix.into());
            }
        }
        "integer" | "number" => {
            out.insert("type".into(), kind.into());
            let min = s.get("minimum").cloned();
            let max = s.get("maximum").cloned();
            let exclusive = s
                .get("exclusiveMinimum")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if exclusive && let Some(m) = &min {
                out.insert("gt".into(), m.clone());
            }
            if let (Some(lo), Some(hi)) = (min, max) {
                out.insert("between".into(), json!([lo, hi]));
            }
        }
        "boolean" => {
            out.insert("type".into(), "boolean".into());
        }
        "array" => {
            out.insert("type".into(), "array".into());
            let items = s.get("items").ok_or("an array without items")?;
            out.insert("elements".into(), field(items, true)?);
            copy(s, "maxItems", &mut out, "len_max");
        }
        other => return Err(format!("meta.json: unsupported type {other:?}")),
    }
    copy(s, "default", &mut out, "default");
    copy(s, "description", &mut out, "description");
    Ok(Value::Object(out))
}

fn copy(from: &Value, key: &str, to: &mut Map<String, Value>, as_key: &str) {
    if let Some(v) = from.get(key) {
        to.insert(as_key.into(), v.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_config_field_is_in_the_kong_schema() {
        let schema = kong_schema("kong-looker").unwrap();
        let config = &schema["fields"][0]["config"];
        assert_eq!(config["type"], "record");
        let names: Vec<&str> = config["fields"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f.as_object().unwrap().keys().map(String::as_str))
            .collect();
        let meta: Value = serde_json::from_str(META).unwrap();
        for key in meta["config_schema"]["properties"]
            .as_object()
            .unwrap()
            .keys()
        {
            assert!(names.contains(&key.as_str()), "{key} missing");
        }
        let collector = config["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|f| f.get("collector"))
            .unwrap();
        assert_eq!(collector["required"], true);
        assert_eq!(collector["type"], "string");
    }
}

/// Makes the config Kong sends readable by the core's `Config::parse`:
/// drops Kong's own keys (`__seq__`, `__key__`, `__plugin_id`) and the
/// `null`s Kong's schema fills unset fields with, and turns the `{}` that
/// cjson writes for an empty Lua table back into `[]` where the schema
/// says array.
pub fn normalize(config: &mut Value) -> Result<(), String> {
    let meta: Value = serde_json::from_str(META).map_err(|e| format!("meta.json: {e}"))?;
    if let (Some(schema), Some(obj)) = (meta.get("config_schema"), config.as_object_mut()) {
        obj.retain(|k, _| !k.starts_with("__"));
        walk(schema, config);
    }
    Ok(())
}

fn walk(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(obj) => {
            let is_array = schema.get("type").and_then(Value::as_str) == Some("array");
            if is_array && obj.is_empty() {
                *value = Value::Array(Vec::new());
                return;
            }
            obj.retain(|_, v| !v.is_null());
            for (k, v) in obj.iter_mut() {
                if let Some(sub) = schema.get("properties").and_then(|p| p.get(k)) {
                    walk(sub, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for v in items.iter_mut() {
                    walk(sub, v);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod normalize_tests {
    use super::*;

    #[test]
    fn the_signing_key_may_come_from_a_vault() {
        let schema = kong_schema("kong-looker").unwrap();
        let fields = schema["fields"][0]["config"]["fields"].as_array().unwrap();
        let key = fields.iter().find_map(|f| f.get("signing_key")).unwrap();
        assert_eq!(key["referenceable"], true);
        let collector = fields.iter().find_map(|f| f.get("collector")).unwrap();
        assert!(collector.get("referenceable").is_none());
    }

    #[test]
    fn kong_additions_are_removed() {
        let mut v = json!({
            "__seq__": 3, "__key__": "k", "__plugin_id": "p",
            "collector": "127.0.0.1:1", "signing_key": null,
            "paths": {"templates": {}, "max_templates": null},
            "batch": {"max_records": 10, "flush_interval_ms": null},
        });
        normalize(&mut v).unwrap();
        assert_eq!(
            v,
            json!({"collector": "127.0.0.1:1", "paths": {"templates": []}, "batch": {"max_records": 10}})
        );
    }
}
