//! The open batch's AI columns (`Records.ai`): one value per record that
//! carries AI figures, kept as packed varints like the other columns, and
//! written only when some record had them.

use prost::encoding::{WireType, encode_key, encode_varint};

use super::{Size, put_varint};
use crate::coding::zigzag;
use crate::limits::{MAX_AI_COST_MICROS, MAX_AI_COUNT, MAX_AI_LATENCY_MS, MAX_AI_TOKENS};
use crate::record::AiRef;

/// Columns after `record_delta`, in field order (2 to 20).
const COLUMNS: usize = 19;

/// The string ids of one record's names, interned by the caller.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct AiNames {
    pub provider: u32,
    pub request_model: u32,
    pub response_model: u32,
    pub request_mode: u32,
    pub cache_status: u32,
    pub embeddings_model: u32,
    pub guardrail: u32,
    pub mcp_tool: u32,
}

#[derive(Default)]
pub(super) struct AiColumns {
    /// Records with AI figures in the open batch.
    count: u32,
    /// Index of the last such record.
    last_index: u32,
    record_delta: Vec<u8>,
    /// Fields 2 to 20.
    columns: [Vec<u8>; COLUMNS],
    /// Whether any value of the column is not 0; all-zero columns are left
    /// out of the batch.
    used: [bool; COLUMNS],
}

impl AiColumns {
    pub(super) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends record `index`'s figures; `index` grows from call to call.
    pub(super) fn push(&mut self, index: u32, ai: &AiRef<'_>, names: &AiNames) {
        let delta = if self.count == 0 {
            index
        } else {
            index.saturating_sub(self.last_index)
        };
        put_varint(u64::from(delta), &mut self.record_delta);
        self.last_index = index;
        self.count = self.count.saturating_add(1);

        let prompt = ai.prompt_tokens.min(MAX_AI_TOKENS);
        let completion = ai.completion_tokens.min(MAX_AI_TOKENS);
        let total = ai.total_tokens.min(MAX_AI_TOKENS);
        // Each is at most 2^40, so neither the sum nor the difference can
        // leave an i64; saturating all the same.
        let extra =
            (total as i64).saturating_sub((prompt as i64).saturating_add(completion as i64));
        let ms = |v: Option<u64>| v.map_or(0, |ms| ms.min(MAX_AI_LATENCY_MS).saturating_add(1));
        let values: [u64; COLUMNS] = [
            u64::from(names.provider),
            u64::from(names.request_model),
            u64::from(names.response_model),
            u64::from(names.request_mode),
            prompt,
            completion,
            zigzag(extra),
            ai.cost_micros.min(MAX_AI_COST_MICROS),
            ms(ai.llm_latency_ms),
            ms(ai.time_to_first_token_ms),
            ms(ai.cache_fetch_latency_ms),
            u64::from(names.cache_status),
            u64::from(names.embeddings_model),
            u64::from(ai.guardrail_blocks.min(MAX_AI_COUNT)),
            u64::from(names.guardrail),
            u64::from(ai.mcp_tool_calls.min(MAX_AI_COUNT)),
            u64::from(names.mcp_tool),
            u64::from(ai.calls.min(MAX_AI_COUNT)),
            u64::from(ai.unreadable.min(MAX_AI_COUNT)),
        ];
        for ((column, used), value) in self.columns.iter_mut().zip(&mut self.used).zip(values) {
            put_varint(value, column);
            *used |= value != 0;
        }
    }

    /// The body's column bytes without their keys and prefixes: only the
    /// columns the body carries, so that one starting to count (its earlier
    /// zeros with it) shows here.
    pub(super) fn payload_len(&self) -> usize {
        if self.count == 0 {
            return 0;
        }
        self.columns
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| **used)
            .fold(self.record_delta.len(), |n, (column, _)| {
                n.saturating_add(column.len())
            })
    }

    /// Bytes of the `AiColumns` message body.
    pub(super) fn body_len(&self) -> usize {
        let mut len = Size::default();
        len.delimited(1, self.record_delta.len());
        for (field, (column, used)) in (2u32..).zip(self.columns.iter().zip(&self.used)) {
            if *used {
                len.delimited(field, column.len());
            }
        }
        len.0
    }

    /// Writes the message body.
    pub(super) fn encode_body(&self, buf: &mut Vec<u8>) {
        put_packed(1, &self.record_delta, buf);
        for (field, (column, used)) in (2u32..).zip(self.columns.iter().zip(&self.used)) {
            if *used {
                put_packed(field, column, buf);
            }
        }
    }

    pub(super) fn clear(&mut self) {
        self.count = 0;
        self.last_index = 0;
        self.record_delta.clear();
        for column in &mut self.columns {
            column.clear();
        }
        self.used = [false; COLUMNS];
    }
}

fn put_packed(field: u32, column: &[u8], buf: &mut Vec<u8>) {
    encode_key(field, WireType::LengthDelimited, buf);
    encode_varint(column.len() as u64, buf);
    buf.extend_from_slice(column);
}
