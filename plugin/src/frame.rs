//! Framing of the plugin socket: a 4-byte little-endian length, then that
//! many bytes (Kong's `pb_rpc.lua` packs the length with `"I"`). Owns the
//! frame size bound and the errors a bad frame earns; knows nothing of
//! what the bytes mean.

use std::fmt;

use std::io::{Read, Write};

/// Largest frame accepted. Kong's biggest message to the plugin is the
/// serialized log entry, which carries the request and response headers;
/// nginx caps those well below this.
pub const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug)]
pub enum FrameError {
    /// The peer closed the connection between frames: the normal end.
    Closed,
    /// The peer closed the connection inside a frame.
    Truncated {
        /// Bytes the frame announced.
        expected: usize,
    },
    /// The length prefix is above [`MAX_FRAME_BYTES`].
    TooLarge {
        /// The announced length.
        len: u64,
    },
    /// The socket failed.
    Io(std::io::Error),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Closed => f.write_str("connection closed"),
            FrameError::Truncated { expected } => {
                write!(f, "connection closed inside a frame of {expected} bytes")
            }
            FrameError::TooLarge { len } => write!(
                f,
                "frame of {len} bytes is over the limit of {MAX_FRAME_BYTES} bytes"
            ),
            FrameError::Io(e) => write!(f, "socket error: {e}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// The length prefix of a frame of `len` bytes.
pub fn prefix(len: usize) -> Result<[u8; 4], FrameError> {
    u32::try_from(len)
        .ok()
        .filter(|_| len <= MAX_FRAME_BYTES)
        .map(u32::to_le_bytes)
        .ok_or(FrameError::TooLarge {
            len: u64::try_from(len).unwrap_or(u64::MAX),
        })
}

/// Splits the first frame off `buf`: its body and the bytes it used, or
/// `None` when `buf` does not hold a whole frame yet.
pub fn split(buf: &[u8]) -> Result<Option<(&[u8], usize)>, FrameError> {
    let Some(head) = buf.get(..4) else {
        return Ok(None);
    };
    let mut raw = [0u8; 4];
    raw.copy_from_slice(head);
    let len = body_len(raw)?;
    let end = len.saturating_add(4);
    Ok(buf.get(4..end).map(|body| (body, end)))
}

/// The body length a prefix announces, refused past [`MAX_FRAME_BYTES`].
fn body_len(prefix: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(prefix);
    usize::try_from(len)
        .ok()
        .filter(|n| *n <= MAX_FRAME_BYTES)
        .ok_or(FrameError::TooLarge {
            len: u64::from(len),
        })
}

/// Reads one frame. A clean end of stream before the prefix is
/// [`FrameError::Closed`].
pub fn read<R: Read>(r: &mut R) -> Result<Vec<u8>, FrameError> {
    let mut raw = [0u8; 4];
    let mut got = 0;
    while got < raw.len() {
        let Some(rest) = raw.get_mut(got..) else {
            break;
        };
        match r.read(rest) {
            Ok(0) if got == 0 => return Err(FrameError::Closed),
            Ok(0) => return Err(FrameError::Truncated { expected: 4 }),
            Ok(n) => got = got.saturating_add(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    let len = body_len(raw)?;
    let mut body = vec![0u8; len];
    match r.read_exact(&mut body) {
        Ok(()) => Ok(body),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(FrameError::Truncated { expected: len })
        }
        Err(e) => Err(FrameError::Io(e)),
    }
}

/// Writes one frame, prefix and body in one write.
pub fn write<W: Write>(w: &mut W, body: &[u8]) -> Result<(), FrameError> {
    write_all(w, &[body])
}

/// Writes several frames in one write: a PDK call's method and argument,
/// or the end of the PDK loop and the `RpcReturn`. Each write is a
/// syscall and may wake Kong's side once.
pub fn write_all<W: Write>(w: &mut W, bodies: &[&[u8]]) -> Result<(), FrameError> {
    let size = bodies
        .iter()
        .fold(0usize, |n, b| n.saturating_add(b.len()).saturating_add(4));
    let mut out = Vec::with_capacity(size);
    for body in bodies {
        out.extend_from_slice(&prefix(body.len())?);
        out.extend_from_slice(body);
    }
    w.write_all(&out).map_err(FrameError::Io)?;
    w.flush().map_err(FrameError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_reads_whole_frames_only() {
        let mut buf = prefix(3).unwrap().to_vec();
        buf.extend_from_slice(b"abcX");
        assert_eq!(split(&buf).unwrap(), Some((&b"abc"[..], 7)));
        assert_eq!(split(&buf[..6]).unwrap(), None);
        assert_eq!(split(&buf[..2]).unwrap(), None);
        assert_eq!(split(&[0, 0, 0, 0]).unwrap(), Some((&b""[..], 4)));
    }

    #[test]
    fn oversized_prefixes_are_refused() {
        assert!(matches!(
            split(&u32::MAX.to_le_bytes()),
            Err(FrameError::TooLarge { len }) if len == u64::from(u32::MAX)
        ));
        assert!(prefix(MAX_FRAME_BYTES + 1).is_err());
    }

    #[test]
    fn read_and_write_round_trip() {
        let mut a = Vec::new();
        write(&mut a, b"hello").unwrap();
        write_all(&mut a, &[b"", b"x"]).unwrap();
        let mut b = std::io::Cursor::new(a);
        assert_eq!(read(&mut b).unwrap(), b"hello");
        assert_eq!(read(&mut b).unwrap(), b"");
        assert_eq!(read(&mut b).unwrap(), b"x");
        assert!(matches!(read(&mut b), Err(FrameError::Closed)));
    }

    #[test]
    fn truncated_frames_are_named() {
        let mut b = std::io::Cursor::new(vec![9, 0, 0, 0, 1, 2]);
        assert!(matches!(
            read(&mut b),
            Err(FrameError::Truncated { expected: 9 })
        ));
        let mut b = std::io::Cursor::new(vec![9, 0]);
        assert!(matches!(
            read(&mut b),
            Err(FrameError::Truncated { expected: 4 })
        ));
    }
}
