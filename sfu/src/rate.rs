//! Owns bitrate measurement: bytes over a sliding one-second window in ten 100 ms buckets,
//! for a simulcast layer's incoming rate (what forwarding it costs a receiver) and an
//! endpoint's rates in and out.
//!
//! Pure: time comes in as microseconds since the core's epoch. Invariants: constant memory;
//! time going backwards adds to the current bucket; a gap longer than the window empties it.
//! Tests: `mod tests` below.

/// Bucket length, µs.
const BUCKET_US: i64 = 100_000;
/// Buckets in the window.
const BUCKETS: usize = 10;

/// Bytes seen over the last second.
#[derive(Debug, Clone, Default)]
pub(crate) struct RateMeter {
    buckets: [u64; BUCKETS],
    /// The bucket index (time / `BUCKET_US`) of the newest bucket.
    head: i64,
}

impl RateMeter {
    /// Count `bytes` at `now_us`.
    pub(crate) fn add(&mut self, now_us: i64, bytes: usize) {
        self.roll(now_us);
        self.buckets[self.head.rem_euclid(BUCKETS as i64) as usize] += bytes as u64;
    }

    /// Bits per second over the last second (the current, partial bucket included).
    pub(crate) fn bps(&self, now_us: i64) -> u64 {
        let idx = now_us.div_euclid(BUCKET_US).max(self.head);
        // Buckets from `idx - BUCKETS + 1` on are in the window.
        (0..BUCKETS as i64)
            .map(|k| self.head - k)
            .filter(|b| *b > idx - BUCKETS as i64)
            .map(|b| self.buckets[b.rem_euclid(BUCKETS as i64) as usize])
            .sum::<u64>()
            * 8
    }

    /// Move the head to `now_us`, emptying the buckets it passes.
    fn roll(&mut self, now_us: i64) {
        let idx = now_us.div_euclid(BUCKET_US);
        if idx <= self.head {
            return;
        }
        let steps = (idx - self.head).min(BUCKETS as i64);
        for k in 1..=steps {
            self.buckets[(self.head + k).rem_euclid(BUCKETS as i64) as usize] = 0;
        }
        self.head = idx;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_rate_reads_back_and_decays_after_silence() {
        let mut m = RateMeter::default();
        // 1250 bytes every 10 ms for 3 s: 1 Mbps.
        for i in 0..300 {
            m.add(1_000_000 + i * 10_000, 1250);
        }
        let now = 1_000_000 + 299 * 10_000;
        let bps = m.bps(now);
        assert!((950_000..=1_050_000).contains(&bps), "{bps}");
        // Half a second of silence halves it; two seconds empty it.
        let half = m.bps(now + 500_000);
        assert!((400_000..=600_000).contains(&half), "{half}");
        assert_eq!(m.bps(now + 2_000_000), 0);
        // Time going backwards counts in the newest bucket, never panics.
        m.add(0, 100);
        assert_eq!(m.bps(now), bps + 800);
    }
}
