//! Owns the first-byte demultiplexing of the shared UDP port (RFC 7983) and the few STUN header
//! reads the core needs before handing a datagram to an ICE agent: the USERNAME attribute of a
//! binding request (whose first half is the SFU's own ufrag, naming the endpoint) and the
//! transaction id (which routes responses to the agent whose check they answer).
//!
//! Everything here reads untrusted bytes: every access is bounds-checked and malformed input
//! yields `None`/[`PacketKind::Unknown`], never a panic.

/// What a datagram on the shared port carries, by its first byte (RFC 7983 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// 0..=3: STUN.
    Stun,
    /// 20..=63: DTLS.
    Dtls,
    /// 128..=191 with an RTP payload type: SRTP.
    Rtp,
    /// 128..=191 with an RTCP packet type (192..=223 in the second byte, RFC 5761 §4): SRTCP.
    Rtcp,
    /// Anything else (ZRTP, TURN channels, garbage): dropped.
    Unknown,
}

/// Classifies a datagram by its first two bytes.
pub fn classify(data: &[u8]) -> PacketKind {
    let Some(&first) = data.first() else {
        return PacketKind::Unknown;
    };
    match first {
        0..=3 => PacketKind::Stun,
        20..=63 => PacketKind::Dtls,
        128..=191 => match data.get(1) {
            Some(pt) if (192..=223).contains(pt) => PacketKind::Rtcp,
            Some(_) if data.len() >= 12 => PacketKind::Rtp,
            _ => PacketKind::Unknown,
        },
        _ => PacketKind::Unknown,
    }
}

const STUN_HEADER: usize = 20;
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const ATTR_USERNAME: u16 = 0x0006;

/// STUN message class, from the message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunClass {
    /// A request (binding request: a connectivity check).
    Request,
    /// An indication.
    Indication,
    /// A success response.
    Success,
    /// An error response.
    Error,
}

/// The parts of a STUN header the demultiplexer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StunHeader {
    /// Request, indication or response.
    pub class: StunClass,
    /// The 96-bit transaction id.
    pub transaction_id: [u8; 12],
}

/// Reads the STUN header, checking the magic cookie and that the length fits the datagram.
pub fn stun_header(data: &[u8]) -> Option<StunHeader> {
    if data.len() < STUN_HEADER || data[4..8] != MAGIC_COOKIE {
        return None;
    }
    let msg_type = u16::from_be_bytes([data[0], data[1]]);
    let len = usize::from(u16::from_be_bytes([data[2], data[3]]));
    if STUN_HEADER + len > data.len() || len % 4 != 0 {
        return None;
    }
    let class = match ((msg_type >> 7) & 0b10) | ((msg_type >> 4) & 0b1) {
        0 => StunClass::Request,
        1 => StunClass::Indication,
        2 => StunClass::Success,
        _ => StunClass::Error,
    };
    let mut transaction_id = [0u8; 12];
    transaction_id.copy_from_slice(&data[8..20]);
    Some(StunHeader {
        class,
        transaction_id,
    })
}

/// The first half of the USERNAME attribute (`ourUfrag` of `ourUfrag:theirUfrag`), if present.
pub fn stun_local_ufrag(data: &[u8]) -> Option<&str> {
    let len = usize::from(u16::from_be_bytes([*data.get(2)?, *data.get(3)?]));
    let body = data.get(STUN_HEADER..STUN_HEADER + len)?;
    let mut pos = 0;
    while pos + 4 <= body.len() {
        let typ = u16::from_be_bytes([body[pos], body[pos + 1]]);
        let alen = usize::from(u16::from_be_bytes([body[pos + 2], body[pos + 3]]));
        let value = body.get(pos + 4..pos + 4 + alen)?;
        if typ == ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        pos += 4 + alen.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: &str) -> Vec<u8> {
        let mut attr = Vec::new();
        attr.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attr.extend_from_slice(username.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attr.len() as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[7u8; 12]);
        m.extend_from_slice(&attr);
        m
    }

    #[test]
    fn classifies_by_first_byte() {
        assert_eq!(classify(&[]), PacketKind::Unknown);
        assert_eq!(classify(&[0, 1]), PacketKind::Stun);
        assert_eq!(classify(&[22, 254, 253]), PacketKind::Dtls);
        assert_eq!(classify(&[63]), PacketKind::Dtls);
        assert_eq!(classify(&[64]), PacketKind::Unknown);
        let mut rtp = vec![0x80, 111];
        rtp.resize(12, 0);
        assert_eq!(classify(&rtp), PacketKind::Rtp);
        assert_eq!(classify(&[0x80, 111]), PacketKind::Unknown);
        assert_eq!(classify(&[0x81, 201, 0, 1]), PacketKind::Rtcp);
        assert_eq!(classify(&[0x81, 206, 0, 2]), PacketKind::Rtcp);
        assert_eq!(classify(&[0x80, 224 - 128 + 128]), PacketKind::Unknown);
        assert_eq!(classify(&[200]), PacketKind::Unknown);
    }

    #[test]
    fn reads_stun_username_and_class() {
        let m = binding_request("sfuU:brow");
        let h = stun_header(&m).expect("header");
        assert_eq!(h.class, StunClass::Request);
        assert_eq!(h.transaction_id, [7u8; 12]);
        assert_eq!(stun_local_ufrag(&m), Some("sfuU"));
        let mut resp = m.clone();
        resp[0] = 0x01;
        resp[1] = 0x01;
        assert_eq!(
            stun_header(&resp).map(|h| h.class),
            Some(StunClass::Success)
        );
    }

    #[test]
    fn malformed_stun_is_rejected_without_panic() {
        let m = binding_request("abcd:efgh");
        for cut in 0..m.len() {
            let _ = stun_header(&m[..cut]);
            let _ = stun_local_ufrag(&m[..cut]);
        }
        let mut bad = m.clone();
        bad[4] = 0; // cookie
        assert!(stun_header(&bad).is_none());
        let mut long_attr = m.clone();
        long_attr[22] = 0xff; // attribute length beyond the message
        assert_eq!(stun_local_ufrag(&long_attr), None);
    }
}
