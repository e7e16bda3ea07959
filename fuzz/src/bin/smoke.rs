//! A bounded, deterministic fuzz run on stable Rust: mutates valid stream fixtures with a
//! seeded generator and runs `lilt_fuzz::check_splitter` on each, in random pieces.
//!
//! Fuzz harness. Usage: `smoke [COUNT] [SEED]` (defaults 20000 and a fixed seed). Invariants:
//! the same COUNT and SEED always run the same inputs; a broken invariant panics with the input that broke it.
//! Tests: run by scripts/test.sh.

const FIXTURES: &[&str] = &[
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
     xmlns:stream='http://etherx.jabber.org/streams' to='a' version='1.0'>\
     <message to='b@a' type='chat'><body>h\u{e9}llo &amp; &#65; <![CDATA[<x>]]></body>\
     <x xmlns='urn:x' k='&lt;'/></message>\n \
     <iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>\
     <presence xml:lang='fr'><show>away</show></presence></stream:stream>",
    "<s:stream xmlns='jabber:component:accept' xmlns:s='http://etherx.jabber.org/streams' \
     xmlns:j='urn:j' to='c'><handshake>abc</handshake><p:iq xmlns:p='jabber:component:accept' \
     j:x='1'><q xmlns='urn:q'><r xmlns=''>\u{30C6}\r\n</r></q></p:iq>\
     <s:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></s:features>",
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>\
     <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>\
     <enable xmlns='urn:xmpp:sm:3' resume='true'/><r xmlns='urn:xmpp:sm:3'/>\
     <stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
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

/// Fragments that tend to reach the interesting paths.
const TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b"/>",
    b"</",
    b"'",
    b"\"",
    b"&",
    b"&amp;",
    b"&#x0;",
    b"&#xD800;",
    b"&foo;",
    b"<!--",
    b"<?",
    b"<![CDATA[",
    b"]]>",
    b"xmlns:p='u'",
    b"xmlns=''",
    b"xml:lang='x'",
    b"p:",
    b"\0",
    b"\xff",
    b"\xef\xbf\xbf",
    b"<a>",
    b"</a>",
    b"<a/>",
    b" ",
    b"\r\n",
    b"\t",
    b"</stream:stream>",
    b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
];

fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(4) {
            0 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, token.iter().copied());
            }
            1 if at < data.len() => {
                let end = (at + rng.below(16)).min(data.len());
                data.drain(at..end);
            }
            2 if at < data.len() => {
                // Repeat a slice: grows depth, attribute counts and sizes towards the limits.
                let end = (at + rng.below(64)).min(data.len());
                let copy = data[at..end].repeat(1 + rng.below(8));
                data.splice(at..at, copy);
            }
            _ if at < data.len() => data[at] = rng.next() as u8,
            _ => {}
        }
    }
}

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    // xorshift must not start from 0.
    let mut rng = Rng(seed.max(1));
    for i in 0..count {
        let mut data = FIXTURES[i % FIXTURES.len()].as_bytes().to_vec();
        // Every tenth input is left intact, so the valid paths are always exercised.
        if i % 10 != 0 {
            mutate(&mut rng, &mut data);
        }
        let cuts: Vec<u8> = (0..1 + rng.below(6)).map(|_| rng.next() as u8).collect();
        let result = std::panic::catch_unwind(|| lilt_fuzz::check_splitter(&data, &cuts));
        if result.is_err() {
            eprintln!(
                "smoke: input {i} failed (cuts {cuts:?}): {:?}",
                String::from_utf8_lossy(&data)
            );
            std::process::exit(1);
        }
    }
    println!("smoke: {count} inputs passed");
}
