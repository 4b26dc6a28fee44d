//! A small seeded generator (xoshiro256++ seeded by SplitMix64).
//!
//! Kept in-house so that a seed reproduces the same folds, samples and search
//! trials across releases: a dependency upgrade must not change which rows a
//! saved model's cross-validation used.

/// A deterministic pseudo-random generator.
#[derive(Debug, Clone)]
pub struct Rng {
    state: [u64; 4],
}

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let mut next = || {
            sm = sm.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = sm;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng { state: [next(), next(), next(), next()] }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform float in `[0, 1)`.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `0..n` (`n > 0`).
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// A standard normal sample (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.next_f64().max(f64::MIN_POSITIVE);
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// Which of `n` items a uniform sample of `k` of them (all when `k >= n`)
    /// keeps, in order (Knuth's selection sampling: item `i` is kept with
    /// chance `still needed / still left`, so exactly `k` are).
    pub fn sample_mask(&mut self, n: usize, k: usize) -> Vec<bool> {
        if k >= n {
            return vec![true; n];
        }
        let mut needed = k;
        (0..n)
            .map(|i| {
                let keep = needed > 0 && self.below(n - i) < needed;
                needed -= usize::from(keep);
                keep
            })
            .collect()
    }

    /// An independent generator derived from this one's seed and `stream`.
    pub fn fork(&self, stream: u64) -> Rng {
        Rng::new(self.state[0] ^ stream.wrapping_mul(0xD605_BBB5_8C8A_BBFD))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_mask_keeps_exactly_k_spread_over_the_items() {
        let mut rng = Rng::new(3);
        let mask = rng.sample_mask(10_000, 2_500);
        assert_eq!(mask.iter().filter(|&&k| k).count(), 2_500);
        // Each quarter of the items holds about a quarter of the sample.
        for quarter in mask.chunks(2_500) {
            let kept = quarter.iter().filter(|&&k| k).count();
            assert!((540..=710).contains(&kept), "{kept}");
        }
        assert_eq!(Rng::new(3).sample_mask(10_000, 2_500), mask);
        assert_eq!(rng.sample_mask(5, 9), vec![true; 5]);
        assert_eq!(rng.sample_mask(5, 0), vec![false; 5]);
    }

    #[test]
    fn same_seed_same_stream_and_bounds_hold() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
            let x = a.next_f64();
            assert!((0.0..1.0).contains(&x));
            assert!(a.below(3) < 3);
            b.next_f64();
            b.below(3);
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }
}
