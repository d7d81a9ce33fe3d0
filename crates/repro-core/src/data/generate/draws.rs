//! What the generators draw from: their resolved parameters ([`Params`]) and the seeded
//! random streams and draws every generator shares, defined once so that the same parameters
//! give the same bytes.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

/// Resolved parameter values (defaults filled in), in the generator's declaration order.
pub(super) struct Params {
    pub(super) values: Vec<(&'static str, u64)>,
}

impl Params {
    /// Value of a declared parameter. Generators only ask for names they declare.
    pub(super) fn get(&self, name: &str) -> u64 {
        let found = self
            .values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v);
        debug_assert!(
            found.is_some(),
            "generator asked for undeclared param {name}"
        );
        found.unwrap_or(0)
    }

    /// A declared parameter as usize (all maxima are far below `usize::MAX`).
    pub(super) fn usize(&self, name: &str) -> usize {
        usize::try_from(self.get(name)).unwrap_or(usize::MAX)
    }
}

/// A ChaCha8 stream for (generator, label, seed, index); independent streams for different parts
/// of a dataset so that changing one size does not reshuffle everything else.
pub(super) fn stream(generator: &str, label: &str, seed: u64, index: u64) -> ChaCha8Rng {
    let mut hasher = Sha256::new();
    hasher.update(b"repro/generate\0");
    hasher.update(generator.as_bytes());
    hasher.update([0]);
    hasher.update(label.as_bytes());
    hasher.update([0]);
    hasher.update(seed.to_le_bytes());
    hasher.update(index.to_le_bytes());
    ChaCha8Rng::from_seed(hasher.finalize().into())
}

/// Uniform-ish integer in `0..n` (multiply-shift; bias below 2^-32 * n). `n` must be > 0.
pub(super) fn below(rng: &mut impl RngCore, n: u32) -> u32 {
    ((u64::from(rng.next_u32()) * u64::from(n)) >> 32) as u32
}

/// Integer in `lo..=hi` (requires `lo <= hi`).
pub(super) fn between(rng: &mut impl RngCore, lo: i32, hi: i32) -> i32 {
    let span = (hi - lo + 1) as u32;
    lo + below(rng, span) as i32
}

/// Uniform index in `0..n` for large `n` (u64).
pub(super) fn below_u64(rng: &mut impl RngCore, n: u64) -> u64 {
    ((u128::from(rng.next_u64()) * u128::from(n)) >> 64) as u64
}

/// Fisher-Yates shuffle with [`below_u64`].
pub(super) fn shuffle<T>(rng: &mut impl RngCore, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = below_u64(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// Labels `0..classes`, each repeated `per_class` times, in a shuffled order.
pub(super) fn shuffled_labels(
    rng: &mut impl RngCore,
    classes: usize,
    per_class: usize,
) -> Vec<usize> {
    let mut labels: Vec<usize> = (0..classes)
        .flat_map(|c| std::iter::repeat_n(c, per_class))
        .collect();
    shuffle(rng, &mut labels);
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_helpers_stay_in_range() {
        let mut rng = stream("t", "t", 0, 0);
        for _ in 0..1000 {
            assert!(below(&mut rng, 7) < 7);
            let v = between(&mut rng, -3, 3);
            assert!((-3..=3).contains(&v));
        }
        let labels = shuffled_labels(&mut rng, 4, 3);
        let mut sorted = labels.clone();
        sorted.sort();
        assert_eq!(sorted, [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
    }
}
