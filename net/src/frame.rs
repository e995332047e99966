//! Frames on a byte stream, with bounds on size and time.
//!
//! Engine messages travel as the engine's frames (`codec`: a 4-byte
//! big-endian length, a version byte, a postcard body). The transport adds
//! one frame of its own, the keepalive: length 1, version byte 0, no body
//! (5 bytes). The engine's codec never writes version 0, so the two cannot
//! be confused, and keepalives are counted apart from application bytes.
//!
//! Operator sessions use the same framing with postcard bodies of
//! [`crate::operator::OpRequest`] and [`crate::operator::OpResponse`].

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;
use tiersync_engine::Message;
use tiersync_engine::codec::{self, DecodeError, HEADER_LEN, PROTOCOL_VERSION};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// The keepalive frame.
pub const KEEPALIVE: [u8; 5] = [0, 0, 0, 1, 0];

/// Limits on what a peer may send.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest frame accepted, in bytes (length field).
    pub max_frame_bytes: usize,
    /// Silence after which the peer is dead.
    pub dead_after: Duration,
    /// Slowest acceptable sending rate within a frame, bytes per second.
    pub min_send_rate_bps: u64,
    /// Time allowed for any frame on top of its size-based allowance.
    pub grace: Duration,
}

/// Why a frame could not be read; each closes the connection.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The peer closed the connection between frames.
    #[error("connection closed by peer")]
    Closed,
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// Nothing arrived for too long.
    #[error("silent for {0:?}: peer presumed dead")]
    Dead(Duration),
    /// A frame's body arrived too slowly or was cut short.
    #[error("frame of {len} bytes not received within {allowed:?}")]
    TooSlow {
        /// The announced length.
        len: usize,
        /// The time it was allowed.
        allowed: Duration,
    },
    /// The frame does not decode.
    #[error("bad frame: {0}")]
    Decode(#[from] DecodeError),
    /// An operator frame does not decode.
    #[error("bad operator frame: {0}")]
    Operator(String),
}

/// One frame as read: a message (with its frame length) or a keepalive.
#[derive(Debug)]
pub enum Inbound {
    /// An engine message and the bytes its frame took.
    Message(Message, usize),
    /// A keepalive.
    Keepalive,
}

/// Reads one whole frame's bytes (header included).
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    limits: &Limits,
) -> Result<Vec<u8>, FrameError> {
    let mut header = [0u8; 4];
    match tokio::time::timeout(limits.dead_after, r.read_exact(&mut header)).await {
        Err(_) => return Err(FrameError::Dead(limits.dead_after)),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(FrameError::Closed);
        }
        Ok(r) => r?,
    };
    let len = u32::from_be_bytes(header) as usize;
    if len > limits.max_frame_bytes {
        let max = limits.max_frame_bytes;
        return Err(FrameError::Decode(DecodeError::Oversized { len, max }));
    }

    // Read the body under a deadline that grows with its size. The buffer
    // grows as bytes arrive, so an announced length costs nothing until
    // the peer really sends it.
    let allowed = allowance(limits, len);
    let mut frame = Vec::with_capacity(4 + len.min(64 << 10));
    frame.extend_from_slice(&header);
    let mut body = r.take(len as u64);
    match tokio::time::timeout(allowed, body.read_to_end(&mut frame)).await {
        Err(_) => Err(FrameError::TooSlow { len, allowed }),
        Ok(Err(e)) => Err(FrameError::Io(e)),
        Ok(Ok(got)) if got < len => Err(FrameError::TooSlow { len, allowed }),
        Ok(Ok(_)) => Ok(frame),
    }
}

/// The time allowed to move `len` bytes of one frame, in either
/// direction: the grace, plus the bytes at the slowest acceptable rate. A
/// peer that reads or sends more slowly than that is cut off; a large frame
/// gets the time its size needs.
pub fn allowance(limits: &Limits, len: usize) -> Duration {
    let rate = limits.min_send_rate_bps.max(1);
    limits.grace.saturating_add(Duration::from_secs_f64(len as f64 / rate as f64))
}

/// Reads one engine frame.
pub async fn read_inbound<R: AsyncRead + Unpin>(
    r: &mut R,
    limits: &Limits,
) -> Result<Inbound, FrameError> {
    let frame = read_frame(r, limits).await?;
    if frame == KEEPALIVE {
        return Ok(Inbound::Keepalive);
    }
    let (msg, used) = codec::decode(&frame, limits.max_frame_bytes)?;
    Ok(Inbound::Message(msg, used))
}

/// Writes bytes, bounded in time: a peer that stops reading is cut off.
pub async fn write_all<W: AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
    allowed: Duration,
) -> Result<(), FrameError> {
    match tokio::time::timeout(allowed, async {
        w.write_all(bytes).await?;
        w.flush().await
    })
    .await
    {
        Err(_) => Err(FrameError::TooSlow { len: bytes.len(), allowed }),
        Ok(r) => Ok(r?),
    }
}

/// Encodes an operator request or answer as a frame.
pub fn encode_op<T: Serialize>(value: &T) -> Result<Vec<u8>, FrameError> {
    let body = postcard::to_allocvec(value).map_err(|e| FrameError::Operator(e.to_string()))?;
    let n = u32::try_from(body.len() + 1).map_err(|_| FrameError::Operator("too big".into()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&n.to_be_bytes());
    out.push(PROTOCOL_VERSION);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes an operator frame read by [`read_frame`].
pub fn decode_op<T: DeserializeOwned>(frame: &[u8]) -> Result<T, FrameError> {
    match frame.get(4) {
        Some(&PROTOCOL_VERSION) => {}
        Some(v) => return Err(FrameError::Decode(DecodeError::UnknownVersion(*v))),
        None => return Err(FrameError::Operator("empty frame".into())),
    }
    postcard::from_bytes(&frame[HEADER_LEN..]).map_err(|e| FrameError::Operator(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_frame_bytes: 1024,
            dead_after: Duration::from_secs(5),
            min_send_rate_bps: 1024,
            grace: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn frames_keepalives_and_oversize() {
        let mut bytes = codec::encode(&Message::ReportAck).unwrap();
        bytes.extend_from_slice(&KEEPALIVE);
        bytes.extend_from_slice(&[0, 0, 8, 0]);
        let mut r = &bytes[..];
        assert!(matches!(
            read_inbound(&mut r, &limits()).await,
            Ok(Inbound::Message(Message::ReportAck, 6))
        ));
        assert!(matches!(read_inbound(&mut r, &limits()).await, Ok(Inbound::Keepalive)));
        assert!(matches!(
            read_inbound(&mut r, &limits()).await,
            Err(FrameError::Decode(DecodeError::Oversized { len: 2048, .. }))
        ));
    }

    #[test]
    fn allowance_grows_with_the_frame() {
        let l = limits();
        assert_eq!(allowance(&l, 0), Duration::from_secs(1));
        assert_eq!(allowance(&l, 10 * 1024), Duration::from_secs(11));
        assert!(allowance(&l, 1 << 20) > allowance(&l, 1 << 10));
    }

    #[tokio::test]
    async fn slow_reader_is_cut_off_by_the_allowance() {
        // A peer that reads nothing: the writer gives up once the
        // allowance of this frame has passed, not after a fixed time.
        let (mut near, _far) = tokio::io::duplex(64);
        let frame = vec![7u8; 4096];
        let allowed = Duration::from_millis(50);
        let r = write_all(&mut near, &frame, allowed).await;
        assert!(matches!(r, Err(FrameError::TooSlow { len: 4096, .. })), "{r:?}");
    }

    #[tokio::test]
    async fn silent_or_trickling_sender_is_cut_off() {
        use tokio::io::AsyncWriteExt as _;
        let l = Limits {
            dead_after: Duration::from_millis(100),
            grace: Duration::from_millis(100),
            ..limits()
        };
        // Nothing at all: presumed dead after `dead_after`.
        let (mut near, _far) = tokio::io::duplex(64);
        let r = read_inbound(&mut near, &l).await;
        assert!(matches!(r, Err(FrameError::Dead(_))), "{r:?}");

        // A header announcing 1000 bytes, then one byte and silence: cut
        // off once the frame's allowance (grace + 1000 B at 1 KiB/s) ends.
        let (mut near, mut far) = tokio::io::duplex(64);
        far.write_all(&[0, 0, 3, 232, 1]).await.unwrap();
        let started = tokio::time::Instant::now();
        let r = read_inbound(&mut near, &l).await;
        assert!(matches!(r, Err(FrameError::TooSlow { len: 1000, .. })), "{r:?}");
        assert!(started.elapsed() >= allowance(&l, 1000), "cut off before its allowance");
        drop(far);
    }

    #[tokio::test]
    async fn cut_frame_and_clean_close() {
        let mut r: &[u8] = &[0, 0, 0, 9, 1, 2];
        assert!(matches!(read_frame(&mut r, &limits()).await, Err(FrameError::TooSlow { .. })));
        let mut r: &[u8] = &[];
        assert!(matches!(read_frame(&mut r, &limits()).await, Err(FrameError::Closed)));
    }
}
