//! [`DecodeError`]: everything that can be wrong with a batch, each variant
//! naming the field or table at fault so the collector's 400 reply tells the
//! operator what to fix.

use crate::TableKind;

/// Why a batch was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The body is larger than the reader accepts.
    #[error("batch is {len} bytes, over the limit of {max}")]
    TooLarge {
        /// Body size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not valid protobuf for schema v1: truncated, wrong wire type, a length
    /// past the end, invalid UTF-8 in a string field.
    #[error("malformed protobuf: {0}")]
    Protobuf(String),
    /// Written by a newer producer than this reader understands.
    #[error("schema revision {got} is newer than this reader's {supported}; upgrade the collector")]
    UnsupportedRevision {
        /// The batch's revision.
        got: u32,
        /// The newest this reader knows.
        supported: u32,
    },
    /// A required field is missing.
    #[error("missing required field {0}")]
    Missing(&'static str),
    /// A field has a value outside its domain.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field, e.g. `records.latency_total[3]`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// More records than a batch may hold.
    #[error("{count} records, over the limit of {max}")]
    TooManyRecords {
        /// Declared count.
        count: u32,
        /// The limit.
        max: u32,
    },
    /// A column does not have one value per record.
    #[error("column records.{column} has {len} values for {count} records")]
    ColumnLength {
        /// The column.
        column: &'static str,
        /// Its length.
        len: usize,
        /// The record count.
        count: u32,
    },
    /// `drops.abandoned` lists more sequence numbers than a batch may carry.
    #[error("drops.abandoned lists {count} sequence numbers, over the limit of {max}")]
    TooManyAbandoned {
        /// Sequence numbers listed.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A string is longer than the schema allows.
    #[error("{field} is {len} bytes, over the limit of {max}")]
    TooLong {
        /// Where the string is.
        field: String,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The batch defines more entries than allowed.
    #[error("batch defines {count} dictionary entries, over the limit of {max}")]
    TooManyDefinitions {
        /// Entries defined.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The producer's dictionary would exceed its size limit.
    #[error("dictionary table {} would hold {len} entries, over the limit of {max}", .table.name())]
    DictionaryFull {
        /// The table.
        table: TableKind,
        /// Entries it would hold.
        len: u64,
        /// The limit.
        max: u32,
    },
    /// The batch's definitions start past what the reader knows: entries in
    /// between were never received. The producer must resend them.
    #[error("dictionary table {} defines from id {from}, but only ids up to {known} are known for this producer; resend the dictionary", .table.name())]
    UnknownDefinitions {
        /// The table.
        table: TableKind,
        /// The batch's first defined id.
        from: u32,
        /// The last id the reader knows.
        known: u32,
    },
    /// The batch redefines an id with a different value.
    #[error("dictionary table {} redefines id {id} with a different value", .table.name())]
    ConflictingDefinition {
        /// The table.
        table: TableKind,
        /// The id.
        id: u32,
    },
    /// A reference to an id that is not defined.
    #[error("{field} refers to {} id {id}, but only {len} are defined", .table.name())]
    DanglingReference {
        /// Where the reference is.
        field: String,
        /// The table it points into.
        table: TableKind,
        /// The id.
        id: u64,
        /// Entries defined.
        len: u32,
    },
    /// The batch's dictionary generation is not the one the reader was given.
    #[error("batch uses dictionary generation {batch}, reader was given generation {reader}")]
    GenerationMismatch {
        /// The batch's generation.
        batch: u32,
        /// The dictionary's.
        reader: u32,
    },
    /// A time is outside the accepted window.
    #[error("{field} is {value_ms} ms, outside the accepted window")]
    TimeOutOfRange {
        /// The field.
        field: String,
        /// Its value, Unix ms.
        value_ms: i64,
    },
}

impl DecodeError {
    /// A short, stable code for metrics labels and JSON error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::Protobuf(_) => "malformed",
            DecodeError::UnsupportedRevision { .. } => crate::wire::UNSUPPORTED_REVISION,
            DecodeError::Missing(_) => "missing_field",
            DecodeError::Invalid { .. } => "invalid_value",
            DecodeError::TooManyRecords { .. } => "too_many_records",
            DecodeError::ColumnLength { .. } => "column_length",
            DecodeError::TooManyAbandoned { .. } => "too_many_abandoned",
            DecodeError::TooLong { .. } => "too_long",
            DecodeError::TooManyDefinitions { .. } => "too_many_definitions",
            DecodeError::DictionaryFull { .. } => "dictionary_full",
            DecodeError::UnknownDefinitions { .. } => crate::wire::UNKNOWN_DICTIONARY,
            DecodeError::ConflictingDefinition { .. } => "conflicting_definition",
            DecodeError::DanglingReference { .. } => "dangling_reference",
            DecodeError::GenerationMismatch { .. } => "generation_mismatch",
            DecodeError::TimeOutOfRange { .. } => "time_out_of_range",
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        DecodeError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<prost::DecodeError> for DecodeError {
    fn from(e: prost::DecodeError) -> Self {
        DecodeError::Protobuf(e.to_string())
    }
}
