//! Owns transport-wide congestion control feedback towards senders
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01): the arrival time of every packet an
//! endpoint sends with a transport-wide sequence number, reported back in RTCP transport-cc
//! feedback packets (RTPFB, FMT 15). With these the browser's own send-side estimator sees
//! the path and ramps its bitrate up (and turns on its higher simulcast layers), instead of
//! staying at its start bitrate.
//!
//! Pure: arrival times come in as microseconds since the core's epoch. Invariants: each
//! sequence number is reported once, in order; packets arriving after their number was
//! reported are ignored; the window of unreported numbers is bounded (`MAX_WINDOW`), and a
//! jump beyond it restarts the window (those packets are never reported, which a sender reads
//! as loss); one feedback packet stays under `MAX_STATUSES` numbers and reference-time
//! deltas fit the wire format, or it is split. It also reads the feedback a receiver sends
//! about the SFU's own packets ([`parse_feedback`]), for the downlink estimate (`bwe.rs`).
//! Tests: `mod tests` below (decoded with `rtc-rtcp`, and our parser against it).

use std::collections::VecDeque;

/// Unreported sequence numbers kept at most.
const MAX_WINDOW: usize = 8192;
/// Sequence numbers per feedback packet at most (keeps a packet well under the MTU).
const MAX_STATUSES: usize = 1000;
/// Receive-delta unit, µs.
const DELTA_US: i64 = 250;
/// Reference-time unit, µs.
const REFERENCE_US: i64 = 64_000;

/// The arrivals of one sender's packets not yet reported.
#[derive(Debug, Default)]
pub(crate) struct TwccRecorder {
    /// The last sequence number seen, unwrapped.
    last: Option<i64>,
    /// The first unreported sequence number (unwrapped) and the arrival time (µs) of each
    /// number from there on (`None`: not received).
    base: i64,
    arrivals: VecDeque<Option<i64>>,
    /// The media SSRC of the latest packet (the feedback's "media source").
    media_ssrc: u32,
    /// Feedback packets sent so far (mod 256).
    count: u8,
}

impl TwccRecorder {
    /// A packet with transport-wide sequence number `seq` arrived at `at_us`.
    pub(crate) fn on_packet(&mut self, seq: u16, at_us: i64, media_ssrc: u32) {
        let s = match self.last {
            None => i64::from(seq),
            Some(last) => {
                // The unwrapped number nearest to the last one.
                let delta = i64::from(seq.wrapping_sub((last & 0xffff) as u16) as i16);
                last + delta
            }
        };
        self.last = Some(self.last.map_or(s, |l| l.max(s)));
        self.media_ssrc = media_ssrc;
        if self.arrivals.is_empty() {
            if s < self.base && self.base - s < MAX_WINDOW as i64 {
                return; // Reported already (or given up on).
            }
            self.base = s;
        }
        if s < self.base {
            return;
        }
        let Ok(i) = usize::try_from(s - self.base) else {
            return;
        };
        if i >= MAX_WINDOW {
            self.arrivals.clear();
            self.base = s;
            self.arrivals.push_back(Some(at_us));
            return;
        }
        if i >= self.arrivals.len() {
            self.arrivals.resize(i + 1, None);
        }
        if self.arrivals[i].is_none() {
            self.arrivals[i] = Some(at_us);
        }
    }

    /// Whether anything waits to be reported.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> bool {
        !self.arrivals.is_empty()
    }

    /// Feedback packets (plain RTCP) reporting every unreported number, from `sender_ssrc`.
    pub(crate) fn feedback(&mut self, sender_ssrc: u32) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !self.arrivals.is_empty() {
            let (pkt, used) = self.one_packet(sender_ssrc);
            self.arrivals.drain(..used);
            self.base += used as i64;
            self.count = self.count.wrapping_add(1);
            if let Some(pkt) = pkt {
                out.push(pkt);
            }
        }
        out
    }

    /// One packet from the front of the window, and how many numbers it covers. A window
    /// that starts with numbers never received is covered up to the first received one.
    fn one_packet(&self, sender_ssrc: u32) -> (Option<Vec<u8>>, usize) {
        let Some(first) = self.arrivals.iter().position(Option::is_some) else {
            return (None, self.arrivals.len());
        };
        let reference = self.arrivals[first].unwrap_or(0).div_euclid(REFERENCE_US);
        let mut prev = reference * REFERENCE_US;
        let mut symbols: Vec<u8> = Vec::new();
        let mut deltas: Vec<u8> = Vec::new();
        for a in self.arrivals.iter().take(MAX_STATUSES) {
            match a {
                None => symbols.push(0),
                Some(t) => {
                    let ticks = (t - prev).div_euclid(DELTA_US);
                    if (0..=255).contains(&ticks) {
                        symbols.push(1);
                        deltas.push(ticks as u8);
                    } else if let Ok(d) = i16::try_from(ticks) {
                        symbols.push(2);
                        deltas.extend_from_slice(&d.to_be_bytes());
                    } else {
                        break; // Too far from the previous one: the next packet starts here.
                    }
                    prev += ticks * DELTA_US;
                }
            }
        }
        // Drop trailing not-received symbols: they are reported once something after them is.
        while symbols.last() == Some(&0) {
            symbols.pop();
        }
        let used = symbols.len();
        let mut p = Vec::with_capacity(20 + used / 7 * 2 + deltas.len() + 4);
        p.extend_from_slice(&[0x80 | 15, 205, 0, 0]);
        p.extend_from_slice(&sender_ssrc.to_be_bytes());
        p.extend_from_slice(&self.media_ssrc.to_be_bytes());
        p.extend_from_slice(&((self.base & 0xffff) as u16).to_be_bytes());
        p.extend_from_slice(&(used as u16).to_be_bytes());
        let reference = (reference & 0x00ff_ffff) as u32;
        p.extend_from_slice(&((reference << 8) | u32::from(self.count)).to_be_bytes());
        // Two-bit status vector chunks: 1 1 then seven symbols.
        for chunk in symbols.chunks(7) {
            let mut c: u16 = 0xc000;
            for (k, s) in chunk.iter().enumerate() {
                c |= u16::from(*s) << (12 - 2 * k);
            }
            p.extend_from_slice(&c.to_be_bytes());
        }
        p.extend_from_slice(&deltas);
        while p.len() % 4 != 0 {
            p.push(0);
        }
        let words = (p.len() / 4 - 1) as u16;
        p[2..4].copy_from_slice(&words.to_be_bytes());
        (Some(p), used)
    }
}

/// One transport-cc feedback packet a receiver sent: for each sequence number from
/// `base_seq` on, its arrival time in µs on the receiver's clock, `None` when not received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Feedback {
    pub(crate) base_seq: u16,
    /// Sender-side feedback count (mod 256), to tell duplicates and reordering apart.
    pub(crate) count: u8,
    pub(crate) arrivals: Vec<Option<i64>>,
}

/// Reads a transport-cc feedback packet (RTPFB FMT 15, plain RTCP, one packet of a
/// compound). `None` when it is not one or is malformed (every length is checked).
pub(crate) fn parse_feedback(raw: &[u8]) -> Option<Feedback> {
    if raw.len() < 20 || raw[0] & 0x1f != 15 || raw[1] != 205 {
        return None;
    }
    let base_seq = u16::from_be_bytes([raw[12], raw[13]]);
    let status_count = usize::from(u16::from_be_bytes([raw[14], raw[15]]));
    // 24-bit signed reference time, in 64 ms.
    let reference = (i32::from_be_bytes([raw[16], raw[17], raw[18], 0]) >> 8) as i64;
    let count = raw[19];
    let mut symbols: Vec<u8> = Vec::with_capacity(status_count);
    let mut pos = 20;
    while symbols.len() < status_count {
        let c = u16::from_be_bytes([*raw.get(pos)?, *raw.get(pos + 1)?]);
        pos += 2;
        if c & 0x8000 == 0 {
            let symbol = ((c >> 13) & 0x03) as u8;
            let run = usize::from(c & 0x1fff);
            let take = run.min(status_count - symbols.len());
            symbols.extend(std::iter::repeat_n(symbol, take));
        } else if c & 0x4000 == 0 {
            for k in 0..14 {
                symbols.push(((c >> (13 - k)) & 0x01) as u8);
            }
        } else {
            for k in 0..7 {
                symbols.push(((c >> (12 - 2 * k)) & 0x03) as u8);
            }
        }
    }
    symbols.truncate(status_count);
    let mut t = reference * REFERENCE_US;
    let mut arrivals = Vec::with_capacity(status_count);
    for s in symbols {
        match s {
            0 => arrivals.push(None),
            1 => {
                t += i64::from(*raw.get(pos)?) * DELTA_US;
                pos += 1;
                arrivals.push(Some(t));
            }
            2 => {
                t += i64::from(i16::from_be_bytes([*raw.get(pos)?, *raw.get(pos + 1)?])) * DELTA_US;
                pos += 2;
                arrivals.push(Some(t));
            }
            _ => return None,
        }
    }
    Some(Feedback {
        base_seq,
        count,
        arrivals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_rtcp::transport_feedbacks::transport_layer_cc::{
        PacketStatusChunk, SymbolSizeTypeTcc, SymbolTypeTcc, TransportLayerCc,
    };
    use rtc_shared::marshal::Unmarshal;

    fn decode(p: &[u8]) -> TransportLayerCc {
        let mut buf = p;
        TransportLayerCc::unmarshal(&mut buf).expect("a valid transport-cc packet")
    }

    /// The arrival times (µs after reference) the packet reports, `None` for lost.
    fn times(fb: &TransportLayerCc) -> Vec<Option<i64>> {
        let mut symbols = Vec::new();
        for c in &fb.packet_chunks {
            match c {
                PacketStatusChunk::RunLengthChunk(r) => {
                    for _ in 0..r.run_length {
                        symbols.push(r.packet_status_symbol);
                    }
                }
                PacketStatusChunk::StatusVectorChunk(v) => {
                    assert_eq!(v.symbol_size, SymbolSizeTypeTcc::TwoBit);
                    symbols.extend(v.symbol_list.iter().copied());
                }
            }
        }
        symbols.truncate(usize::from(fb.packet_status_count));
        let mut t = i64::from(fb.reference_time) * REFERENCE_US;
        let mut deltas = fb.recv_deltas.iter();
        symbols
            .into_iter()
            .map(|s| match s {
                SymbolTypeTcc::PacketNotReceived => None,
                _ => {
                    t += deltas.next().expect("a delta per received packet").delta;
                    Some(t)
                }
            })
            .collect()
    }

    #[test]
    fn arrivals_are_reported_once_in_order_with_losses() {
        let mut r = TwccRecorder::default();
        // 100, 101, (102 lost), 103 arriving 1 ms apart, after a 130 ms start.
        for (seq, t) in [(100u16, 130_000), (101, 131_000), (103, 133_000)] {
            r.on_packet(seq, t, 0xabcd);
        }
        let pkts = r.feedback(0x1234);
        assert_eq!(pkts.len(), 1);
        let fb = decode(&pkts[0]);
        assert_eq!(fb.sender_ssrc, 0x1234);
        assert_eq!(fb.media_ssrc, 0xabcd);
        assert_eq!(fb.base_sequence_number, 100);
        assert_eq!(fb.packet_status_count, 4);
        assert_eq!(fb.fb_pkt_count, 0);
        assert_eq!(
            times(&fb),
            [Some(130_000), Some(131_000), None, Some(133_000)]
        );
        assert!(!r.pending());
        // A late 102 is not reported again; the next feedback starts at 104.
        r.on_packet(102, 134_000, 0xabcd);
        assert!(!r.pending());
        r.on_packet(104, 135_000, 0xabcd);
        let fb = decode(&r.feedback(0x1234)[0]);
        assert_eq!((fb.base_sequence_number, fb.fb_pkt_count), (104, 1));
        assert_eq!(times(&fb), [Some(135_000)]);
    }

    #[test]
    fn wrap_reordering_and_large_deltas() {
        let mut r = TwccRecorder::default();
        r.on_packet(65534, 1_000_000, 1);
        r.on_packet(0, 1_001_000, 1); // 65536 after unwrapping: 65535 missing so far
        r.on_packet(65535, 1_000_500, 1); // reordered: earlier than its predecessor's arrival
        r.on_packet(1, 1_200_000, 1); // 199 ms later: a large delta
        let fb = decode(&r.feedback(9)[0]);
        assert_eq!(fb.base_sequence_number, 65534);
        assert_eq!(
            times(&fb),
            [
                Some(1_000_000),
                Some(1_000_500),
                Some(1_001_000),
                Some(1_200_000)
            ]
        );
    }

    #[test]
    fn long_windows_split_and_jumps_restart() {
        let mut r = TwccRecorder::default();
        for i in 0..2500u16 {
            r.on_packet(i, 10_000 + i64::from(i) * 100, 1);
        }
        let pkts = r.feedback(9);
        assert_eq!(pkts.len(), 3);
        let counts: Vec<u16> = pkts.iter().map(|p| decode(p).packet_status_count).collect();
        assert_eq!(counts, [1000, 1000, 500]);
        assert_eq!(decode(&pkts[1]).base_sequence_number, 1000);
        assert!(pkts.iter().all(|p| p.len() < 1500));
        // A jump far ahead restarts the window rather than reporting 20 000 losses.
        r.on_packet(2500, 500_000, 1);
        r.on_packet(22_500, 600_000, 1);
        let pkts = r.feedback(9);
        assert_eq!(pkts.len(), 1);
        assert_eq!(decode(&pkts[0]).base_sequence_number, 22_500);
    }
    #[test]
    fn parses_what_the_recorder_and_rtc_rtcp_write() {
        let mut r = TwccRecorder::default();
        for (seq, t) in [
            (65534u16, 1_000_000),
            (0, 1_001_000),
            (1, 1_200_000),
            (5, 1_200_250),
        ] {
            r.on_packet(seq, t, 1);
        }
        let fb = parse_feedback(&r.feedback(9)[0]).expect("parses");
        assert_eq!(fb.base_seq, 65534);
        assert_eq!(
            fb.arrivals,
            [
                Some(1_000_000),
                None,
                Some(1_001_000),
                Some(1_200_000),
                None,
                None,
                None,
                Some(1_200_250)
            ]
        );
        // Run-length and one-bit vector chunks, as libwebrtc writes them.
        use rtc_rtcp::transport_feedbacks::transport_layer_cc::{
            RecvDelta, RunLengthChunk, StatusChunkTypeTcc, StatusVectorChunk,
        };
        use rtc_shared::marshal::Marshal;
        let pkt = TransportLayerCc {
            sender_ssrc: 1,
            media_ssrc: 2,
            base_sequence_number: 10,
            packet_status_count: 20,
            reference_time: 3,
            fb_pkt_count: 7,
            packet_chunks: vec![
                PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                    type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                    packet_status_symbol: SymbolTypeTcc::PacketReceivedSmallDelta,
                    run_length: 6,
                }),
                PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
                    type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
                    symbol_size: SymbolSizeTypeTcc::OneBit,
                    symbol_list: vec![
                        SymbolTypeTcc::PacketNotReceived,
                        SymbolTypeTcc::PacketReceivedSmallDelta,
                    ]
                    .into_iter()
                    .cycle()
                    .take(14)
                    .collect(),
                }),
            ],
            recv_deltas: (0..13)
                .map(|i| RecvDelta {
                    type_tcc_packet: SymbolTypeTcc::PacketReceivedSmallDelta,
                    delta: 250 * (i + 1),
                })
                .collect(),
        };
        let raw = pkt.marshal().expect("marshals");
        let fb = parse_feedback(&raw).expect("parses");
        assert_eq!((fb.base_seq, fb.count), (10, 7));
        assert_eq!(fb.arrivals.len(), 20);
        assert_eq!(fb.arrivals[0], Some(3 * 64_000 + 250));
        assert_eq!(fb.arrivals[6], None);
        assert_eq!(
            fb.arrivals[7],
            Some(3 * 64_000 + 250 * (1 + 2 + 3 + 4 + 5 + 6 + 7))
        );
        assert_eq!(fb.arrivals.iter().flatten().count(), 13);
        // Truncated anywhere: None, never a panic.
        for cut in 0..raw.len() {
            let _ = parse_feedback(&raw[..cut]);
        }
        assert!(parse_feedback(&raw[..raw.len() - 4]).is_none());
    }
}
