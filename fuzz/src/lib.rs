//! The checks the XML fuzz targets share: whatever bytes arrive, in whatever pieces, the
//! splitter must not panic, must give the same events (and the same error) as when the bytes
//! arrive in one piece, must hold no more than its limit plus one read, and every stanza it
//! yields must serialize to bytes that parse back to an equal element, standalone and inside a
//! stream with the same content namespace.
//!
//! Fuzz harness (no IO). Spec: the invariants of lilt::xml (host/src/xml/mod.rs).
//! Invariants: deterministic for a given (data, cuts); panics only on a broken invariant.
//! Tests: run by fuzz_targets/xml_splitter.rs (libFuzzer) and src/bin/smoke.rs (stable).

use lilt::xml::{Element, Event, Limits, StreamParser, XmlError, parse_element};

/// Small limits, so that the fuzzer reaches them.
fn limits() -> Limits {
    Limits {
        max_stanza_bytes: 4096,
        max_depth: 16,
        max_attrs: 16,
        max_header_bytes: 1024,
    }
}

/// Feed `data` in pieces whose sizes cycle through `cuts` (all of it at once when `cuts` is
/// empty), draining events after each piece. Returns the events and the error, if any.
fn split(data: &[u8], cuts: &[u8], limits: &Limits) -> (Vec<Event>, Option<XmlError>) {
    let mut parser = StreamParser::new(limits.clone());
    let mut events = Vec::new();
    let mut rest = data;
    let mut sizes = cuts.iter().cycle();
    while !rest.is_empty() {
        let n = sizes
            .next()
            .map_or(rest.len(), |&n| usize::from(n).clamp(1, rest.len()));
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        if let Err(e) = parser.feed(piece) {
            return (events, Some(e));
        }
        loop {
            match parser.next_event() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => break,
                Err(e) => return (events, Some(e)),
            }
        }
        assert!(
            parser.buffered_len() <= limits.max_stanza_bytes.max(limits.max_header_bytes) + n,
            "held {} bytes after a {n}-byte piece",
            parser.buffered_len()
        );
    }
    (events, None)
}

/// Serialize `el` and parse it back, standalone and inside a stream whose content namespace
/// is `default_ns`.
fn check_round_trip(el: &Element, default_ns: &str, limits: &Limits) {
    // Serializing may grow an element (escapes, copied declarations): relax only the size.
    let relaxed = Limits {
        max_stanza_bytes: usize::MAX / 2,
        ..limits.clone()
    };
    let bytes = el.to_bytes("");
    match parse_element(&bytes, &relaxed) {
        Ok(again) => assert_eq!(&again, el, "standalone round trip changed {el}"),
        Err(e) => panic!("standalone re-parse of {el} failed: {e}"),
    }
    let mut stream = Vec::new();
    stream.extend_from_slice(
        b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='",
    );
    lilt::xml::escape_attr(default_ns, &mut stream);
    stream.extend_from_slice(b"'>");
    el.write_to(&mut stream, default_ns);
    match split(&stream, &[], &relaxed) {
        (events, None) if events.len() == 2 => {
            assert_eq!(
                events[1],
                Event::Stanza(el.clone()),
                "in-stream round trip changed {el}"
            );
        }
        (events, err) => panic!("in-stream re-parse of {el} gave {events:?}, {err:?}"),
    }
}

/// The whole check: `data` is the stream, `cuts` the sizes of the pieces it arrives in.
pub fn check_splitter(data: &[u8], cuts: &[u8]) {
    let limits = limits();
    let whole = split(data, &[], &limits);
    let pieces = split(data, cuts, &limits);
    assert_eq!(
        (&pieces.0, pieces.1.as_ref().map(XmlError::condition)),
        (&whole.0, whole.1.as_ref().map(XmlError::condition)),
        "chunking changed the outcome"
    );
    let mut default_ns = String::new();
    for event in &whole.0 {
        match event {
            Event::StreamOpen(header) => default_ns.clone_from(&header.default_ns),
            Event::Stanza(el) => check_round_trip(el, &default_ns, &limits),
            Event::StreamClose => {}
        }
    }
}
