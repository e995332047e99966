//! Opaque payloads: policy content (signature files) and client inventories.

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// An immutable byte payload, shared by reference count.
///
/// A signature file of 200 KiB sent to four thousand clients is one
/// allocation: every message and every client that holds it holds the same
/// `Arc`. Its SHA-256 is computed at most once per allocation, on first use,
/// which is what makes verifying the same content at a million simulated
/// clients affordable while each real decoded copy is still hashed.
///
/// On the wire a blob is a byte string: a varint length, then the bytes.
#[derive(Clone)]
pub struct Blob(Arc<BlobInner>);

struct BlobInner {
    bytes: Box<[u8]>,
    digest: OnceLock<Digest>,
}

impl Blob {
    /// Wraps bytes received or read from a file.
    pub fn from_bytes(bytes: Vec<u8>) -> Blob {
        Blob(Arc::new(BlobInner { bytes: bytes.into_boxed_slice(), digest: OnceLock::new() }))
    }

    /// The empty payload.
    pub fn empty() -> Blob {
        Blob::from_bytes(Vec::new())
    }

    /// Makes `len` bytes of deterministic filler from `seed`.
    ///
    /// Used by the simulator for signature files and inventories of a
    /// configured size: the bytes are real (they are hashed, signed and
    /// encoded), only their meaning is invented. Different seeds give
    /// different digests, so two content changes of equal size differ.
    pub fn filler(len: usize, seed: u64) -> Blob {
        let mut bytes = vec![0u8; len];
        let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
        for chunk in bytes.chunks_mut(8) {
            // SplitMix64 step: cheap, and good enough for filler bytes.
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
        Blob::from_bytes(bytes)
    }

    /// The payload's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0.bytes
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.bytes.len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.0.bytes.is_empty()
    }

    /// SHA-256 of the bytes, computed once per allocation.
    pub fn digest(&self) -> Digest {
        *self.0.digest.get_or_init(|| Sha256::digest(&self.0.bytes).into())
    }
}

impl PartialEq for Blob {
    fn eq(&self, other: &Blob) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.bytes == other.0.bytes
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.len())
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0.bytes)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Blob, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Blob;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob::from_bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob::from_bytes(v))
            }
        }
        d.deserialize_bytes(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_is_deterministic_and_seed_dependent() {
        assert_eq!(Blob::filler(1000, 7).as_bytes(), Blob::filler(1000, 7).as_bytes());
        assert_ne!(Blob::filler(1000, 7).digest(), Blob::filler(1000, 8).digest());
        assert_eq!(Blob::filler(13, 1).len(), 13);
    }

    #[test]
    fn digest_is_sha256() {
        let b = Blob::from_bytes(b"abc".to_vec());
        assert_eq!(b.digest()[..4], [0xba, 0x78, 0x16, 0xbf]);
    }
}
