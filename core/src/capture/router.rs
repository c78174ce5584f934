//! Kong's `kong.router.route` and `kong.router.service` properties: the
//! matched entity as JSON, which is where Kong 3.8 keeps the route and
//! service names (3.9 also has `kong.route_name` and `kong.service_name`).

use serde_json::Value;

/// Largest entity the parser reads.
pub const MAX_ENTITY_BYTES: usize = 64 * 1024;
/// Longest id or name kept.
pub const MAX_FIELD_BYTES: usize = 256;

/// The id and name of a route or service entity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entity {
    /// `id`.
    pub id: Option<String>,
    /// `name`.
    pub name: Option<String>,
}

/// Parses an entity; `None` when it is not a JSON object or too large.
pub fn entity(json: &[u8]) -> Option<Entity> {
    if json.len() > MAX_ENTITY_BYTES {
        return None;
    }
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(json) else {
        return None;
    };
    let field = |key: &str| match map.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(super::cut(s, MAX_FIELD_BYTES).to_owned()),
        _ => None,
    };
    Some(Entity {
        id: field("id"),
        name: field("name"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn reads_id_and_name_of_kongs_route_entity() {
        let route = br#"{"updated_at":1726782477,"tags":[],"service":{"id":"fb4eecf8-dec2-40ef-b779-16de7e2384c7"},"name":"example_route","id":"0f1a4101-3327-4274-b1e4-484a4ab0c030","paths":["/example-route"]}"#;
        let e = entity(route).unwrap();
        assert_eq!(
            e.id.as_deref(),
            Some("0f1a4101-3327-4274-b1e4-484a4ab0c030")
        );
        assert_eq!(e.name.as_deref(), Some("example_route"));
        assert_eq!(entity(br#"{"id":"x","name":null}"#).unwrap().name, None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn bad_json_is_none_not_a_panic() {
        assert_eq!(entity(b"not json"), None);
        assert_eq!(entity(b"[1]"), None);
        assert_eq!(entity(&b"[".repeat(10_000)), None);
        assert_eq!(entity(&[0xff, 0xfe]), None);
        let big = format!(r#"{{"id":"x","pad":"{}"}}"#, "a".repeat(MAX_ENTITY_BYTES));
        assert_eq!(entity(big.as_bytes()), None);
        let long = format!(r#"{{"name":"{}"}}"#, "é".repeat(500));
        assert!(entity(long.as_bytes()).unwrap().name.unwrap().len() <= MAX_FIELD_BYTES);
    }
}
