//! Frames: how a [`Message`] is laid out on a byte stream.
//!
//! A frame is a 4-byte big-endian length `n`, then `n` bytes: one byte of
//! protocol version, then the message in postcard encoding (see
//! `docs/wire-format.md`). [`encoded_len`] is the exact length of the frame
//! [`encode`] writes, computed without writing it; the simulator charges
//! exactly that many application bytes.

use thiserror::Error;

use crate::message::{ErrorCode, Message};

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

impl DecodeError {
    /// The error code to answer a peer whose frame failed to decode with,
    /// before closing the connection: an unknown version is
    /// [`ErrorCode::UnsupportedVersion`], anything else
    /// [`ErrorCode::BadFrame`].
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::UnknownVersion(_) => ErrorCode::UnsupportedVersion,
            DecodeError::Truncated { .. }
            | DecodeError::Oversized { .. }
            | DecodeError::Malformed(_)
            | DecodeError::Trailing(_) => ErrorCode::BadFrame,
        }
    }
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The serializer refused the message. None of the engine's message
    /// types can produce this (every field has a known length and no
    /// `Serialize` impl of ours reports an error); it is kept typed so
    /// that a future type that can fail is not silently miscounted.
    #[error("cannot encode message: {0}")]
    Serialize(String),
    /// The frame would exceed the maximum length: the receiver would
    /// refuse it, so it is not written.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    Oversized {
        /// The frame's length field (version byte and body).
        len: usize,
        /// The configured maximum.
        max: usize,
    },
}

/// Length of the body (version byte excluded) of `msg`.
fn body_len(msg: &Message) -> Result<usize, EncodeError> {
    postcard::serialize_with_flavor(msg, postcard::ser_flavors::Size::default())
        .map_err(|e| EncodeError::Serialize(e.to_string()))
}

/// Exact length in bytes of the frame [`encode`] writes for `msg`.
///
/// Walks the message once without copying any payload, so a 70 MB content
/// blob costs the same as an empty one. It fails only where [`encode`]
/// would fail to serialise; it does not check the frame maximum.
pub fn encoded_len(msg: &Message) -> Result<usize, EncodeError> {
    if let Some(n) = common_body_len(msg) {
        return Ok(HEADER_LEN + n);
    }
    Ok(HEADER_LEN + body_len(msg)?)
}

/// The body length of the small messages a simulation sends millions of
/// times (a client's poll and its answer when nothing changed, a report's
/// acknowledgement, a check, a wake-up, an error), counted directly from
/// postcard's rules (`docs/wire-format.md`): a variant index, integers as
/// LEB128 varints, a string or a sequence as its varint length then its
/// items, a `bool` as one byte. `None` for every other message, which
/// postcard itself sizes. The codec's round-trip property test checks it
/// against the frames really written.
fn common_body_len(msg: &Message) -> Option<usize> {
    // Every variant index is below 128: one varint byte.
    const TAG: usize = 1;
    let str_len = |s: &crate::ids::Name| varint_len(s.as_str().len() as u64) + s.as_str().len();
    Some(match msg {
        Message::Poll { have, site, platform } => {
            TAG + varint_len(have.0) + str_len(site) + str_len(platform)
        }
        Message::PolicyUpdate { current, policies, removed, .. } if policies.is_empty() => {
            // The empty policy list is its length, one byte; `full` one.
            let removed_len: usize = removed.iter().map(str_len).sum();
            TAG + varint_len(current.0) + 1 + varint_len(removed.len() as u64) + removed_len + 1
        }
        Message::ReportAck => TAG,
        Message::Wake { revision } => TAG + varint_len(revision.0),
        Message::Check { req, have } => TAG + varint_len(u64::from(*req)) + varint_len(have.0),
        // The code is a unit variant: its index, one byte.
        Message::Error { req, .. } => TAG + varint_len(u64::from(*req)) + 1,
        _ => return None,
    })
}

/// Bytes of `v` as a LEB128 varint: seven bits a byte.
fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Encodes `msg` as one frame, refusing a frame longer than
/// [`DEFAULT_MAX_FRAME`].
pub fn encode(msg: &Message) -> Result<Vec<u8>, EncodeError> {
    encode_with_max(msg, DEFAULT_MAX_FRAME)
}

/// Encodes `msg` as one frame, refusing a frame whose length field (the
/// version byte and the body) would exceed `max_frame`: the bound the
/// receiver's [`decode`] applies, so what it would refuse is never sent.
pub fn encode_with_max(msg: &Message, max_frame: usize) -> Result<Vec<u8>, EncodeError> {
    // Check the length before allocating the body.
    let n = body_len(msg)? + 1;
    if n > max_frame || u32::try_from(n).is_err() {
        return Err(EncodeError::Oversized { len: n, max: max_frame.min(u32::MAX as usize) });
    }

    let body = postcard::to_allocvec(msg).map_err(|e| EncodeError::Serialize(e.to_string()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&(n as u32).to_be_bytes());
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
        assert_eq!(encoded_len(&Message::Check { req: 1, have: Revision(5) }), Ok(8));
    }

    #[test]
    fn encode_refuses_a_frame_over_the_maximum() {
        let msg = Message::Check { req: 1, have: Revision(5) };
        // The length field of this frame is 4: the version byte and 3 bytes.
        assert_eq!(encode_with_max(&msg, 4).map(|f| f.len()), Ok(8));
        assert_eq!(encode_with_max(&msg, 3), Err(EncodeError::Oversized { len: 4, max: 3 }));
    }

    #[test]
    fn decode_errors_map_to_wire_codes() {
        let mut frame = encode(&Message::ReportAck).unwrap();
        assert_eq!(decode(&frame, 1).unwrap_err().code(), ErrorCode::BadFrame);
        assert_eq!(decode(&frame[..3], 100).unwrap_err().code(), ErrorCode::BadFrame);
        frame[4] = 9;
        assert_eq!(decode(&frame, 100).unwrap_err().code(), ErrorCode::UnsupportedVersion);
        let garbage = [0, 0, 0, 2, PROTOCOL_VERSION, 0xff];
        assert_eq!(decode(&garbage, 100).unwrap_err().code(), ErrorCode::BadFrame);
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
