//! The seeded mutator of the stable smoke run: a small deterministic generator and the edits
//! it applies to valid fixtures (token insertions, deletions, byte flips, splices of another
//! fixture), so every run replays exactly.

/// xorshift64*: small, deterministic, good enough to pick mutations.
pub struct Rng(pub u64);

impl Rng {
    /// Next value.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Fragments that tend to reach parser and protocol edge cases.
pub const TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b"/>",
    b"</",
    b"'",
    b"\"",
    b"&",
    b"&amp;",
    b"&#x0;",
    b"<!--",
    b"<?",
    b"<![CDATA[",
    b"]]>",
    b"xmlns:p='u'",
    b"p:",
    b"\0",
    b"\xff",
    b"<a>",
    b"</a>",
    b"\n",
    b"=",
    b"4294967295",
    b"9007199254740993",
    b"-1",
    b"type='set'",
    b"type='get'",
    b" h='99'",
    b"xmlns=''",
    b"<x xmlns='jabber:x:data' type='submit'>",
    b"<field var='muc#roomconfig_roomsecret'><value>s</value></field>",
    b"<value>1</value>",
    b"<value/>",
    b"<field var='FORM_TYPE'>",
    b"</field>",
    b"<destroy/>",
    b"<resume xmlns='urn:xmpp:sm:3' previd='x' h='0'/>",
    b"<r xmlns='urn:xmpp:sm:3'/>",
    b"<a xmlns='urn:xmpp:sm:3' h='3'/>",
    b"</stream:stream>",
    b"rid='",
    b"sid='sid-1'",
    b" xmpp:restart='true'",
    b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    // Names that are not XML names (the class muc_owner_form found).
    b"<'x',/>",
    b"<1a/>",
    b"<a\"b/>",
    b" a'b='1'",
    b" type='terminate'",
    b" pause='5'",
    b" ack='1'",
];

/// Attribute values and text that keep the XML well-formed but test the protocol layers.
pub const VALUES: &[&str] = &[
    "",
    "0",
    "1",
    "-1",
    "true",
    "false",
    "18446744073709551616",
    "9007199254740992",
    "anyone",
    "moderators",
    "none",
    "&amp;&lt;&#x10FFFF;",
    "a.example",
    "x@a.example/r",
    "@",
    "/",
    "conference.a.example",
    "submit",
    "set",
    "result",
    "error",
    "\u{1F600}\u{301}",
    " padded ",
    "AGFsaWNlAHB3",
    "=",
    "biwsbj1hLHI9",
    "muc#roomconfig_maxusers",
    "muc#roomconfig_roomsecret",
    "FORM_TYPE",
    "http://jabber.org/protocol/muc#roomconfig",
];

/// Replace the value of the attribute or the text after `at` with one of `VALUES` (or a long
/// run), keeping the markup around it intact.
fn replace_value(rng: &mut Rng, data: &mut Vec<u8>, at: usize) {
    let Some(start) = data[at..]
        .iter()
        .position(|b| *b == b'\'' || *b == b'>')
        .map(|p| at + p + 1)
    else {
        return;
    };
    let close = if data[start - 1] == b'\'' {
        b'\''
    } else {
        b'<'
    };
    let Some(end) = data[start..]
        .iter()
        .position(|b| *b == close)
        .map(|p| start + p)
    else {
        return;
    };
    let value: Vec<u8> = if rng.below(16) == 0 {
        vec![b'x'; 1 + rng.below(5000)]
    } else {
        VALUES[rng.below(VALUES.len())].as_bytes().to_vec()
    };
    data.splice(start..end, value);
}

/// Apply one to five edits to `data` (taking splice material from `other`). Half the time the
/// edits all fall after a random point, so that a session's opening (header, SASL, bind) often
/// survives and the later protocol states get mutated input too.
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    let floor = if rng.below(2) == 0 {
        rng.below(data.len())
    } else {
        0
    };
    for _ in 0..=rng.below(4) {
        let floor = floor.min(data.len());
        let at = floor + rng.below(data.len() - floor + 1);
        match rng.below(8) {
            3..=6 if at < data.len() => replace_value(rng, data, at),
            0 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, t.iter().copied());
            }
            1 if at < data.len() => {
                let end = (at + rng.below(16)).min(data.len());
                data.drain(at..end);
            }
            2 if !other.is_empty() => {
                let from = rng.below(other.len());
                let end = (from + rng.below(64)).min(other.len());
                data.splice(at..at, other[from..end].iter().copied());
            }
            _ if at < data.len() => data[at] = rng.next() as u8,
            _ => {}
        }
    }
}
