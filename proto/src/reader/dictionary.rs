//! [`Dictionary`]: the collector's copy of one producer's session
//! dictionary for one generation, and the rules for extending it.

use crate::coding::format_uuid;
use crate::error::DecodeError;
use crate::limits::Limits;
use crate::reader::DecodedBatch;
use crate::v1;
use crate::{TableKind, TableLens};

/// The reader's copy of one producer's dictionary for one generation.
///
/// Index 0 of every table is the implicit empty entry, so a validated id
/// indexes directly. The collector keeps one per (instance id, generation),
/// persists what [`Dictionary::apply`] adds, and rebuilds it at start by
/// applying the persisted definitions in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Dictionary {
    pub(crate) generation: u32,
    pub(crate) strings: Vec<Box<str>>,
    endpoints: Vec<v1::Endpoint>,
    identities: Vec<v1::Identity>,
    agents: Vec<v1::Agent>,
    outcomes: Vec<v1::Outcome>,
}

/// A point to roll a [`Dictionary`] back to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DictionaryMark(TableLens);

impl Dictionary {
    /// An empty dictionary for `generation`.
    pub fn new(generation: u32) -> Self {
        Dictionary {
            generation,
            strings: vec!["".into()],
            endpoints: vec![v1::Endpoint::default()],
            identities: vec![v1::Identity::default()],
            agents: vec![v1::Agent::default()],
            outcomes: vec![v1::Outcome::default()],
        }
    }

    /// The generation this dictionary belongs to.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Entries per table, not counting id 0.
    pub fn lens(&self) -> TableLens {
        let n = |len: usize| u32::try_from(len.saturating_sub(1)).unwrap_or(u32::MAX);
        [
            n(self.strings.len()),
            n(self.endpoints.len()),
            n(self.identities.len()),
            n(self.agents.len()),
            n(self.outcomes.len()),
        ]
    }

    /// The current size, to roll back to if a later step fails.
    pub fn mark(&self) -> DictionaryMark {
        DictionaryMark(self.lens())
    }

    /// Drops everything added since `mark`.
    pub fn rollback(&mut self, mark: DictionaryMark) {
        let [s, e, i, a, o] = mark.0.map(|n| (n as usize).saturating_add(1));
        self.strings.truncate(s);
        self.endpoints.truncate(e);
        self.identities.truncate(i);
        self.agents.truncate(a);
        self.outcomes.truncate(o);
    }

    /// The definitions added since `mark`, as one message to persist.
    pub fn definitions_since(&self, mark: DictionaryMark) -> v1::Dictionary {
        let [s, e, i, a, o] = mark.0;
        let tail = |n: u32| (n as usize).saturating_add(1);
        let from = |n: u32, len: usize| {
            if tail(n) < len {
                n.saturating_add(1)
            } else {
                0
            }
        };
        v1::Dictionary {
            generation: self.generation,
            strings_from: from(s, self.strings.len()),
            strings: self
                .strings
                .get(tail(s)..)
                .unwrap_or(&[])
                .iter()
                .map(|t| v1::Symbol {
                    value: Some(v1::symbol::Value::Text(t.to_string())),
                })
                .collect(),
            endpoints_from: from(e, self.endpoints.len()),
            endpoints: self.endpoints.get(tail(e)..).unwrap_or(&[]).to_vec(),
            identities_from: from(i, self.identities.len()),
            identities: self.identities.get(tail(i)..).unwrap_or(&[]).to_vec(),
            agents_from: from(a, self.agents.len()),
            agents: self.agents.get(tail(a)..).unwrap_or(&[]).to_vec(),
            outcomes_from: from(o, self.outcomes.len()),
            outcomes: self.outcomes.get(tail(o)..).unwrap_or(&[]).to_vec(),
        }
    }

    /// Adds a batch's definitions. They must continue this dictionary: the
    /// first id a table defines may not lie past its end, and ids it already
    /// holds must be redefined with the same value. On error nothing changes.
    pub fn apply(&mut self, batch: &DecodedBatch, limits: &Limits) -> Result<(), DecodeError> {
        if batch.generation != self.generation {
            return Err(DecodeError::GenerationMismatch {
                batch: batch.generation,
                reader: self.generation,
            });
        }
        self.apply_definitions(batch.definitions(), limits)
    }

    /// Adds definitions, e.g. persisted ones when rebuilding at start. The
    /// same rules as [`Dictionary::apply`]; the generation is not checked.
    pub fn apply_definitions(
        &mut self,
        d: &v1::Dictionary,
        limits: &Limits,
    ) -> Result<(), DecodeError> {
        let mark = self.mark();
        let result = self.apply_inner(d, limits);
        if result.is_err() {
            self.rollback(mark);
        }
        result
    }

    fn apply_inner(&mut self, d: &v1::Dictionary, limits: &Limits) -> Result<(), DecodeError> {
        let max = limits.max_dictionary_entries;
        let strings: Vec<Box<str>> = d.strings.iter().map(render_symbol).collect();
        extend(
            &mut self.strings,
            TableKind::Strings,
            d.strings_from,
            &strings,
            max,
            |_| Ok(()),
        )?;
        let n = self.strings.len();
        let refs = |field: String, ids: &[u32]| check_string_refs(&field, ids, n);
        extend(
            &mut self.endpoints,
            TableKind::Endpoints,
            d.endpoints_from,
            &d.endpoints,
            max,
            |(i, e)| {
                let ids = [
                    e.route_id,
                    e.route_name,
                    e.service_id,
                    e.service_name,
                    e.workspace,
                    e.method_text,
                    e.host,
                    e.path,
                ];
                refs(format!("dictionary.endpoints[{i}]"), &ids)
            },
        )?;
        extend(
            &mut self.identities,
            TableKind::Identities,
            d.identities_from,
            &d.identities,
            max,
            |(i, e)| {
                let ids = [
                    e.consumer_id,
                    e.consumer_username,
                    e.consumer_custom_id,
                    e.credential,
                    e.subject,
                    e.issuer,
                    e.client_id,
                ];
                refs(format!("dictionary.identities[{i}]"), &ids)?;
                refs(
                    format!("dictionary.identities[{i}].consumer_groups"),
                    &e.consumer_groups,
                )
            },
        )?;
        extend(
            &mut self.agents,
            TableKind::Agents,
            d.agents_from,
            &d.agents,
            max,
            |(i, e)| refs(format!("dictionary.agents[{i}]"), &[e.name]),
        )?;
        extend(
            &mut self.outcomes,
            TableKind::Outcomes,
            d.outcomes_from,
            &d.outcomes,
            max,
            |_| Ok(()),
        )
    }

    /// A string by id; `None` for id 0 or an unknown id.
    pub fn string(&self, id: u32) -> Option<&str> {
        if id == 0 {
            return None;
        }
        self.strings.get(id as usize).map(|s| &**s)
    }

    pub(crate) fn endpoint(&self, id: u32) -> &v1::Endpoint {
        self.endpoints.get(id as usize).unwrap_or(&DEFAULT_ENDPOINT)
    }

    pub(crate) fn identity(&self, id: u32) -> &v1::Identity {
        self.identities
            .get(id as usize)
            .unwrap_or(&DEFAULT_IDENTITY)
    }

    pub(crate) fn agent(&self, id: u32) -> &v1::Agent {
        self.agents.get(id as usize).unwrap_or(&DEFAULT_AGENT)
    }

    pub(crate) fn outcome(&self, id: u32) -> &v1::Outcome {
        self.outcomes.get(id as usize).unwrap_or(&DEFAULT_OUTCOME)
    }
}

static DEFAULT_ENDPOINT: v1::Endpoint = v1::Endpoint {
    route_id: 0,
    route_name: 0,
    service_id: 0,
    service_name: 0,
    workspace: 0,
    method: 0,
    method_text: 0,
    host: 0,
    path: 0,
};
static DEFAULT_IDENTITY: v1::Identity = v1::Identity {
    auth_method: 0,
    trust: 0,
    consumer_id: 0,
    consumer_username: 0,
    consumer_custom_id: 0,
    credential: 0,
    consumer_groups: Vec::new(),
    subject: 0,
    issuer: 0,
    client_id: 0,
    anonymous: false,
};
static DEFAULT_AGENT: v1::Agent = v1::Agent {
    category: 0,
    name: 0,
};
static DEFAULT_OUTCOME: v1::Outcome = v1::Outcome {
    status: 0,
    source: 0,
};

fn render_symbol(s: &v1::Symbol) -> Box<str> {
    match &s.value {
        Some(v1::symbol::Value::Text(t)) => t.as_str().into(),
        Some(v1::symbol::Value::Uuid(u)) => match <[u8; 16]>::try_from(u.as_slice()) {
            Ok(bytes) => format_uuid(bytes).into(),
            Err(_) => "".into(),
        },
        None => "".into(),
    }
}

fn check_string_refs(field: &str, ids: &[u32], strings_len: usize) -> Result<(), DecodeError> {
    match ids.iter().find(|&&id| id as usize >= strings_len) {
        Some(&id) => Err(DecodeError::DanglingReference {
            field: field.to_owned(),
            table: TableKind::Strings,
            id: u64::from(id),
            len: u32::try_from(strings_len.saturating_sub(1)).unwrap_or(u32::MAX),
        }),
        None => Ok(()),
    }
}

/// Extends `table` (whose index 0 is the implicit entry) with `defs`, whose
/// first id is `from`, after `check`ing each new entry.
fn extend<T: Clone + PartialEq>(
    table: &mut Vec<T>,
    kind: TableKind,
    from: u32,
    defs: &[T],
    max: u32,
    mut check: impl FnMut((usize, &T)) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    if defs.is_empty() {
        return Ok(());
    }
    let known = table.len().saturating_sub(1);
    let from_index = from as usize;
    if from_index == 0 || from_index > known.saturating_add(1) {
        return Err(DecodeError::UnknownDefinitions {
            table: kind,
            from,
            known: u32::try_from(known).unwrap_or(u32::MAX),
        });
    }
    let end = from_index.saturating_add(defs.len()).saturating_sub(1);
    if end > max as usize {
        return Err(DecodeError::DictionaryFull {
            table: kind,
            len: end as u64,
            max,
        });
    }
    for (offset, def) in defs.iter().enumerate() {
        let id = from_index.saturating_add(offset);
        match table.get(id) {
            Some(existing) if existing == def => {}
            Some(_) => {
                return Err(DecodeError::ConflictingDefinition {
                    table: kind,
                    id: u32::try_from(id).unwrap_or(u32::MAX),
                });
            }
            None => {
                check((offset, def))?;
                table.push(def.clone());
            }
        }
    }
    Ok(())
}
