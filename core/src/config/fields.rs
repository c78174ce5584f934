//! Reading one JSON object of the config field by field, so that every
//! error names its field by dotted path and a key's value never reaches an
//! error.
//!
//! This walks serde_json's `Value`, which the filter already links for JWT
//! claims and Kong's router JSON. serde's derive with path tracking did the
//! same job at about 90 KB of the `.wasm` (a third of it), and pulled in
//! float formatting through serde's error messages.

use serde_json::{Map, Value};

use super::ConfigError;

/// One object of the config, with the fields not yet read.
pub(super) struct Object {
    /// Dotted path of this object; empty at the top.
    path: String,
    map: Map<String, Value>,
}

/// A value of the config with the path that names it.
pub(super) struct Field {
    path: String,
    value: Value,
}

impl Object {
    /// The whole document, which must be an object.
    pub fn document(value: Value) -> Result<Object, ConfigError> {
        match value {
            Value::Object(map) => Ok(Object {
                path: String::new(),
                map,
            }),
            other => Err(ConfigError {
                field: ".".into(),
                reason: format!("expected a JSON object, found {}", kind(&other)),
            }),
        }
    }

    /// The field `name`, if present. `null` counts as present: Kong's
    /// schema refuses it too, so the filter says so instead of guessing.
    pub fn take(&mut self, name: &str) -> Option<Field> {
        let value = self.map.remove(name)?;
        Some(Field {
            path: self.child(name),
            value,
        })
    }

    /// A field that must be present.
    pub fn require(&mut self, name: &str) -> Result<Field, ConfigError> {
        self.take(name).ok_or_else(|| ConfigError {
            field: self.child(name),
            reason: "is required".into(),
        })
    }

    /// A nested object; absent reads as empty, so its defaults apply.
    pub fn object(&mut self, name: &str) -> Result<Object, ConfigError> {
        match self.take(name) {
            Some(f) => f.object(),
            None => Ok(Object {
                path: self.child(name),
                map: Map::new(),
            }),
        }
    }

    /// A string field, or `default`.
    pub fn string(&mut self, name: &str, default: &str) -> Result<String, ConfigError> {
        self.take(name)
            .map_or_else(|| Ok(default.to_owned()), Field::string)
    }

    /// A string field that holds a key: a wrongly typed value is not quoted.
    pub fn secret(&mut self, name: &str) -> Result<String, ConfigError> {
        match self.take(name) {
            None => Ok(String::new()),
            Some(Field {
                value: Value::String(s),
                ..
            }) => Ok(s),
            Some(f) => Err(f.error("must be a string (the value is not logged)".into())),
        }
    }

    /// A boolean field, or `default`.
    pub fn boolean(&mut self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.take(name) {
            None => Ok(default),
            Some(Field {
                value: Value::Bool(b),
                ..
            }) => Ok(b),
            Some(f) => Err(f.wrong_type("a boolean")),
        }
    }

    /// A whole number field that fits in 32 bits, or `default`. Ranges are
    /// checked afterwards, with the field's own bounds.
    pub fn whole(&mut self, name: &str, default: u32) -> Result<u32, ConfigError> {
        let Some(f) = self.take(name) else {
            return Ok(default);
        };
        if let Value::Number(n) = &f.value {
            match n.as_u64().map(u32::try_from) {
                Some(Ok(v)) => return Ok(v),
                Some(Err(_)) => return Err(f.error(format!("{n} is larger than 4294967295"))),
                None => {}
            }
        }
        Err(f.wrong_type("a whole number"))
    }

    /// A number field, or `default`.
    pub fn number(&mut self, name: &str, default: f64) -> Result<f64, ConfigError> {
        match self.take(name) {
            None => Ok(default),
            Some(f) => match f.value.as_f64() {
                Some(v) => Ok(v),
                None => Err(f.wrong_type("a number")),
            },
        }
    }

    /// An array of strings, or `default`.
    pub fn strings(
        &mut self,
        name: &str,
        default: Vec<String>,
    ) -> Result<Vec<String>, ConfigError> {
        match self.take(name) {
            None => Ok(default),
            Some(f) => f.items()?.into_iter().map(Field::string).collect(),
        }
    }

    /// Refuses any field this object does not know. Called once every
    /// known field has been taken.
    pub fn finish(self) -> Result<(), ConfigError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(name) => {
                // A field named "" would leave the log line nameless.
                let shown = if name.is_empty() { "\"\"" } else { name };
                Err(ConfigError {
                    field: self.child(shown),
                    reason: "unknown field".into(),
                })
            }
        }
    }

    fn child(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }
}

impl Field {
    /// The value as an object.
    pub fn object(self) -> Result<Object, ConfigError> {
        match self.value {
            Value::Object(map) => Ok(Object {
                path: self.path,
                map,
            }),
            _ => Err(self.wrong_type("an object")),
        }
    }

    /// The value as a string.
    pub fn string(self) -> Result<String, ConfigError> {
        match self.value {
            Value::String(s) => Ok(s),
            _ => Err(self.wrong_type("a string")),
        }
    }

    /// The value as an array, each item named by its index.
    pub fn items(self) -> Result<Vec<Field>, ConfigError> {
        match self.value {
            Value::Array(items) => Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, value)| Field {
                    path: format!("{}[{i}]", self.path),
                    value,
                })
                .collect()),
            _ => Err(self.wrong_type("an array")),
        }
    }

    /// The value as one of `names`, case as written.
    pub fn choice<T: Copy>(self, names: &[(&str, T)]) -> Result<T, ConfigError> {
        if let Value::String(s) = &self.value {
            if let Some((_, v)) = names.iter().find(|(n, _)| n == s) {
                return Ok(*v);
            }
            let expected: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
            return Err(self.error(format!("{s:?} is not one of {}", expected.join(", "))));
        }
        Err(self.wrong_type("a string"))
    }

    /// An error about this field.
    pub fn error(&self, reason: String) -> ConfigError {
        ConfigError {
            field: self.path.clone(),
            reason,
        }
    }

    fn wrong_type(&self, expected: &str) -> ConfigError {
        self.error(format!(
            "invalid type: expected {expected}, found {}",
            kind(&self.value)
        ))
    }
}

/// What a JSON value is, for error messages; never the value itself.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_u64() => "a number",
        Value::Number(n) if n.is_i64() => "a negative number",
        Value::Number(_) => "a fractional number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
