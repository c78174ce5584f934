//! Every bound of schema v1. The builder keeps within them, so what it
//! writes always reads back; the reader refuses anything outside them, so a
//! hostile batch costs bounded memory and time.

/// Most records in one batch.
pub const MAX_RECORDS: u32 = 100_000;
/// Longest interned string, in bytes. The builder truncates longer values at
/// a character boundary.
pub const MAX_STRING_BYTES: usize = 2048;
/// Longest text request or trace id, in bytes. The builder leaves longer ids
/// out.
pub const MAX_ID_BYTES: usize = 128;
/// Most consumer groups per identity. The builder keeps the first ones.
pub const MAX_GROUPS: usize = 32;
/// Longest node id, in bytes.
pub const MAX_NODE_ID_BYTES: usize = 128;
/// Longest filter or Kong version, in bytes.
pub const MAX_VERSION_BYTES: usize = 64;
/// How far a record's end may lie from the batch's base time.
pub const MAX_RECORD_SPREAD_MS: i64 = 86_400_000;
/// Latest time the schema accepts at all: 2200-01-01T00:00:00Z.
pub const MAX_TIME_MS: i64 = 7_258_118_400_000;
/// Largest sample weight (a sampling rate of one in a million).
pub const MAX_SAMPLE_WEIGHT: f32 = 1_000_000.0;
/// Most sequence numbers in one batch's `drops.abandoned`. The builder
/// keeps the first ones.
pub const MAX_ABANDONED: usize = 1000;
/// Largest AI token count: far above any model's context.
pub const MAX_AI_TOKENS: u64 = 1 << 40;
/// Largest AI cost, in millionths: a trillion units.
pub const MAX_AI_COST_MICROS: u64 = 1_000_000_000_000_000_000;
/// Longest AI latency, ms: one day.
pub const MAX_AI_LATENCY_MS: u64 = 86_400_000;
/// Most guardrail blocks, MCP tool calls, LLM calls or unreadable values
/// one record counts.
pub const MAX_AI_COUNT: u32 = 1_000_000;

/// Reader limits that depend on the deployment; everything else is fixed
/// above.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Largest batch body, in bytes.
    pub max_batch_bytes: usize,
    /// Most dictionary entries one batch may define, over all tables.
    pub max_definitions: usize,
    /// Most entries a producer's dictionary may hold, per table.
    pub max_dictionary_entries: u32,
    /// The reader's clock, Unix ms, or `None` to skip the freshness check.
    pub now_ms: Option<i64>,
    /// How old a batch's records may be, relative to `now_ms`.
    pub max_age_ms: i64,
    /// How far in the future a batch may be, relative to `now_ms`, allowing
    /// for clock skew between Kong and the collector.
    pub max_future_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_batch_bytes: 8 * 1024 * 1024,
            max_definitions: 1_000_000,
            max_dictionary_entries: 4_000_000,
            now_ms: None,
            max_age_ms: 7 * 86_400_000,
            max_future_ms: 3_600_000,
        }
    }
}
