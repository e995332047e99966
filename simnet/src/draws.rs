//! The network's stream of random draws, with unused draws skipped lazily.
//!
//! Every link crossing takes four draws from one generator shared by all
//! links ([`crate::link`]), so that the draws of one link depend on how many
//! crossings came before it anywhere. Most crossings need none of theirs: a
//! LAN, or a WAN line with no jitter, loss or duplication, turns the four
//! numbers into nothing. [`Draws`] lets such a crossing say "four draws
//! went by" without making them; the generator catches up, by jumping
//! ahead, the next time a draw is really used. The numbers drawn are
//! exactly those of a plain generator that made every draw.

use rand::Rng as _;
use rand_pcg::Pcg64Mcg;

/// Skipped draws above which catching up jumps ahead (a few 128-bit
/// multiplications per bit of the count) instead of stepping once per
/// draw (one multiplication each).
const STEP_LIMIT: u64 = 16;

/// A generator whose skipped draws cost nothing until a draw is used.
#[derive(Clone, Debug)]
pub struct Draws {
    rng: Pcg64Mcg,
    /// Draws that went by without being made.
    skipped: u64,
}

impl Draws {
    /// Draws from `rng`.
    pub fn new(rng: Pcg64Mcg) -> Draws {
        Draws { rng, skipped: 0 }
    }

    /// Lets `n` draws go by unseen.
    #[inline]
    pub fn skip(&mut self, n: u64) {
        self.skipped += n;
    }

    /// The next draw, as the plain generator would have made it after every
    /// draw before it, skipped or not.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        if self.skipped > 0 {
            self.catch_up();
        }
        self.rng.next_u64()
    }

    /// Brings the generator to where the skipped draws would have left it.
    #[cold]
    fn catch_up(&mut self) {
        if self.skipped <= STEP_LIMIT {
            for _ in 0..self.skipped {
                self.rng.next_u64();
            }
        } else {
            // `advance(n)` is documented as equal to `n` draws.
            self.rng.advance(u128::from(self.skipped));
        }
        self.skipped = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;

    /// Skipping any number of draws, stepped or jumped, lands exactly where
    /// drawing them would have.
    #[test]
    fn skipped_draws_equal_drawn_ones() {
        for n in [0u64, 1, 4, 15, 16, 17, 64, 1_000, 123_457] {
            let mut plain = Pcg64Mcg::seed_from_u64(9);
            let mut lazy = Draws::new(Pcg64Mcg::seed_from_u64(9));
            for _ in 0..n {
                plain.next_u64();
            }
            lazy.skip(n);
            let want: Vec<u64> = (0..5).map(|_| plain.next_u64()).collect();
            let got: Vec<u64> = (0..5).map(|_| lazy.next_u64()).collect();
            assert_eq!(got, want, "after {n} skipped draws");
        }
    }

    /// Skips spread between draws add up.
    #[test]
    fn skips_between_draws_accumulate() {
        let mut plain = Pcg64Mcg::seed_from_u64(3);
        let mut lazy = Draws::new(Pcg64Mcg::seed_from_u64(3));
        for round in 0..200u64 {
            let skip = round % 7 * 4;
            for _ in 0..skip {
                plain.next_u64();
            }
            lazy.skip(skip);
            assert_eq!(lazy.next_u64(), plain.next_u64(), "round {round}");
        }
    }
}
