//! Owns byte-level RTCP handling on the forwarding path: splitting a decrypted compound packet
//! into its packets, telling the routed kinds (generic NACK, PLI, FIR, sender report) from
//! transport-cc feedback (read by the downlink estimate) and the consumed ones (receiver
//! reports, SDES, BYE, REMB), trimming report blocks off forwarded sender reports, and
//! building the SFU's own PLIs.
//!
//! Input is decrypted but untrusted: all lengths are checked, malformed packets end the walk.

/// Packet types (RFC 3550, RFC 4585).
const PT_SR: u8 = 200;
const PT_RR: u8 = 201;
const PT_RTPFB: u8 = 205;
const PT_PSFB: u8 = 206;

/// One RTCP packet of a compound, classified for routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpItem<'a> {
    /// Generic NACK (RTPFB FMT 1) about `media_ssrc`.
    Nack {
        /// The media source the NACK is about.
        media_ssrc: u32,
        /// The packet bytes.
        raw: &'a [u8],
    },
    /// Picture loss indication (PSFB FMT 1) about `media_ssrc`.
    Pli {
        /// The media source whose keyframe is wanted.
        media_ssrc: u32,
        /// The packet bytes.
        raw: &'a [u8],
    },
    /// Full intra request (PSFB FMT 4); `media_ssrc` is the first FCI entry's SSRC.
    Fir {
        /// The media source whose keyframe is wanted.
        media_ssrc: u32,
        /// The packet bytes.
        raw: &'a [u8],
    },
    /// Sender report from `ssrc`.
    SenderReport {
        /// The sender's SSRC.
        ssrc: u32,
        /// The packet bytes.
        raw: &'a [u8],
    },
    /// Transport-cc feedback (RTPFB FMT 15) about the packets the SFU sent.
    TransportCc {
        /// The packet bytes.
        raw: &'a [u8],
    },
    /// Receiver report: consumed.
    ReceiverReport,
    /// Anything else (SDES, BYE, REMB, XR, APP): consumed.
    Other,
}

/// Splits a compound RTCP packet. Stops at the first malformed packet (what came before it is
/// still returned).
pub fn split(compound: &[u8]) -> Vec<RtcpItem<'_>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 4 <= compound.len() {
        let b0 = compound[pos];
        if b0 >> 6 != 2 {
            break;
        }
        let fmt = b0 & 0x1f;
        let pt = compound[pos + 1];
        let len = (usize::from(u16::from_be_bytes([compound[pos + 2], compound[pos + 3]])) + 1) * 4;
        let Some(raw) = compound.get(pos..pos + len) else {
            break;
        };
        let word = |at: usize| -> Option<u32> {
            raw.get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let item = match (pt, fmt) {
            (PT_RTPFB, 1) => word(8).map(|media_ssrc| RtcpItem::Nack { media_ssrc, raw }),
            (PT_RTPFB, 15) => Some(RtcpItem::TransportCc { raw }),
            (PT_PSFB, 1) => word(8).map(|media_ssrc| RtcpItem::Pli { media_ssrc, raw }),
            (PT_PSFB, 4) => word(12).map(|media_ssrc| RtcpItem::Fir { media_ssrc, raw }),
            (PT_SR, _) if raw.len() >= 28 => {
                word(4).map(|ssrc| RtcpItem::SenderReport { ssrc, raw })
            }
            (PT_RR, _) => Some(RtcpItem::ReceiverReport),
            _ => Some(RtcpItem::Other),
        };
        out.push(item.unwrap_or(RtcpItem::Other));
        pos += len;
    }
    out
}

/// A sender report without its report blocks (those describe what the sender received over its
/// own hop) and without profile extensions: the 28-byte header and sender info.
pub fn trim_sender_report(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = raw.get(..28)?.to_vec();
    out[0] &= 0xe0; // RC = 0, no padding
    out[2] = 0;
    out[3] = 6; // (28 / 4) - 1
    Some(out)
}

/// A picture loss indication from `sender_ssrc` about `media_ssrc` (RFC 4585 §6.3.1).
pub fn build_pli(sender_ssrc: u32, media_ssrc: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(12);
    p.extend_from_slice(&[0x81, PT_PSFB, 0, 2]);
    p.extend_from_slice(&sender_ssrc.to_be_bytes());
    p.extend_from_slice(&media_ssrc.to_be_bytes());
    p
}

/// The sequence numbers a generic NACK (RFC 4585 §6.2.1) asks for: each FCI's PID and the
/// ones its BLP marks. Malformed or truncated FCIs end the list.
pub fn nack_sequence_numbers(raw: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    let words = raw
        .get(2..4)
        .map_or(0, |l| usize::from(u16::from_be_bytes([l[0], l[1]])));
    let end = (4 + 4 * words).min(raw.len());
    let mut i = 12;
    while i + 4 <= end {
        let pid = u16::from_be_bytes([raw[i], raw[i + 1]]);
        let blp = u16::from_be_bytes([raw[i + 2], raw[i + 3]]);
        out.push(pid);
        for bit in 0..16u16 {
            if blp & (1 << bit) != 0 {
                out.push(pid.wrapping_add(bit + 1));
            }
        }
        i += 4;
    }
    out
}

/// A generic NACK from `sender_ssrc` about `media_ssrc` asking for `seqs` (packed into PID +
/// BLP items; at most 256 items).
pub fn build_nack(sender_ssrc: u32, media_ssrc: u32, seqs: &[u16]) -> Vec<u8> {
    let mut sorted: Vec<u16> = seqs.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut items: Vec<(u16, u16)> = Vec::new();
    for s in sorted {
        let n = items.len();
        match items.last_mut() {
            Some((pid, blp)) if (1..=16).contains(&s.wrapping_sub(*pid)) => {
                *blp |= 1 << (s.wrapping_sub(*pid) - 1);
            }
            _ if n < 256 => items.push((s, 0)),
            _ => break,
        }
    }
    let mut p = Vec::with_capacity(12 + 4 * items.len());
    p.extend_from_slice(&[0x81, PT_RTPFB, 0, 0]);
    p.extend_from_slice(&sender_ssrc.to_be_bytes());
    p.extend_from_slice(&media_ssrc.to_be_bytes());
    for (pid, blp) in items {
        p.extend_from_slice(&pid.to_be_bytes());
        p.extend_from_slice(&blp.to_be_bytes());
    }
    let words = (p.len() / 4 - 1) as u16;
    p[2..4].copy_from_slice(&words.to_be_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nacks_round_trip() {
        let seqs = [100u16, 101, 116, 117, 65535, 3];
        let p = build_nack(1, 2, &seqs);
        let mut got = nack_sequence_numbers(&p);
        got.sort_unstable();
        let mut want = seqs.to_vec();
        want.sort_unstable();
        assert_eq!(got, want);
        assert!(matches!(
            split(&p)[..],
            [RtcpItem::Nack { media_ssrc: 2, .. }]
        ));
        assert!(nack_sequence_numbers(&p[..12]).is_empty());
    }

    #[test]
    fn splits_and_classifies_compound() {
        let mut c = vec![0x80, PT_RR, 0, 1, 0, 0, 0, 9];
        c.extend_from_slice(&build_pli(9, 1234));
        c.extend_from_slice(&[0x81, PT_RTPFB, 0, 3, 0, 0, 0, 9, 0, 0, 0, 55, 0, 10, 0, 0]);
        let items = split(&c);
        assert_eq!(items.len(), 3);
        assert_eq!(items[0], RtcpItem::ReceiverReport);
        assert!(matches!(
            items[1],
            RtcpItem::Pli {
                media_ssrc: 1234,
                ..
            }
        ));
        assert!(matches!(items[2], RtcpItem::Nack { media_ssrc: 55, .. }));
    }

    #[test]
    fn sender_report_is_trimmed() {
        let mut sr = vec![0x81, PT_SR, 0, 12, 0, 0, 0, 42];
        sr.extend_from_slice(&[1u8; 20]);
        sr.extend_from_slice(&[2u8; 24]);
        let items = split(&sr);
        let RtcpItem::SenderReport { ssrc, raw } = &items[0] else {
            panic!("not an SR: {items:?}");
        };
        assert_eq!(*ssrc, 42);
        let t = trim_sender_report(raw).expect("trim");
        assert_eq!(t.len(), 28);
        assert_eq!(t[0], 0x80);
        assert_eq!(split(&t).len(), 1);
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let mut c = build_pli(1, 2);
        c.extend_from_slice(&[0x81, PT_PSFB, 0, 4, 0, 0]);
        for cut in 0..c.len() {
            let _ = split(&c[..cut]);
        }
        assert_eq!(split(&c).len(), 1);
        assert!(split(&[0x00, 0, 0, 0]).is_empty());
    }
}
