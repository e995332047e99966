//! Sub-seeds derived from the run's one seed, one per purpose.
//!
//! Every random choice of a run draws from a generator seeded here, so the
//! run depends on the scenario's seed alone, and adding a consumer of
//! randomness in one place does not shift the numbers drawn in another.

use sha2::{Digest, Sha256};

/// The seed for `purpose` (e.g. `"client"`) and `index` (e.g. a node id).
pub fn derive(seed: u64, purpose: &str, index: u64) -> u64 {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(purpose.as_bytes());
    h.update([0]);
    h.update(index.to_le_bytes());
    let d = h.finalize();
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// 32 bytes for a key, derived like [`derive`].
pub fn derive_key(seed: u64, purpose: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(purpose.as_bytes());
    h.update([1]);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_seeds_depend_on_every_input() {
        let a = derive(1, "client", 5);
        assert_eq!(a, derive(1, "client", 5));
        assert_ne!(a, derive(2, "client", 5));
        assert_ne!(a, derive(1, "local", 5));
        assert_ne!(a, derive(1, "client", 6));
    }
}
