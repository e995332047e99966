//! Integrity: the master signs each revision; every other node verifies.
//!
//! Ed25519 over SHA-256 digests with a domain prefix. Verification results
//! are memoised per (signature, digest) pair: a simulated million clients
//! verifying the same revision pay for one verification, while the
//! signature's 64 bytes still travel in every message.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::blob::Digest;
use crate::ids::{Platform, PolicyId, Revision, SiteName};
use crate::policy::{EffectivePolicy, SignedPolicy};

/// An Ed25519 signature: 64 bytes, encoded as exactly 64 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Sig(pub [u8; 64]);

impl fmt::Debug for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sig({:02x}{:02x}{:02x}{:02x}..)", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

impl Serialize for Sig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(64)?;
        for b in &self.0 {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for Sig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Sig, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Sig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Sig, A::Error> {
                let mut out = [0u8; 64];
                for (i, b) in out.iter_mut().enumerate() {
                    *b = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(Sig(out))
            }
        }
        d.deserialize_tuple(64, Visit)
    }
}

/// Why a policy failed verification.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IntegrityError {
    /// The signature does not match the signed fields.
    #[error("bad signature on {policy} {revision}")]
    BadSignature {
        /// Policy.
        policy: PolicyId,
        /// Revision.
        revision: Revision,
    },
    /// The content bytes do not hash to the signed digest.
    #[error("content of {policy} {revision} does not match its signed digest")]
    ContentMismatch {
        /// Policy.
        policy: PolicyId,
        /// Revision.
        revision: Revision,
    },
    /// The variant is for another platform or site than the receiver's.
    #[error("{policy} {revision} was derived for another platform or site")]
    WrongVariant {
        /// Policy.
        policy: PolicyId,
        /// Revision.
        revision: Revision,
    },
    /// No content was sent and the receiver does not hold the content the
    /// record names.
    #[error("{policy} {revision} came without content the receiver does not hold")]
    MissingContent {
        /// Policy.
        policy: PolicyId,
        /// Revision.
        revision: Revision,
    },
}

/// The master's signing key.
#[derive(Clone)]
pub struct PolicySigner {
    key: SigningKey,
}

impl fmt::Debug for PolicySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        write!(f, "PolicySigner(public {:02x?})", &self.public()[..4])
    }
}

impl PolicySigner {
    /// A key from its 32 secret bytes (the simulator derives them from the
    /// run's seed; a daemon reads them from its data directory).
    pub fn from_secret(secret: [u8; 32]) -> PolicySigner {
        PolicySigner { key: SigningKey::from_bytes(&secret) }
    }

    /// The matching public key, given to every verifier.
    pub fn public(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs a digest.
    pub fn sign(&self, digest: &Digest) -> Sig {
        Sig(self.key.sign(digest).to_bytes())
    }
}

/// Bound on memoised verifications; past it the memo is cleared, which
/// costs only repeated work, never a wrong answer.
const MEMO_CAPACITY: usize = 1 << 16;

/// Checks the master's signatures, memoising good results.
///
/// Clones share the memo, so the simulator can hand one verifier to every
/// node; the TCP daemons each build their own.
#[derive(Clone)]
pub struct PolicyVerifier {
    key: Option<VerifyingKey>,
    memo: Arc<Mutex<BTreeMap<[u8; 64], Digest>>>,
}

impl fmt::Debug for PolicyVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.key.map(|k| k.to_bytes());
        write!(f, "PolicyVerifier({:02x?})", key.as_ref().map(|k| &k[..4]))
    }
}

impl PolicyVerifier {
    /// A verifier for the master's public key. A key that is not a valid
    /// curve point makes every verification fail.
    pub fn new(public: [u8; 32]) -> PolicyVerifier {
        PolicyVerifier {
            key: VerifyingKey::from_bytes(&public).ok(),
            memo: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// Whether `sig` is the master's signature over `digest`.
    pub fn check(&self, digest: &Digest, sig: &Sig) -> bool {
        if let Ok(memo) = self.memo.lock()
            && memo.get(&sig.0) == Some(digest)
        {
            return true;
        }
        let Some(key) = &self.key else { return false };
        let ok = key.verify(digest, &ed25519_dalek::Signature::from_bytes(&sig.0)).is_ok();
        if ok && let Ok(mut memo) = self.memo.lock() {
            if memo.len() >= MEMO_CAPACITY {
                memo.clear();
            }
            memo.insert(sig.0, *digest);
        }
        ok
    }

    /// Verifies a replicated revision: the record signature, and the
    /// content bytes against the signed digest (`content` is the bytes
    /// sent, or the bytes the receiver already holds).
    pub fn verify_record(
        &self,
        policy: &SignedPolicy,
        content: Option<&crate::blob::Blob>,
    ) -> Result<(), IntegrityError> {
        let r = &policy.record;
        let err_ctx = || (r.id.clone(), r.revision);
        if !self.check(&r.signing_digest(), &policy.signature) {
            let (policy, revision) = err_ctx();
            return Err(IntegrityError::BadSignature { policy, revision });
        }
        match content {
            None => {
                let (policy, revision) = err_ctx();
                Err(IntegrityError::MissingContent { policy, revision })
            }
            Some(c) if c.digest() != r.content_digest || c.len() as u64 != r.content_len => {
                let (policy, revision) = err_ctx();
                Err(IntegrityError::ContentMismatch { policy, revision })
            }
            Some(_) => Ok(()),
        }
    }

    /// Verifies an effective policy for a client of `platform` at `site`,
    /// with the content it carries or the client already holds.
    ///
    /// A known limit: the variant shared by all sites without an overlay
    /// (`site: None`) verifies at any site, so a dishonest local server
    /// could hand its clients that variant and so drop its own site's
    /// overlay. It cannot invent parameters or content; closing the gap
    /// needs the shared variant to name the sites it excludes.
    pub fn verify_effective(
        &self,
        policy: &EffectivePolicy,
        site: &SiteName,
        platform: &Platform,
        content: Option<&crate::blob::Blob>,
    ) -> Result<(), IntegrityError> {
        let ctx = || (policy.id.clone(), policy.revision);
        let site_ok = policy.site.as_ref().is_none_or(|s| s == site);
        if &policy.platform != platform || !site_ok {
            let (policy, revision) = ctx();
            return Err(IntegrityError::WrongVariant { policy, revision });
        }
        if !self.check(&policy.signing_digest(), &policy.signature) {
            let (policy, revision) = ctx();
            return Err(IntegrityError::BadSignature { policy, revision });
        }
        match content {
            None => {
                let (policy, revision) = ctx();
                Err(IntegrityError::MissingContent { policy, revision })
            }
            Some(c) if c.digest() != policy.content_digest => {
                let (policy, revision) = ctx();
                Err(IntegrityError::ContentMismatch { policy, revision })
            }
            Some(_) => Ok(()),
        }
    }
}
