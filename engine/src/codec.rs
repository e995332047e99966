//! Frames: how a [`Message`] is laid out on a byte stream.
//!
//! A frame is a 4-byte big-endian length `n`, then `n` bytes: one byte of
//! protocol version, then the message in postcard encoding (see
//! `docs/wire-format.md`). [`encoded_len`] is the exact length of the frame
//! [`encode`] writes, computed without writing it; the simulator charges
//! exactly that many application bytes.

use thiserror::Error;

use crate::message::Message;

/// The protocol version this engine speaks.
pub const PROTOCOL_VERSION: u8 = 1;

/// Bytes before the body: the length prefix and the version byte.
pub const HEADER_LEN: usize = 5;

/// Default bound on a frame's length, 256 MiB: above the largest content
/// payload we expect (a 70 MB daily signature set), far below memory.
pub const DEFAULT_MAX_FRAME: usize = 256 << 20;

/// Why bytes could not be decoded into a message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// More bytes are needed to finish the frame.
    #[error("truncated frame: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes the frame needs in all.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The length prefix exceeds the configured maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    Oversized {
        /// Announced length.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
    /// The peer speaks another protocol version.
    #[error("unknown protocol version {0}, this node speaks {PROTOCOL_VERSION}")]
    UnknownVersion(u8),
    /// The body is not a valid message.
    #[error("malformed message body: {0}")]
    Malformed(String),
    /// The body decoded but left bytes unread.
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("cannot encode message: {0}")]
pub struct EncodeError(String);

/// Length of the body (version byte excluded) of `msg`.
fn body_len(msg: &Message) -> Result<usize, EncodeError> {
    postcard::serialize_with_flavor(msg, postcard::ser_flavors::Size::default())
        .map_err(|e| EncodeError(e.to_string()))
}

/// Exact length in bytes of the frame [`encode`] writes for `msg`.
///
/// Walks the message once without copying any payload, so a 70 MB content
/// blob costs the same as an empty one.
pub fn encoded_len(msg: &Message) -> usize {
    // Serialising into the Size flavour cannot fail for our types: every
    // field is a plain serde type with a known length.
    HEADER_LEN + body_len(msg).unwrap_or(0)
}

/// Encodes `msg` as one frame.
pub fn encode(msg: &Message) -> Result<Vec<u8>, EncodeError> {
    let body = postcard::to_allocvec(msg).map_err(|e| EncodeError(e.to_string()))?;
    let n = u32::try_from(body.len() + 1).map_err(|_| EncodeError("frame over 4 GiB".into()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&n.to_be_bytes());
    out.push(PROTOCOL_VERSION);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes one frame from the start of `buf`, returning the message and the
/// number of bytes consumed. `Truncated` means: read more and call again.
pub fn decode(buf: &[u8], max_frame: usize) -> Result<(Message, usize), DecodeError> {
    if buf.len() < 4 {
        return Err(DecodeError::Truncated { need: 4, have: buf.len() });
    }
    let n = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if n > max_frame {
        return Err(DecodeError::Oversized { len: n, max: max_frame });
    }
    if n == 0 {
        return Err(DecodeError::Malformed("empty frame".into()));
    }
    let total = 4 + n;
    if buf.len() < total {
        return Err(DecodeError::Truncated { need: total, have: buf.len() });
    }
    let version = buf[4];
    if version != PROTOCOL_VERSION {
        return Err(DecodeError::UnknownVersion(version));
    }
    let body = &buf[HEADER_LEN..total];
    let (msg, rest) = postcard::take_from_bytes::<Message>(body)
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError::Trailing(rest.len()));
    }
    Ok((msg, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Revision;

    /// The example in docs/wire-format.md.
    #[test]
    fn documented_example_frame() {
        let frame = encode(&Message::Check { req: 1, have: Revision(5) }).unwrap();
        assert_eq!(frame, [0, 0, 0, 4, 1, 1, 1, 5]);
        assert_eq!(encoded_len(&Message::Check { req: 1, have: Revision(5) }), 8);
    }

    #[test]
    fn two_frames_back_to_back_decode_one_at_a_time() {
        let mut buf = encode(&Message::ReportAck).unwrap();
        buf.extend(encode(&Message::Check { req: 2, have: Revision(9) }).unwrap());
        let (first, used) = decode(&buf, 1024).unwrap();
        assert_eq!(first, Message::ReportAck);
        let (second, _) = decode(&buf[used..], 1024).unwrap();
        assert_eq!(second, Message::Check { req: 2, have: Revision(9) });
    }
}
