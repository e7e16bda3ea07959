//! Owns byte-level RTP handling on the forwarding path: reading the fixed header (SSRC, sequence
//! number, payload type), rewriting the header-extension block so only the extension ids the
//! focus declared as forwarded survive (RFC 8285 one-byte and two-byte forms), and reading the
//! RFC 6464 audio level and the transport-wide sequence number (and where it is, to rewrite it).
//!
//! The input is decrypted but otherwise untrusted: every offset is checked and malformed packets
//! return `None`.

/// The fields of an RTP header the forwarder uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Payload type.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence_number: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: u32,
    /// Offset of the header extension block (its 4-byte profile/length word), if the X bit is set.
    ext_offset: Option<usize>,
    /// Offset of the payload.
    payload_offset: usize,
}

impl RtpHeader {
    /// Where the payload starts.
    pub fn payload_offset(&self) -> usize {
        self.payload_offset
    }
}

/// Parses the fixed header, CSRCs and extension framing; `None` if malformed.
pub fn parse_header(pkt: &[u8]) -> Option<RtpHeader> {
    if pkt.len() < 12 || pkt[0] >> 6 != 2 {
        return None;
    }
    let cc = usize::from(pkt[0] & 0x0f);
    let has_ext = pkt[0] & 0x10 != 0;
    let mut off = 12 + 4 * cc;
    if off > pkt.len() {
        return None;
    }
    let ext_offset = if has_ext {
        let words = usize::from(u16::from_be_bytes([*pkt.get(off + 2)?, *pkt.get(off + 3)?]));
        let start = off;
        off += 4 + 4 * words;
        if off > pkt.len() {
            return None;
        }
        Some(start)
    } else {
        None
    };
    Some(RtpHeader {
        payload_type: pkt[1] & 0x7f,
        sequence_number: u16::from_be_bytes([pkt[2], pkt[3]]),
        timestamp: u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]),
        ssrc: u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]),
        ext_offset,
        payload_offset: off,
    })
}

/// One element of an extension block.
struct Element<'a> {
    id: u8,
    data: &'a [u8],
}

/// The elements of an extension block, or `None` for an unknown profile or a malformed block.
/// `two_byte` tells which form the block uses.
fn elements(profile: u16, block: &[u8]) -> Option<(bool, Vec<Element<'_>>)> {
    let mut out = Vec::new();
    let mut i = 0;
    if profile == 0xBEDE {
        while i < block.len() {
            let b = block[i];
            if b == 0 {
                i += 1;
                continue;
            }
            let id = b >> 4;
            if id == 15 {
                break;
            }
            let len = usize::from(b & 0x0f) + 1;
            let data = block.get(i + 1..i + 1 + len)?;
            out.push(Element { id, data });
            i += 1 + len;
        }
        Some((false, out))
    } else if profile & 0xFFF0 == 0x1000 {
        while i < block.len() {
            let id = block[i];
            if id == 0 {
                i += 1;
                continue;
            }
            let len = usize::from(*block.get(i + 1)?);
            let data = block.get(i + 2..i + 2 + len)?;
            out.push(Element { id, data });
            i += 2 + len;
        }
        Some((true, out))
    } else {
        None
    }
}

/// Returns `pkt` with its header-extension block reduced to the elements whose id `keep`
/// accepts, in the same (one- or two-byte) form and zero-padded to a word; without an extension
/// block (X bit cleared) when none survive or the block uses an unknown profile. `None` if the
/// packet is malformed.
pub fn strip_extensions(pkt: &[u8], hdr: &RtpHeader, keep: impl Fn(u8) -> bool) -> Option<Vec<u8>> {
    let Some(ext_off) = hdr.ext_offset else {
        return Some(pkt.to_vec());
    };
    let profile = u16::from_be_bytes([pkt[ext_off], pkt[ext_off + 1]]);
    let block = pkt.get(ext_off + 4..hdr.payload_offset)?;
    let mut new_block = Vec::with_capacity(block.len());
    let known = profile == 0xBEDE || profile & 0xFFF0 == 0x1000;
    let mut two_byte = false;
    if known {
        // A known form that does not parse is a malformed packet; an unknown profile is just
        // dropped as a whole (nothing in it can be a declared extension).
        let (two, elems) = elements(profile, block)?;
        two_byte = two;
        for e in elems.iter().filter(|e| keep(e.id)) {
            if two_byte {
                new_block.push(e.id);
                new_block.push(u8::try_from(e.data.len()).ok()?);
            } else {
                new_block.push((e.id << 4) | u8::try_from(e.data.len() - 1).ok()?);
            }
            new_block.extend_from_slice(e.data);
        }
    }
    while new_block.len() % 4 != 0 {
        new_block.push(0);
    }
    let mut out = Vec::with_capacity(pkt.len());
    out.extend_from_slice(&pkt[..ext_off]);
    if new_block.is_empty() {
        out[0] &= !0x10;
    } else {
        let words = u16::try_from(new_block.len() / 4).ok()?;
        let out_profile: u16 = if two_byte { 0x1000 } else { 0xBEDE };
        out.extend_from_slice(&out_profile.to_be_bytes());
        out.extend_from_slice(&words.to_be_bytes());
        out.extend_from_slice(&new_block);
    }
    out.extend_from_slice(&pkt[hdr.payload_offset..]);
    Some(out)
}

/// The RFC 6464 audio level carried in extension `id`: the level in -dBov (0 loudest, 127
/// silence) and the voice-activity flag. `None` if absent or malformed.
pub fn audio_level(pkt: &[u8], hdr: &RtpHeader, id: u8) -> Option<(u8, bool)> {
    let b = *extension(pkt, hdr, id)?.first()?;
    Some((b & 0x7f, b & 0x80 != 0))
}

/// The payload of a packet `hdr` was parsed from (padding, when the P bit says so, removed).
pub fn payload<'a>(pkt: &'a [u8], hdr: &RtpHeader) -> &'a [u8] {
    let end = if pkt[0] & 0x20 != 0 {
        let pad = usize::from(*pkt.last().unwrap_or(&0));
        pkt.len().saturating_sub(pad).max(hdr.payload_offset)
    } else {
        pkt.len()
    };
    pkt.get(hdr.payload_offset..end).unwrap_or(&[])
}

/// The transport-wide sequence number (draft-holmer-rmcat-transport-wide-cc-extensions-01)
/// carried as extension `id`, if present.
pub fn transport_sequence(pkt: &[u8], hdr: &RtpHeader, id: u8) -> Option<u16> {
    match extension(pkt, hdr, id)? {
        [a, b, ..] => Some(u16::from_be_bytes([*a, *b])),
        _ => None,
    }
}

/// Where the two bytes of the transport-wide sequence number (extension `id`) sit in `pkt`,
/// so that the SFU can number each copy it sends; `None` if absent or shorter.
pub fn transport_sequence_offset(pkt: &[u8], hdr: &RtpHeader, id: u8) -> Option<usize> {
    let data = extension(pkt, hdr, id)?;
    if data.len() < 2 {
        return None;
    }
    // `data` borrows from `pkt`: its offset is the difference of the two addresses.
    Some(data.as_ptr() as usize - pkt.as_ptr() as usize)
}

/// The data of extension `id`, if the packet carries it.
fn extension<'a>(pkt: &'a [u8], hdr: &RtpHeader, id: u8) -> Option<&'a [u8]> {
    let ext_off = hdr.ext_offset?;
    let profile = u16::from_be_bytes([pkt[ext_off], pkt[ext_off + 1]]);
    let block = pkt.get(ext_off + 4..hdr.payload_offset)?;
    let (_, elems) = elements(profile, block)?;
    elems.into_iter().find(|e| e.id == id).map(|e| e.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds an RTP packet with a one-byte (or two-byte) extension block of `elems`.
    fn packet(two_byte: bool, elems: &[(u8, &[u8])], payload: &[u8]) -> Vec<u8> {
        let mut block = Vec::new();
        for (id, data) in elems {
            if two_byte {
                block.push(*id);
                block.push(data.len() as u8);
            } else {
                block.push((id << 4) | (data.len() as u8 - 1));
            }
            block.extend_from_slice(data);
        }
        while block.len() % 4 != 0 {
            block.push(0);
        }
        let mut p = vec![0x90, 111, 0x12, 0x34, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
        p.extend_from_slice(&(if two_byte { 0x1000u16 } else { 0xBEDE }).to_be_bytes());
        p.extend_from_slice(&((block.len() / 4) as u16).to_be_bytes());
        p.extend_from_slice(&block);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn finds_the_transport_sequence_to_rewrite() {
        for two_byte in [false, true] {
            let p = packet(two_byte, &[(1, &[0x85]), (5, &[0x01, 0x02])], b"payload");
            let h = parse_header(&p).expect("parse");
            let at = transport_sequence_offset(&p, &h, 5).expect("present");
            assert_eq!(&p[at..at + 2], &[0x01, 0x02]);
            assert_eq!(transport_sequence(&p, &h, 5), Some(0x0102));
            assert_eq!(transport_sequence_offset(&p, &h, 1), None, "one byte only");
            assert_eq!(transport_sequence_offset(&p, &h, 7), None);
        }
    }

    #[test]
    fn keeps_only_declared_ids_one_byte() {
        let p = packet(
            false,
            &[(1, &[0x85]), (3, &[1, 2, 3]), (5, &[9, 9])],
            b"payload",
        );
        let h = parse_header(&p).expect("parse");
        assert_eq!(h.ssrc, 0xdeadbeef);
        assert_eq!(h.sequence_number, 0x1234);
        assert_eq!(audio_level(&p, &h, 1), Some((5, true)));
        let out = strip_extensions(&p, &h, |id| id == 1).expect("strip");
        assert_eq!(out, packet(false, &[(1, &[0x85])], b"payload"));
        let h2 = parse_header(&out).expect("parse");
        assert_eq!(audio_level(&out, &h2, 1), Some((5, true)));
        assert_eq!(audio_level(&out, &h2, 3), None);
    }

    #[test]
    fn keeps_only_declared_ids_two_byte() {
        let p = packet(true, &[(3, &[]), (1, &[0x10]), (200, &[1; 20])], b"xy");
        let h = parse_header(&p).expect("parse");
        let out = strip_extensions(&p, &h, |id| id == 1).expect("strip");
        assert_eq!(out, packet(true, &[(1, &[0x10])], b"xy"));
    }

    #[test]
    fn removes_block_when_nothing_kept() {
        let p = packet(false, &[(3, &[1, 2, 3])], b"abc");
        let h = parse_header(&p).expect("parse");
        let out = strip_extensions(&p, &h, |id| id == 1).expect("strip");
        let mut expected = vec![0x80, 111, 0x12, 0x34, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
        expected.extend_from_slice(b"abc");
        assert_eq!(out, expected);
        // Unknown profile: whole block dropped.
        let mut q = p.clone();
        q[12] = 0x55;
        q[13] = 0x55;
        let h = parse_header(&q).expect("parse");
        assert_eq!(strip_extensions(&q, &h, |_| true).expect("strip"), expected);
    }

    #[test]
    fn packet_without_extension_is_unchanged() {
        let p = vec![0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 1, 2, 3];
        let h = parse_header(&p).expect("parse");
        assert_eq!(strip_extensions(&p, &h, |_| false).expect("strip"), p);
    }

    #[test]
    fn malformed_packets_do_not_panic() {
        let p = packet(false, &[(1, &[0x85]), (3, &[1, 2, 3])], b"payload");
        for cut in 0..p.len() {
            if let Some(h) = parse_header(&p[..cut]) {
                let _ = strip_extensions(&p[..cut], &h, |id| id == 1);
                let _ = audio_level(&p[..cut], &h, 1);
            }
        }
        // An element whose length runs past the block.
        let mut bad = p.clone();
        bad[16] = 0x3f;
        if let Some(h) = parse_header(&bad) {
            assert!(strip_extensions(&bad, &h, |_| true).is_none());
        }
        assert!(parse_header(&[0x40; 12]).is_none());
        assert!(parse_header(&[0x8f; 20]).is_none());
    }
}
