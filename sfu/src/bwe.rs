//! Owns the downlink bandwidth estimate of one receiver: the SFU numbers every RTP packet it
//! sends to the receiver with its own transport-wide sequence number, remembers when it sent
//! each one and its size, and reads the receiver's transport-cc feedback (which packets
//! arrived, and when) into an estimate of what the path to the receiver carries.
//!
//! The estimator is loss- and delay-based AIMD in the spirit of Google congestion control,
//! kept simple enough to reason about:
//! - **Overuse** is a feedback interval that lost more than `LOSS_HIGH` of its packets, or
//!   whose mean one-way delay stands more than `QUEUE_HIGH_US` above the lowest delay seen in
//!   the last `BASELINE_WINDOW_US` (a queue is building), twice in a row. The estimate then
//!   drops to `DECREASE` times the rate the receiver actually got (at most once per
//!   `DECREASE_HOLD_US`).
//! - **Normal** intervals (loss under `LOSS_LOW`, no queue) raise it multiplicatively:
//!   slowly (`GROWTH_NEAR` per second) within `NEAR_WINDOW_US` of the last overuse, where the
//!   capacity was just found, fast (`GROWTH_FAR`) after. A layer switch up is the probe: if
//!   the path cannot carry it, the next feedback says so and the estimate drops back. It
//!   grows no further than `HEADROOM` times the rate the receiver gets (or `INITIAL_BPS`).
//! - In between it holds.
//!
//! Pure: times are µs (send times on the SFU's clock, arrival times on the receiver's; only
//! differences of the latter and the delay's variation are used, never the clock offset).
//! Invariants: the estimate stays in `[MIN_BPS, MAX_BPS]`; memory is constant (`HISTORY`
//! packets); a sequence number is accounted once, whatever feedback repeats it; feedback about
//! numbers never sent or already forgotten is ignored. Tests: `mod tests` below; the whole
//! loop in sfu/tests/forwarding.rs.

use crate::twcc::Feedback;

/// Packets remembered (about 3 s at 1,000 packets/s).
const HISTORY: usize = 4096;
/// The estimate before any feedback (what Jitsi Videobridge starts from).
pub(crate) const INITIAL_BPS: f64 = 2_500_000.0;
/// Bounds of the estimate.
const MIN_BPS: f64 = 100_000.0;
const MAX_BPS: f64 = 20_000_000.0;
/// Loss fractions of one interval: above `LOSS_HIGH` is overuse, under `LOSS_LOW` normal.
const LOSS_HIGH: f64 = 0.10;
const LOSS_LOW: f64 = 0.02;
/// Fewest packets in an interval for its loss to count.
const MIN_PACKETS: usize = 10;
/// Queueing delay above the baseline that means a queue is building.
const QUEUE_HIGH_US: i64 = 80_000;
/// Queueing delay under which the path is taken as empty.
const QUEUE_LOW_US: i64 = 25_000;
/// How long the lowest delay is remembered as the baseline.
const BASELINE_WINDOW_US: i64 = 10_000_000;
/// Multiplier on the received rate when overusing.
const DECREASE: f64 = 0.85;
/// Least time between two decreases (the previous one must take effect first).
const DECREASE_HOLD_US: i64 = 500_000;
/// Growth per second near the last overuse, and far from it.
const GROWTH_NEAR: f64 = 1.08;
const GROWTH_FAR: f64 = 1.5;
const NEAR_WINDOW_US: i64 = 8_000_000;
/// How far above the received rate the estimate may grow.
const HEADROOM: f64 = 2.5;
/// The window of the received rate, µs of arrival time.
const RATE_WINDOW_US: i64 = 1_000_000;

/// One packet sent.
#[derive(Debug, Clone, Copy)]
struct Sent {
    seq: u16,
    at_us: i64,
    size: u32,
    /// Accounted in some feedback already (received or taken as lost).
    reported: bool,
}

/// The estimate of one receiver's downlink.
#[derive(Debug)]
pub(crate) struct Bwe {
    sent: Vec<Option<Sent>>,
    next_seq: u16,
    estimate: f64,
    /// Feedback seen at all (before it, the estimate is only a guess).
    fed: bool,
    /// Lowest one-way delay per second-long bucket of the baseline window: (bucket, delay).
    baseline: std::collections::VecDeque<(i64, i64)>,
    /// Arrivals of the last `RATE_WINDOW_US` (arrival µs, bytes).
    arrivals: std::collections::VecDeque<(i64, u32)>,
    overuse_streak: u32,
    last_decrease: Option<i64>,
    last_update: Option<i64>,
    /// Loss fraction of the last interval with enough packets.
    loss: f64,
    /// Queueing delay of the last interval, µs.
    queue_us: i64,
}

impl Default for Bwe {
    fn default() -> Self {
        Bwe {
            sent: vec![None; HISTORY],
            next_seq: 1,
            estimate: INITIAL_BPS,
            fed: false,
            baseline: std::collections::VecDeque::new(),
            arrivals: std::collections::VecDeque::new(),
            overuse_streak: 0,
            last_decrease: None,
            last_update: None,
            loss: 0.0,
            queue_us: 0,
        }
    }
}

impl Bwe {
    /// Number a packet of `size` bytes sent at `now_us`: its transport-wide sequence number.
    pub(crate) fn on_send(&mut self, now_us: i64, size: usize) -> u16 {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        self.sent[usize::from(seq) % HISTORY] = Some(Sent {
            seq,
            at_us: now_us,
            size: u32::try_from(size).unwrap_or(u32::MAX),
            reported: false,
        });
        seq
    }

    /// The estimate, bps; `None` until the receiver has sent feedback.
    pub(crate) fn estimate(&self) -> Option<u64> {
        self.fed.then_some(self.estimate as u64)
    }

    /// Loss fraction of the last interval and its queueing delay (µs).
    pub(crate) fn path(&self) -> (f64, i64) {
        (self.loss, self.queue_us)
    }

    /// The rate the receiver got over the last second of arrivals, bps.
    fn received_bps(&self) -> Option<f64> {
        let (first, last) = (self.arrivals.front()?.0, self.arrivals.back()?.0);
        let span = last - first;
        if span < 200_000 {
            return None;
        }
        let bytes: u64 = self.arrivals.iter().map(|(_, b)| u64::from(*b)).sum();
        Some(bytes as f64 * 8.0 * 1e6 / span as f64)
    }

    /// A feedback packet from the receiver, read at `now_us` (SFU clock).
    pub(crate) fn on_feedback(&mut self, now_us: i64, fb: &Feedback) {
        let (mut received, mut lost) = (0usize, 0usize);
        let mut delay_sum: i64 = 0;
        for (i, arrival) in fb.arrivals.iter().enumerate() {
            let seq = fb.base_seq.wrapping_add(i as u16);
            let Some(sent) = self.sent[usize::from(seq) % HISTORY].as_mut() else {
                continue;
            };
            if sent.seq != seq || sent.reported {
                continue;
            }
            match arrival {
                Some(at) => {
                    sent.reported = true;
                    received += 1;
                    let delay = at - sent.at_us;
                    delay_sum += delay;
                    self.arrivals.push_back((*at, sent.size));
                    let bucket = sent.at_us.div_euclid(1_000_000);
                    match self.baseline.back_mut() {
                        Some((b, d)) if *b == bucket => *d = (*d).min(delay),
                        _ => self.baseline.push_back((bucket, delay)),
                    }
                }
                // Not received yet: it may still be reported in a later feedback (reordering);
                // counted as lost now, and only once.
                None => {
                    sent.reported = true;
                    lost += 1;
                }
            }
        }
        if received + lost == 0 {
            return;
        }
        self.fed = true;
        if let Some(&(newest, _)) = self.arrivals.back() {
            while self
                .arrivals
                .front()
                .is_some_and(|(t, _)| newest - t > RATE_WINDOW_US)
            {
                self.arrivals.pop_front();
            }
        }
        let oldest_bucket = now_us.div_euclid(1_000_000) - BASELINE_WINDOW_US / 1_000_000;
        while self
            .baseline
            .front()
            .is_some_and(|(b, _)| *b < oldest_bucket)
        {
            self.baseline.pop_front();
        }
        let total = received + lost;
        let loss = (total >= MIN_PACKETS).then(|| lost as f64 / total as f64);
        if let Some(l) = loss {
            self.loss = l;
        }
        let queue = match (received, self.baseline.iter().map(|(_, d)| *d).min()) {
            (0, _) | (_, None) => None,
            (n, Some(base)) => Some(delay_sum / n as i64 - base),
        };
        if let Some(q) = queue {
            self.queue_us = q;
        }
        let overuse =
            loss.is_some_and(|l| l > LOSS_HIGH) || queue.is_some_and(|q| q > QUEUE_HIGH_US);
        let normal = loss.is_none_or(|l| l < LOSS_LOW) && queue.is_none_or(|q| q < QUEUE_LOW_US);
        let dt = self
            .last_update
            .map_or(0.0, |t| ((now_us - t).clamp(0, 1_000_000)) as f64 / 1e6);
        self.last_update = Some(now_us);
        if overuse {
            self.overuse_streak += 1;
            if self.overuse_streak >= 2
                && self
                    .last_decrease
                    .is_none_or(|t| now_us - t >= DECREASE_HOLD_US)
            {
                let got = self.received_bps().unwrap_or(self.estimate);
                self.estimate = self.estimate.min(DECREASE * got);
                self.last_decrease = Some(now_us);
            }
        } else {
            self.overuse_streak = 0;
            if normal {
                let near = self
                    .last_decrease
                    .is_some_and(|t| now_us - t < NEAR_WINDOW_US);
                let growth = if near { GROWTH_NEAR } else { GROWTH_FAR };
                // Not far above what the receiver gets: an estimate nothing has tested is a
                // guess (the floor lets a receiver on a low layer be tried on a higher one).
                let ceiling = self
                    .received_bps()
                    .map_or(MAX_BPS, |r| (r * HEADROOM).max(INITIAL_BPS));
                self.estimate = (self.estimate * growth.powf(dt)).min(ceiling.max(self.estimate));
            }
        }
        self.estimate = self.estimate.clamp(MIN_BPS, MAX_BPS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `n` packets of `size` bytes at `rate` bps from `t0` over a path carrying
    /// `capacity` bps with a queue of `queue_max_us`; returns the feedback (one per 100 ms).
    struct Path {
        capacity: f64,
        queue_max_us: i64,
        /// When the path's queue empties.
        busy_until: i64,
    }

    impl Path {
        /// Arrival of a packet of `size` sent at `at`: `None` when the queue is full.
        fn carry(&mut self, at: i64, size: usize) -> Option<i64> {
            let start = self.busy_until.max(at);
            if start - at > self.queue_max_us {
                return None;
            }
            let tx = (size as f64 * 8.0 / self.capacity * 1e6) as i64;
            self.busy_until = start + tx;
            Some(self.busy_until + 5_000)
        }
    }

    /// Runs `secs` seconds of sending at `rate` bps through `path`, feeding back every 100 ms.
    fn run(bwe: &mut Bwe, path: &mut Path, t0: i64, secs: i64, rate: impl Fn(&Bwe) -> f64) -> i64 {
        let size = 1200usize;
        let mut t = t0;
        let end = t0 + secs * 1_000_000;
        while t < end {
            let mut arrivals = Vec::new();
            let base = bwe.next_seq;
            let interval_end = t + 100_000;
            let gap = (size as f64 * 8.0 / rate(bwe) * 1e6) as i64;
            while t < interval_end {
                bwe.on_send(t, size);
                arrivals.push(path.carry(t, size));
                t += gap.max(100);
            }
            let fb = Feedback {
                base_seq: base,
                count: 0,
                arrivals,
            };
            bwe.on_feedback(t, &fb);
        }
        t
    }

    #[test]
    fn drops_to_a_narrow_path_and_recovers_when_it_widens() {
        let mut bwe = Bwe::default();
        assert_eq!(bwe.estimate(), None);
        let mut path = Path {
            capacity: 10_000_000.0,
            queue_max_us: 200_000,
            busy_until: 0,
        };
        // Sending 1.5 Mbps over a 10 Mbps path: the estimate grows, never falls.
        let t = run(&mut bwe, &mut path, 0, 3, |_| 1_500_000.0);
        let wide = bwe.estimate().expect("fed");
        assert!(wide as f64 >= INITIAL_BPS, "{wide}");
        // The path narrows to 300 kbps while the sender keeps 1.5 Mbps: the estimate falls to
        // about what gets through.
        path.capacity = 300_000.0;
        let t = run(&mut bwe, &mut path, t, 3, |_| 1_500_000.0);
        let narrow = bwe.estimate().expect("fed");
        assert!((150_000..=320_000).contains(&narrow), "{narrow}");
        // Sending what the estimate allows (a layer that fits): it stays near the capacity.
        let t = run(&mut bwe, &mut path, t, 5, |b| b.estimate * 0.5);
        let held = bwe.estimate().expect("fed");
        assert!(held <= 600_000, "{held}");
        // The path widens again: the estimate climbs back above 1.5 Mbps within 20 s.
        path.capacity = 10_000_000.0;
        let mut t = t;
        let mut recovered_after = None;
        for s in 0..20 {
            t = run(&mut bwe, &mut path, t, 1, |b| b.estimate * 0.5);
            if bwe.estimate().expect("fed") > 1_500_000 {
                recovered_after = Some(s + 1);
                break;
            }
        }
        assert!(recovered_after.is_some(), "{:?}", bwe.estimate());
    }

    #[test]
    fn duplicates_and_unknown_numbers_are_ignored() {
        let mut bwe = Bwe::default();
        for i in 0..20 {
            bwe.on_send(i * 1000, 1000);
        }
        let fb = Feedback {
            base_seq: 1,
            count: 0,
            arrivals: (0..20).map(|i| Some(10_000 + i * 1000)).collect(),
        };
        bwe.on_feedback(30_000, &fb);
        assert_eq!(bwe.path().0, 0.0);
        // The same numbers reported again as lost: already accounted, no loss.
        let lost = Feedback {
            base_seq: 1,
            count: 1,
            arrivals: vec![None; 20],
        };
        bwe.on_feedback(40_000, &lost);
        assert_eq!(bwe.path().0, 0.0);
        // Numbers never sent.
        let unknown = Feedback {
            base_seq: 5000,
            count: 2,
            arrivals: vec![None; 100],
        };
        bwe.on_feedback(50_000, &unknown);
        assert_eq!(bwe.path().0, 0.0);
        assert!(bwe.estimate().is_some());
    }
}
