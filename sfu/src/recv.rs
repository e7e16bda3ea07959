//! Owns the SFU's receive-side statistics per inbound SSRC (RFC 3550 §6.4.1 and appendix A.3:
//! extended highest sequence number, cumulative and interval loss, interarrival jitter, last
//! SR) and the receiver reports the SFU sends each sender from its feedback SSRC. The SFU is
//! the receiver of every sender's hop, so these reports (not the browsers' own, which are
//! consumed) are what a sender's loss-based rate control and RTT measurement see.

use std::collections::HashMap;
use std::time::Instant;

/// Receive statistics of one SSRC.
#[derive(Debug, Clone)]
pub struct RecvStream {
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Interarrival jitter in RTP timestamp units, scaled by 16 (RFC 3550 A.8).
    jitter_q4: u32,
    /// Transit time of the previous packet (arrival in `clock_rate` units minus RTP timestamp).
    last_transit: Option<i64>,
    clock_rate: u32,
    /// Middle 32 bits of the NTP time of the last SR and when it arrived.
    last_sr: Option<(u32, Instant)>,
}

impl RecvStream {
    /// Statistics starting at the packet with sequence number `seq`.
    pub fn new(seq: u16, clock_rate: u32) -> Self {
        Self {
            base_seq: u32::from(seq),
            max_seq: seq,
            cycles: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter_q4: 0,
            last_transit: None,
            clock_rate,
            last_sr: None,
        }
    }

    /// Accounts one packet (already authenticated). `arrival` is in seconds since any fixed
    /// origin (only differences matter).
    pub fn on_packet(&mut self, seq: u16, rtp_timestamp: u32, arrival_secs: f64) {
        let delta = seq.wrapping_sub(self.max_seq);
        if delta != 0 && delta < 0x8000 {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(1 << 16);
            }
            self.max_seq = seq;
        }
        self.received = self.received.wrapping_add(1);
        let arrival = (arrival_secs * f64::from(self.clock_rate)) as i64;
        let transit = arrival - i64::from(rtp_timestamp);
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs().min(u64::from(u32::MAX)) as u32;
            // J += (|D| - J) / 16, in Q4.
            let j = i64::from(self.jitter_q4) + i64::from(d) - (i64::from(self.jitter_q4) >> 4);
            self.jitter_q4 = j.clamp(0, i64::from(u32::MAX)) as u32;
        }
        self.last_transit = Some(transit);
    }

    /// Packets expected (from the sequence numbers seen) and received so far.
    pub fn totals(&self) -> (u64, u64) {
        let ext_max = self.cycles.wrapping_add(u32::from(self.max_seq));
        let expected = ext_max.wrapping_sub(self.base_seq).wrapping_add(1);
        (u64::from(expected), u64::from(self.received))
    }

    /// Records a sender report's NTP timestamp, received at `now`.
    pub fn on_sender_report(&mut self, ntp: u64, now: Instant) {
        self.last_sr = Some(((ntp >> 16) as u32, now));
    }

    /// The 24-byte report block about `ssrc` as of `now`; advances the interval counters.
    pub fn report_block(&mut self, ssrc: u32, now: Instant) -> [u8; 24] {
        let ext_max = self.cycles.wrapping_add(u32::from(self.max_seq));
        let expected = ext_max.wrapping_sub(self.base_seq).wrapping_add(1);
        let lost = i64::from(expected) - i64::from(self.received);
        let lost = lost.clamp(-0x80_0000, 0x7f_ffff) as i32;
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction = if expected_interval == 0 || lost_interval <= 0 {
            0u8
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        let (lsr, dlsr) = match self.last_sr {
            Some((lsr, at)) => {
                let d = now.saturating_duration_since(at).as_secs_f64() * 65536.0;
                (lsr, d.min(f64::from(u32::MAX)) as u32)
            }
            None => (0, 0),
        };
        let mut b = [0u8; 24];
        b[0..4].copy_from_slice(&ssrc.to_be_bytes());
        b[4] = fraction;
        b[5..8].copy_from_slice(&(lost as u32).to_be_bytes()[1..4]);
        b[8..12].copy_from_slice(&ext_max.to_be_bytes());
        b[12..16].copy_from_slice(&(self.jitter_q4 >> 4).to_be_bytes());
        b[16..20].copy_from_slice(&lsr.to_be_bytes());
        b[20..24].copy_from_slice(&dlsr.to_be_bytes());
        b
    }
}

/// A receiver report from `sender_ssrc` with a block for each stream whose SSRC `include`
/// accepts (at most 31, the RC field's limit), or `None` when there is nothing to report.
pub fn build_receiver_report(
    sender_ssrc: u32,
    streams: &mut HashMap<u32, RecvStream>,
    include: impl Fn(u32) -> bool,
    now: Instant,
) -> Option<Vec<u8>> {
    let mut ssrcs: Vec<u32> = streams.keys().copied().filter(|s| include(*s)).collect();
    if ssrcs.is_empty() {
        return None;
    }
    ssrcs.sort_unstable();
    ssrcs.truncate(31);
    let mut p = Vec::with_capacity(8 + 24 * ssrcs.len());
    let words = u16::try_from(1 + 6 * ssrcs.len()).ok()?;
    p.push(0x80 | ssrcs.len() as u8);
    p.push(201);
    p.extend_from_slice(&words.to_be_bytes());
    p.extend_from_slice(&sender_ssrc.to_be_bytes());
    for ssrc in ssrcs {
        if let Some(s) = streams.get_mut(&ssrc) {
            p.extend_from_slice(&s.report_block(ssrc, now));
        }
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counts_loss_and_wraps_sequence_numbers() {
        let t0 = Instant::now();
        let mut s = RecvStream::new(65530, 90000);
        for seq in [65530u16, 65531, 65533, 65534, 65535, 0, 1, 2, 4] {
            s.on_packet(seq, 0, 0.0);
        }
        // Reordered and duplicate old packet: no new maximum.
        s.on_packet(65532, 0, 0.0);
        let b = s.report_block(7, t0);
        assert_eq!(u32::from_be_bytes([b[0], b[1], b[2], b[3]]), 7);
        // expected 65530..=65540 = 11, received 10: one lost (seq 3).
        assert_eq!(&b[5..8], &[0, 0, 1]);
        assert_eq!(b[4], (256 / 11) as u8);
        assert_eq!(
            u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            (1 << 16) + 4
        );
        // Next interval without loss.
        for seq in 5u16..15 {
            s.on_packet(seq, 0, 0.0);
        }
        let b = s.report_block(7, t0);
        assert_eq!(b[4], 0);
    }

    #[test]
    fn echoes_last_sender_report() {
        let t0 = Instant::now();
        let mut s = RecvStream::new(1, 48000);
        s.on_packet(1, 0, 0.0);
        s.on_sender_report(0x1122_3344_5566_7788, t0);
        let b = s.report_block(9, t0 + Duration::from_millis(500));
        assert_eq!(
            u32::from_be_bytes([b[16], b[17], b[18], b[19]]),
            0x3344_5566
        );
        assert_eq!(u32::from_be_bytes([b[20], b[21], b[22], b[23]]), 32768);
    }

    #[test]
    fn jitter_grows_with_irregular_arrivals() {
        let mut s = RecvStream::new(0, 90000);
        for i in 0..50u16 {
            let arrival = f64::from(i) * 0.033 + if i % 2 == 0 { 0.01 } else { 0.0 };
            s.on_packet(i, u32::from(i) * 3000, arrival);
        }
        let b = s.report_block(1, Instant::now());
        let jitter = u32::from_be_bytes([b[12], b[13], b[14], b[15]]);
        assert!(jitter > 300 && jitter < 1000, "{jitter}");
    }

    #[test]
    fn report_has_one_block_per_stream() {
        let mut streams = HashMap::new();
        streams.insert(5u32, RecvStream::new(0, 48000));
        streams.insert(3u32, RecvStream::new(0, 90000));
        let rr = build_receiver_report(42, &mut streams, |_| true, Instant::now()).expect("rr");
        assert_eq!(rr.len(), 8 + 48);
        assert_eq!(rr[0], 0x82);
        assert_eq!(rr[1], 201);
        assert_eq!(u16::from_be_bytes([rr[2], rr[3]]), 13);
        assert_eq!(u32::from_be_bytes([rr[8], rr[9], rr[10], rr[11]]), 3);
        assert!(build_receiver_report(42, &mut HashMap::new(), |_| true, Instant::now()).is_none());
        assert!(build_receiver_report(42, &mut streams, |s| s == 9, Instant::now()).is_none());
    }
}
