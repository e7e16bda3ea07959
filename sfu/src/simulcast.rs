//! Owns simulcast forwarding: which layer of a sender's video each receiver gets (by its
//! constraints, and by its downlink estimate shared among the sources it gets: `allocate`),
//! and the rewriting that makes a layer switch invisible to the receiver. A receiver was told only the
//! first layer's SSRC (and its RTX SSRC); whatever layer it gets goes out under those, with
//! sequence numbers and timestamps continuing across switches, as Jitsi Videobridge does.
//!
//! Pure: packets' fields, keyframe flags and time come in; decisions and rewritten fields come
//! out. Invariants: a receiver switches to a layer only at the first packet of one of its
//! keyframes, so it never decodes a frame whose reference it lacks; the output sequence
//! numbers of one receiver's stream are continuous across switches (the first packet after a
//! switch follows the last one sent); output timestamps advance by the wall time between the
//! last packet of the old layer and the first of the new (at least 1 tick); the history that
//! maps output sequence numbers back (for NACKs and retransmissions) is bounded (`HISTORY`).
//! Tests: `mod tests` below; forwarding on virtual time in tests/forwarding.rs.

use std::time::{Duration, Instant};

/// Output packets remembered per receiver for NACK translation.
const HISTORY: usize = 1024;
/// A layer with no packet for this long is taken as off (the sender stopped encoding it).
pub(crate) const LAYER_TIMEOUT: Duration = Duration::from_millis(1500);
/// Video clock rate (every video codec in the offer uses 90 kHz).
const VIDEO_HZ: u64 = 90_000;

/// The nominal frame height of each layer, lowest first, as lib-jitsi-meet encodes a
/// three-layer source (it scales the capture by 4, 2 and 1; the ladder is Jitsi's 180/360/720).
/// A source with fewer layers takes the top of this ladder.
const LADDER: [u32; 3] = [180, 360, 720];

/// The height a receiver asks for when it says nothing (Jitsi Videobridge's default is to
/// send the best it can).
pub const UNCONSTRAINED: u32 = u32::MAX;

/// Nominal height of layer `i` of a source with `n` layers.
pub(crate) fn layer_height(i: usize, n: usize) -> u32 {
    let skip = LADDER.len().saturating_sub(n);
    LADDER.get(skip + i).copied().unwrap_or(u32::MAX)
}

/// The best layer for `max_height` among the layers `active` says are on: the highest whose
/// height fits, else the lowest active one when some height is allowed at all (a receiver
/// asking for 90p still gets video); `None` for `max_height == 0` or when nothing is on.
pub(crate) fn choose(active: &[bool], max_height: u32) -> Option<usize> {
    if max_height == 0 {
        return None;
    }
    let n = active.len();
    let fitting = (0..n)
        .rev()
        .find(|&i| active[i] && layer_height(i, n) <= max_height);
    fitting.or_else(|| (0..n).find(|&i| active[i]))
}

/// [`choose`] under a bandwidth cap: the best layer for `max_height` that is not above `cap`
/// (the highest the receiver's downlink affords), else the lowest active one (video is kept,
/// at its cheapest, rather than suspended). No cap: [`choose`].
pub(crate) fn choose_capped(active: &[bool], max_height: u32, cap: Option<usize>) -> Option<usize> {
    let wanted = choose(active, max_height)?;
    let Some(cap) = cap else {
        return Some(wanted);
    };
    (0..=wanted.min(cap))
        .rev()
        .find(|&i| active[i])
        .or_else(|| (0..active.len()).find(|&i| active[i]))
}

/// One simulcast source a receiver could get, for [`allocate`].
#[derive(Debug, Clone)]
pub(crate) struct Demand {
    /// Each layer's rate now, bps (lowest first).
    pub(crate) rates: Vec<u64>,
    /// Which layers are on.
    pub(crate) active: Vec<bool>,
    /// The layer the receiver's constraints want ([`choose`]); `None`: no video of it.
    pub(crate) wanted: Option<usize>,
}

/// Shares a receiver's downlink `budget` (bps) among the sources it gets, in priority order
/// (first most important), as Jitsi Videobridge's allocator does: every wanted source first
/// gets its lowest active layer; then, source by source in order, each is raised one active
/// layer at a time, as far as its wanted layer and what is left of the budget allow. Returns
/// each source's highest affordable layer (`None` where nothing is wanted).
pub(crate) fn allocate(budget: u64, demands: &[Demand]) -> Vec<Option<usize>> {
    let lowest = |d: &Demand| (0..d.active.len()).find(|&i| d.active[i]);
    let mut caps: Vec<Option<usize>> = demands
        .iter()
        .map(|d| d.wanted.and_then(|_| lowest(d)))
        .collect();
    let mut used: u64 = demands
        .iter()
        .zip(&caps)
        .filter_map(|(d, c)| c.and_then(|c| d.rates.get(c)))
        .sum();
    for (d, cap) in demands.iter().zip(caps.iter_mut()) {
        let (Some(wanted), Some(mut at)) = (d.wanted, *cap) else {
            continue;
        };
        while let Some(next) = (at + 1..=wanted).find(|&i| d.active[i]) {
            let more = d.rates[next].saturating_sub(d.rates[at]);
            if used + more > budget {
                break;
            }
            used += more;
            at = next;
        }
        *cap = Some(at);
    }
    caps
}

/// What one receiver gets of one simulcast source.
#[derive(Debug)]
pub(crate) struct Projection {
    /// The layer it should get (`None`: no video).
    pub(crate) target: Option<usize>,
    /// The layer being forwarded now.
    pub(crate) current: Option<usize>,
    /// Output sequence number minus input sequence number of the current layer.
    seq_offset: u16,
    /// Output timestamp minus input timestamp of the current layer.
    ts_offset: u32,
    /// The last output (sequence number, timestamp, when), once something was sent.
    last: Option<(u16, u32, Instant)>,
    /// The first output sequence number of the current layer.
    base: u16,
    /// Output sequence number → (layer, input sequence number), for the last `HISTORY`.
    history: Vec<Option<(u16, usize, u16)>>,
    /// Next output sequence number of the RTX stream.
    rtx_seq: u16,
    /// When a keyframe of `target` was last asked for.
    pub(crate) asked: Option<Instant>,
}

impl Projection {
    pub(crate) fn new(rtx_seq: u16) -> Projection {
        Projection {
            target: None,
            current: None,
            seq_offset: 0,
            ts_offset: 0,
            last: None,
            base: 0,
            history: vec![None; HISTORY],
            rtx_seq,
            asked: None,
        }
    }

    /// Whether a keyframe of the target layer is needed (a switch is pending).
    pub(crate) fn needs_keyframe(&self) -> Option<usize> {
        self.target.filter(|t| Some(*t) != self.current)
    }

    /// A media packet of `layer`: its output (sequence number, timestamp) when the receiver
    /// gets it, `None` when not. `keyframe_start`: it is the first packet of a keyframe.
    pub(crate) fn forward(
        &mut self,
        layer: usize,
        seq: u16,
        ts: u32,
        keyframe_start: bool,
        now: Instant,
    ) -> Option<(u16, u32)> {
        if self.target.is_none() {
            self.current = None;
            return None;
        }
        if self.current != Some(layer) {
            if self.target != Some(layer) || !keyframe_start {
                return None;
            }
            // Switch here: continue the receiver's stream where it stopped.
            let (out_seq, out_ts) = match self.last {
                None => (seq, ts),
                Some((s, t, at)) => {
                    let ticks =
                        now.saturating_duration_since(at).as_micros() as u64 * VIDEO_HZ / 1_000_000;
                    (s.wrapping_add(1), t.wrapping_add(ticks.max(1) as u32))
                }
            };
            self.seq_offset = out_seq.wrapping_sub(seq);
            self.ts_offset = out_ts.wrapping_sub(ts);
            self.base = out_seq;
            self.current = Some(layer);
            self.asked = None;
        }
        let out_seq = seq.wrapping_add(self.seq_offset);
        let out_ts = ts.wrapping_add(self.ts_offset);
        // From before the switch point: its number would reuse one of the old layer's.
        if out_seq.wrapping_sub(self.base) >= 0x8000 {
            return None;
        }
        if self
            .last
            .is_none_or(|(s, _, _)| out_seq.wrapping_sub(s) < 0x8000)
        {
            self.last = Some((out_seq, out_ts, now));
        }
        self.history[usize::from(out_seq) % HISTORY] = Some((out_seq, layer, seq));
        Some((out_seq, out_ts))
    }

    /// The (layer, input sequence number) an output sequence number came from.
    pub(crate) fn origin(&self, out_seq: u16) -> Option<(usize, u16)> {
        match self.history[usize::from(out_seq) % HISTORY] {
            Some((s, layer, seq)) if s == out_seq => Some((layer, seq)),
            _ => None,
        }
    }

    /// A retransmission of `layer`'s input packet `osn`: the output original sequence number
    /// and the RTX stream's next sequence number, when the receiver got that packet.
    pub(crate) fn retransmit(&mut self, layer: usize, osn: u16) -> Option<(u16, u16)> {
        let out_osn = osn.wrapping_add(self.seq_offset);
        if self.current != Some(layer) || self.origin(out_osn) != Some((layer, osn)) {
            return None;
        }
        let rtx = self.rtx_seq;
        self.rtx_seq = self.rtx_seq.wrapping_add(1);
        Some((out_osn, rtx))
    }

    /// A sender report's RTP timestamp of `layer`, as the receiver must see it.
    pub(crate) fn report_timestamp(&self, layer: usize, ts: u32) -> Option<u32> {
        (self.current == Some(layer)).then(|| ts.wrapping_add(self.ts_offset))
    }
}

/// Whether an RTP payload of `codec` starts a keyframe.
pub fn keyframe_start(codec: VideoCodec, payload: &[u8]) -> bool {
    match codec {
        VideoCodec::Vp8 => vp8_keyframe_start(payload),
        VideoCodec::Vp9 => vp9_keyframe_start(payload),
        VideoCodec::H264 => h264_keyframe_start(payload),
    }
}

/// A video codec the SFU can find keyframes of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// RFC 7741.
    Vp8,
    /// draft-ietf-payload-vp9.
    Vp9,
    /// RFC 6184.
    H264,
}

/// RFC 7741 §4.2–4.3: start of partition 0 (S=1, PID=0) whose payload header's P bit is 0.
fn vp8_keyframe_start(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    if b0 & 0x10 == 0 || b0 & 0x07 != 0 {
        return false;
    }
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let Some(&x) = p.get(1) else { return false };
        i = 2;
        if x & 0x80 != 0 {
            // PictureID: 7 or 15 bits.
            let Some(&m) = p.get(i) else { return false };
            i += if m & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            i += 1; // TID/Y/KEYIDX
        }
    }
    p.get(i).is_some_and(|h| h & 0x01 == 0)
}

/// VP9 payload descriptor: beginning of a frame (B) that is not inter-predicted (P=0), of
/// spatial layer 0 when layer indices are present.
fn vp9_keyframe_start(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    let (inter, layer_info, begin) = (b0 & 0x40 != 0, b0 & 0x20 != 0, b0 & 0x08 != 0);
    if inter || !begin {
        return false;
    }
    if !layer_info {
        return true;
    }
    // I: picture id of 7 or 15 bits precedes the layer indices.
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let Some(&m) = p.get(1) else { return false };
        i += if m & 0x80 != 0 { 2 } else { 1 };
    }
    p.get(i).is_some_and(|l| (l >> 1) & 0x07 == 0)
}

/// RFC 6184: an IDR slice or SPS in a single NAL unit, a STAP-A, or the start of an FU-A.
fn h264_keyframe_start(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    let is_key = |nal: u8| matches!(nal & 0x1f, 5 | 7);
    match b0 & 0x1f {
        1..=23 => is_key(b0),
        24 => {
            // STAP-A: 16-bit size, then the NAL unit.
            let mut i = 1;
            while i + 2 < p.len() {
                let size = usize::from(u16::from_be_bytes([p[i], p[i + 1]]));
                if size == 0 {
                    return false;
                }
                if is_key(p[i + 2]) {
                    return true;
                }
                i += 2 + size;
            }
            false
        }
        28 => p.get(1).is_some_and(|h| h & 0x80 != 0 && is_key(*h)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heights_and_choices() {
        assert_eq!(
            (0..3).map(|i| layer_height(i, 3)).collect::<Vec<_>>(),
            [180, 360, 720]
        );
        assert_eq!(
            (0..2).map(|i| layer_height(i, 2)).collect::<Vec<_>>(),
            [360, 720]
        );
        let all = [true, true, true];
        assert_eq!(choose(&all, UNCONSTRAINED), Some(2));
        assert_eq!(choose(&all, 720), Some(2));
        assert_eq!(choose(&all, 719), Some(1));
        assert_eq!(choose(&all, 360), Some(1));
        assert_eq!(choose(&all, 180), Some(0));
        assert_eq!(choose(&all, 90), Some(0));
        assert_eq!(choose(&all, 0), None);
        // The sender stopped its top layer (its bandwidth fell): the best one left.
        assert_eq!(choose(&[true, true, false], UNCONSTRAINED), Some(1));
        assert_eq!(choose(&[false, false, false], UNCONSTRAINED), None);
        assert_eq!(choose(&[false, true, true], 180), Some(1));
    }

    #[test]
    fn capped_choices_and_allocation() {
        let all = [true, true, true];
        assert_eq!(choose_capped(&all, UNCONSTRAINED, None), Some(2));
        assert_eq!(choose_capped(&all, UNCONSTRAINED, Some(1)), Some(1));
        assert_eq!(choose_capped(&all, 180, Some(2)), Some(0));
        assert_eq!(choose_capped(&all, 0, Some(2)), None);
        // Layer 0 is off and the cap is 0: the lowest active one.
        assert_eq!(
            choose_capped(&[false, true, true], UNCONSTRAINED, Some(0)),
            Some(1)
        );
        let d = |wanted| Demand {
            rates: vec![150_000, 500_000, 1_700_000],
            active: vec![true, true, true],
            wanted,
        };
        // Plenty: everyone gets what they want.
        assert_eq!(
            allocate(10_000_000, &[d(Some(2)), d(Some(1))]),
            [Some(2), Some(1)]
        );
        // 900 kbps: both get 180p (300 k), then the first rises to 360p (+350 k); 720p would
        // need 1.2 M more, and the second's 360p another 350 k.
        assert_eq!(
            allocate(900_000, &[d(Some(2)), d(Some(2))]),
            [Some(1), Some(0)]
        );
        assert_eq!(
            allocate(1_000_000, &[d(Some(2)), d(Some(2))]),
            [Some(1), Some(1)]
        );
        // Less than the lowest layers: still the lowest, never nothing.
        assert_eq!(allocate(10_000, &[d(Some(2)), d(None)]), [Some(0), None]);
        // An inactive middle layer is skipped over.
        let gap = Demand {
            rates: vec![150_000, 0, 1_700_000],
            active: vec![true, false, true],
            wanted: Some(2),
        };
        assert_eq!(allocate(2_000_000, std::slice::from_ref(&gap)), [Some(2)]);
        assert_eq!(allocate(1_000_000, &[gap]), [Some(0)]);
    }

    #[test]
    fn switches_only_at_keyframes_and_keeps_the_stream_continuous() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut p = Projection::new(7);
        p.target = Some(0);
        // Nothing until a keyframe of the target starts.
        assert_eq!(p.forward(0, 100, 9000, false, ms(0)), None);
        assert_eq!(p.forward(0, 101, 9000, true, ms(1)), Some((101, 9000)));
        assert_eq!(p.forward(0, 102, 12000, false, ms(34)), Some((102, 12000)));
        // Layer 2 packets are not forwarded while layer 0 is current.
        assert_eq!(p.forward(2, 5000, 777_000, false, ms(35)), None);
        // Asked for layer 2: layer 0 goes on until layer 2's keyframe.
        p.target = Some(2);
        assert_eq!(p.needs_keyframe(), Some(2));
        assert_eq!(p.forward(2, 5001, 780_000, false, ms(40)), None);
        assert_eq!(p.forward(0, 103, 15000, false, ms(67)), Some((103, 15000)));
        // 33 ms after the last output packet: 2970 ticks later.
        assert_eq!(
            p.forward(2, 5002, 783_000, true, ms(100)),
            Some((104, 17970))
        );
        assert_eq!(p.needs_keyframe(), None);
        assert_eq!(
            p.forward(2, 5003, 783_000, false, ms(101)),
            Some((105, 17970))
        );
        assert_eq!(p.forward(0, 104, 18000, false, ms(101)), None);
        // NACK translation and retransmission.
        assert_eq!(p.origin(104), Some((2, 5002)));
        assert_eq!(p.origin(102), Some((0, 102)));
        assert_eq!(p.origin(999), None);
        assert_eq!(p.retransmit(2, 5003), Some((105, 7)));
        assert_eq!(p.retransmit(2, 5003), Some((105, 8)));
        assert_eq!(p.retransmit(0, 102), None, "not the current layer");
        assert_eq!(p.report_timestamp(2, 783_000), Some(17970));
        assert_eq!(p.report_timestamp(0, 18000), None);
        // No video at all: nothing goes out, and it starts again at a keyframe.
        p.target = None;
        assert_eq!(p.forward(2, 5004, 786_000, true, ms(134)), None);
        p.target = Some(1);
        // 199 ms after the last output packet.
        assert_eq!(
            p.forward(1, 40, 100, true, ms(300)),
            Some((106, 17970 + 17910))
        );
    }

    #[test]
    fn sequence_wrap_and_late_packets() {
        let t0 = Instant::now();
        let mut p = Projection::new(0);
        p.target = Some(1);
        assert_eq!(p.forward(1, 65534, 0, true, t0), Some((65534, 0)));
        assert_eq!(p.forward(1, 65535, 0, false, t0), Some((65535, 0)));
        assert_eq!(p.forward(1, 2, 6000, false, t0), Some((2, 6000)));
        // Reordered after the switch point: still forwarded (the receiver reorders).
        assert_eq!(p.forward(1, 1, 3000, false, t0), Some((1, 3000)));
        // From before the switch point: dropped.
        assert_eq!(p.forward(1, 65533, 0, false, t0), None);
    }

    #[test]
    fn keyframes_of_each_codec() {
        // VP8: X=1, I=1 (15-bit picture id), then the payload header with P=0 / P=1.
        assert!(keyframe_start(
            VideoCodec::Vp8,
            &[0x90, 0x80, 0x81, 0x23, 0x10]
        ));
        assert!(!keyframe_start(
            VideoCodec::Vp8,
            &[0x90, 0x80, 0x81, 0x23, 0x11]
        ));
        assert!(
            !keyframe_start(VideoCodec::Vp8, &[0x80, 0x80, 0x81, 0x23, 0x10]),
            "S=0"
        );
        assert!(
            keyframe_start(VideoCodec::Vp8, &[0x10, 0x10]),
            "no extension byte"
        );
        assert!(!keyframe_start(VideoCodec::Vp8, &[0x90]));
        // VP9: B=1, P=0.
        assert!(keyframe_start(VideoCodec::Vp9, &[0x08]));
        assert!(!keyframe_start(VideoCodec::Vp9, &[0x48]));
        assert!(!keyframe_start(VideoCodec::Vp9, &[0x00]));
        // H264: IDR, SPS in STAP-A, FU-A start of IDR; not a P slice.
        assert!(keyframe_start(VideoCodec::H264, &[0x65]));
        assert!(keyframe_start(
            VideoCodec::H264,
            &[0x78, 0x00, 0x02, 0x67, 0x42]
        ));
        assert!(keyframe_start(VideoCodec::H264, &[0x7c, 0x85]));
        assert!(
            !keyframe_start(VideoCodec::H264, &[0x7c, 0x05]),
            "FU-A middle"
        );
        assert!(!keyframe_start(VideoCodec::H264, &[0x41]));
        assert!(!keyframe_start(VideoCodec::H264, &[]));
    }
}
