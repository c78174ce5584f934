//! Validating and resolving a batch's AI columns (`Records.ai`): which
//! records carry AI figures, and their figures with tokens, cost and
//! latencies decoded and bounded.

use crate::error::DecodeError;
use crate::limits::{MAX_AI_COST_MICROS, MAX_AI_COUNT, MAX_AI_LATENCY_MS, MAX_AI_TOKENS};
use crate::v1;

/// One record's AI figures, names still string ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct AiFigures {
    pub provider: u32,
    pub request_model: u32,
    pub response_model: u32,
    pub request_mode: u32,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub cost_micros: u64,
    pub llm_latency_ms: Option<u64>,
    pub time_to_first_token_ms: Option<u64>,
    pub cache_fetch_latency_ms: Option<u64>,
    pub cache_status: u32,
    pub embeddings_model: u32,
    pub guardrail_blocks: u32,
    pub guardrail: u32,
    pub mcp_tool_calls: u32,
    pub mcp_tool: u32,
    pub calls: u32,
    pub unreadable: u32,
}

impl AiFigures {
    /// The string ids it refers to.
    pub fn strings(&self) -> [u32; 8] {
        [
            self.provider,
            self.request_model,
            self.response_model,
            self.request_mode,
            self.cache_status,
            self.embeddings_model,
            self.guardrail,
            self.mcp_tool,
        ]
    }
}

/// The AI figures of a batch: `(record index, figures)`, by index.
pub(super) type AiRows = Vec<(u32, AiFigures)>;

/// Checks `Records.ai` against a batch of `count` records.
pub(super) fn check(ai: v1::AiColumns, count: u32) -> Result<AiRows, DecodeError> {
    let m = ai.record_delta.len();
    let field = |column: &str, i: usize| format!("records.ai.{column}[{i}]");
    let u32s: [(&str, &Vec<u32>); 13] = [
        ("provider", &ai.provider),
        ("request_model", &ai.request_model),
        ("response_model", &ai.response_model),
        ("request_mode", &ai.request_mode),
        ("cache_status", &ai.cache_status),
        ("embeddings_model", &ai.embeddings_model),
        ("guardrail_blocks", &ai.guardrail_blocks),
        ("guardrail", &ai.guardrail),
        ("mcp_tool_calls", &ai.mcp_tool_calls),
        ("mcp_tool", &ai.mcp_tool),
        ("calls", &ai.calls),
        ("unreadable", &ai.unreadable),
        ("record_delta", &ai.record_delta),
    ];
    let u64s: [(&str, &Vec<u64>); 6] = [
        ("prompt_tokens", &ai.prompt_tokens),
        ("completion_tokens", &ai.completion_tokens),
        ("cost_micros", &ai.cost_micros),
        ("llm_latency_ms", &ai.llm_latency_ms),
        ("time_to_first_token_ms", &ai.time_to_first_token_ms),
        ("cache_fetch_latency_ms", &ai.cache_fetch_latency_ms),
    ];
    let lens = u32s
        .iter()
        .map(|(c, v)| (*c, v.len()))
        .chain(u64s.iter().map(|(c, v)| (*c, v.len())))
        .chain([("total_tokens_extra", ai.total_tokens_extra.len())]);
    for (column, len) in lens {
        if len != 0 && len != m {
            return Err(DecodeError::invalid(
                format!("records.ai.{column}"),
                format!("{len} values for {m} records with AI figures"),
            ));
        }
    }
    let at32 = |v: &[u32], i: usize| v.get(i).copied().unwrap_or(0);
    let at64 = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
    let count_at = |column: &str, v: &[u32], i: usize| {
        let n = at32(v, i);
        if n > MAX_AI_COUNT {
            return Err(DecodeError::invalid(field(column, i), "over a million"));
        }
        Ok(n)
    };
    let tokens_at = |column: &str, v: &[u64], i: usize| {
        let n = at64(v, i);
        if n > MAX_AI_TOKENS {
            return Err(DecodeError::invalid(field(column, i), "over 2^40 tokens"));
        }
        Ok(n)
    };
    let ms_at = |column: &str, v: &[u64], i: usize| match at64(v, i).checked_sub(1) {
        None => Ok(None),
        Some(ms) if ms <= MAX_AI_LATENCY_MS => Ok(Some(ms)),
        Some(_) => Err(DecodeError::invalid(field(column, i), "longer than a day")),
    };

    let mut rows = Vec::with_capacity(m);
    let mut index: Option<u32> = None;
    for (i, &delta) in ai.record_delta.iter().enumerate() {
        let next = match index {
            None => Some(delta),
            Some(_) if delta == 0 => None,
            Some(prev) => prev.checked_add(delta),
        };
        let Some(next) = next.filter(|&x| x < count) else {
            return Err(DecodeError::invalid(
                field("record_delta", i),
                "not a later record of the batch",
            ));
        };
        index = Some(next);
        let prompt_tokens = tokens_at("prompt_tokens", &ai.prompt_tokens, i)?;
        let completion_tokens = tokens_at("completion_tokens", &ai.completion_tokens, i)?;
        let extra = ai.total_tokens_extra.get(i).copied().unwrap_or(0);
        // Prompt and completion are at most 2^40 each.
        let total_tokens = i128::from(prompt_tokens)
            .checked_add(i128::from(completion_tokens))
            .and_then(|sum| sum.checked_add(i128::from(extra)))
            .and_then(|t| u64::try_from(t).ok())
            .filter(|&t| t <= MAX_AI_TOKENS)
            .ok_or_else(|| {
                DecodeError::invalid(
                    field("total_tokens_extra", i),
                    "total tokens outside 0 to 2^40",
                )
            })?;
        let cost_micros = at64(&ai.cost_micros, i);
        if cost_micros > MAX_AI_COST_MICROS {
            return Err(DecodeError::invalid(field("cost_micros", i), "over 1e18"));
        }
        rows.push((
            next,
            AiFigures {
                provider: at32(&ai.provider, i),
                request_model: at32(&ai.request_model, i),
                response_model: at32(&ai.response_model, i),
                request_mode: at32(&ai.request_mode, i),
                prompt_tokens,
                completion_tokens,
                total_tokens,
                cost_micros,
                llm_latency_ms: ms_at("llm_latency_ms", &ai.llm_latency_ms, i)?,
                time_to_first_token_ms: ms_at(
                    "time_to_first_token_ms",
                    &ai.time_to_first_token_ms,
                    i,
                )?,
                cache_fetch_latency_ms: ms_at(
                    "cache_fetch_latency_ms",
                    &ai.cache_fetch_latency_ms,
                    i,
                )?,
                cache_status: at32(&ai.cache_status, i),
                embeddings_model: at32(&ai.embeddings_model, i),
                guardrail_blocks: count_at("guardrail_blocks", &ai.guardrail_blocks, i)?,
                guardrail: at32(&ai.guardrail, i),
                mcp_tool_calls: count_at("mcp_tool_calls", &ai.mcp_tool_calls, i)?,
                mcp_tool: at32(&ai.mcp_tool, i),
                calls: count_at("calls", &ai.calls, i)?,
                unreadable: count_at("unreadable", &ai.unreadable, i)?,
            },
        ));
    }
    Ok(rows)
}
