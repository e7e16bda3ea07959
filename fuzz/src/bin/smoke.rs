//! Bounded, deterministic fuzz smoke run on stable Rust: mutates valid stream fixtures with a
//! seeded generator and runs `check_splitter` on each. Usage: `smoke [COUNT]` (default 20000).

const FIXTURES: &[&str] = &[
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='a' version='1.0'>\
     <message to='b@a' type='chat'><body>h\u{e9}llo &amp; &#65; <![CDATA[<x>]]></body><x xmlns='urn:x' k='&lt;'/></message>\
     <iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq><presence xml:lang='fr'><show>away</show></presence></stream:stream>",
    "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='c'>\
     <handshake>abc</handshake><p:iq xmlns:p='jabber:component:accept' p:x='1'><q xmlns='urn:q'><r/></q></p:iq>",
];

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&[u8]] = &[b"<", b">", b"/>", b"</", b"'", b"\"", b"&", b"&amp;", b"&#x0;", b"<!--", b"<?", b"<![CDATA[", b"]]>", b"xmlns:p='u'", b"p:", b"\0", b"\xff", b"<a>", b"</a>"];

fn main() {
    let count: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..count {
        let mut data = FIXTURES[i % FIXTURES.len()].as_bytes().to_vec();
        for _ in 0..=rng.below(4) {
            let at = rng.below(data.len() + 1);
            match rng.below(3) {
                0 => {
                    let t = TOKENS[rng.below(TOKENS.len())];
                    data.splice(at..at, t.iter().copied());
                }
                1 if at < data.len() => {
                    let end = (at + rng.below(16)).min(data.len());
                    data.drain(at..end);
                }
                _ if at < data.len() => data[at] = rng.next() as u8,
                _ => {}
            }
        }
        let cuts: Vec<u8> = (0..4).map(|_| rng.next() as u8).collect();
        lilt_fuzz::check_splitter(&data, &cuts);
    }
    println!("smoke: {count} passed, 0 failed");
}
