//! Rewrites a sealed batch's client column for a collector that predates
//! inline addresses (revision 3). The batch is walked field by field with
//! protobuf's wire primitives and copied, except `schema_revision`, the
//! `client` column and `client_inline`; decoding it whole would put the
//! full message decoder into the filter for this rare path.

use std::net::IpAddr;

use prost::encoding::{
    DecodeContext, WireType, decode_key, decode_varint, encode_key, encode_varint, skip_field,
};

use crate::{AI_REVISION, BASE_REVISION};

/// `Batch.schema_revision`, `Batch.records`, `Records.client`,
/// `Records.ai`, `Records.client_inline`.
const REVISION: u32 = 1;
const RECORDS: u32 = 6;
const CLIENT: u32 = 11;
const AI: u32 = 16;
const CLIENT_INLINE: u32 = 17;

/// One field of a message: its number and its bytes, key included.
struct Field<'a> {
    number: u32,
    /// The body of a length-delimited field.
    body: Option<&'a [u8]>,
    raw: &'a [u8],
}

/// The fields of `message`, or `None` when it is not well formed.
fn fields(message: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    let mut rest = message;
    while !rest.is_empty() {
        let start = rest;
        let (number, wire_type) = decode_key(&mut rest).ok()?;
        let body = if wire_type == WireType::LengthDelimited {
            let mut peek = rest;
            let len = usize::try_from(decode_varint(&mut peek).ok()?).ok()?;
            Some(peek.get(..len)?)
        } else {
            None
        };
        skip_field(wire_type, number, &mut rest, DecodeContext::default()).ok()?;
        let used = start.len().checked_sub(rest.len())?;
        out.push(Field {
            number,
            body,
            raw: start.get(..used)?,
        });
    }
    Some(out)
}

/// The batch before its dictionary (`prefix`) with every inline address
/// replaced by the string id `intern` gives its text, and the revision the
/// result needs. `None` when the batch is not one the builder wrote, or
/// `intern` fails.
pub(super) fn without_inline(
    prefix: &[u8],
    mut intern: impl FnMut(&str) -> Option<u32>,
) -> Option<(Vec<u8>, u32)> {
    let batch = fields(prefix)?;
    let records = batch.iter().find(|f| f.number == RECORDS)?.body?;
    let records = fields(records)?;
    let mut inline = records.iter().find(|f| f.number == CLIENT_INLINE)?.body?;
    let mut column = records.iter().find(|f| f.number == CLIENT)?.body?;
    let mut client = Vec::with_capacity(column.len());
    let mut text = crate::address::AddressText::default();
    while !column.is_empty() {
        let value = decode_varint(&mut column).ok()?;
        let id = match value {
            0 => 0,
            1 | 2 => {
                let ip = if value == 1 {
                    let (bytes, tail) = inline.split_first_chunk::<4>()?;
                    inline = tail;
                    IpAddr::from(*bytes)
                } else {
                    let (bytes, tail) = inline.split_first_chunk::<16>()?;
                    inline = tail;
                    IpAddr::from(*bytes)
                };
                u64::from(intern(text.show(ip))?)
            }
            id => id.checked_sub(2)?,
        };
        encode_varint(id, &mut client);
    }
    let revision = if records.iter().any(|f| f.number == AI) {
        AI_REVISION
    } else {
        BASE_REVISION
    };
    let mut body = Vec::new();
    for f in &records {
        match f.number {
            CLIENT => {
                encode_key(CLIENT, WireType::LengthDelimited, &mut body);
                encode_varint(client.len() as u64, &mut body);
                body.extend_from_slice(&client);
            }
            CLIENT_INLINE => {}
            _ => body.extend_from_slice(f.raw),
        }
    }
    let mut out = Vec::with_capacity(prefix.len());
    for f in &batch {
        match f.number {
            REVISION => {
                encode_key(REVISION, WireType::Varint, &mut out);
                encode_varint(u64::from(revision), &mut out);
            }
            RECORDS => {
                encode_key(RECORDS, WireType::LengthDelimited, &mut out);
                encode_varint(body.len() as u64, &mut out);
                out.extend_from_slice(&body);
            }
            _ => out.extend_from_slice(f.raw),
        }
    }
    Some((out, revision))
}
