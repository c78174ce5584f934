//! Sampling: which records are kept at a configured rate, and the weight a
//! kept record carries so that counts stay unbiased. Server errors and
//! authentication failures are always kept, with weight 1, because they
//! are the rare events an operator looks for.

/// Decides per request; one per chain, seeded per instance.
#[derive(Clone, Debug)]
pub struct Sampler {
    /// Keep a request when a 64-bit draw is below this.
    threshold: u64,
    weight: f32,
    state: u64,
}

impl Sampler {
    /// A sampler keeping `rate` of requests, rate in (0, 1].
    pub fn new(rate: f64, seed: u64) -> Self {
        let rate = if rate.is_finite() {
            rate.clamp(f64::MIN_POSITIVE, 1.0)
        } else {
            1.0
        };
        // u64::MAX as f64 rounds up to 2^64; the cast saturates back.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let threshold = if rate >= 1.0 {
            u64::MAX
        } else {
            (rate * u64::MAX as f64) as u64
        };
        #[allow(clippy::cast_possible_truncation)]
        let weight = (1.0 / rate).min(f64::from(f32::MAX)) as f32;
        Sampler {
            threshold,
            weight,
            state: seed | 1,
        }
    }

    /// The weight of the record for a request with `status`, or `None`
    /// when it is not kept.
    pub fn keep(&mut self, status: u16) -> Option<f32> {
        if self.threshold == u64::MAX || status >= 500 || status == 401 || status == 403 {
            return Some(1.0);
        }
        (self.next() < self.threshold).then_some(self.weight)
    }

    /// xorshift64*: fast, and good enough to pick requests.
    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn full_rate_keeps_everything_with_weight_one() {
        let mut s = Sampler::new(1.0, 7);
        assert!((0..1000).all(|_| s.keep(200) == Some(1.0)));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn weighted_counts_are_unbiased() {
        let mut s = Sampler::new(0.1, 42);
        let n = 200_000;
        let total: f64 = (0..n).filter_map(|_| s.keep(200)).map(f64::from).sum();
        let error = (total - f64::from(n)).abs() / f64::from(n);
        assert!(error < 0.03, "estimated {total} of {n}");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn errors_and_auth_failures_are_always_kept() {
        let mut s = Sampler::new(0.001, 3);
        for status in [500, 502, 503, 401, 403] {
            assert!((0..100).all(|_| s.keep(status) == Some(1.0)), "{status}");
        }
        let kept = (0..1000).filter(|_| s.keep(404).is_some()).count();
        assert!(kept < 20, "{kept}");
    }
}
