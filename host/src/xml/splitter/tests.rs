//! Tests for splitter.rs: fixtures cut at every byte and fed one byte at a time, each error
//! class from a concrete input (also cut at every byte), limits, keepalives, restarts,
//! standalone elements and round trips through the writer.

use super::super::ns;
use super::*;

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' xml:lang='en'>";

/// A c2s stream: declaration, UTF-8 text, references, CDATA, a namespace change, keepalives.
const C2S: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>\n \
    <message to='a@b' type=\"chat\"><body>h\u{e9}llo &amp; &#x263A; \u{1F600}</body>\
    <x xmlns='urn:x' a='&lt;&quot;'><y/></x><![CDATA[<raw>]]></message> \
    <iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq><presence/>\
    <stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>\
    </stream:stream>";

/// A component stream: another stream prefix, a header-declared attribute prefix, an element
/// with its own prefix, the default namespace changing and being undeclared, CRLF, multibyte
/// names and text.
const COMPONENT: &str = "<s:stream xmlns:s='http://etherx.jabber.org/streams' \
    xmlns='jabber:component:accept' xmlns:j='urn:j' to='c.example'>\r\n\
    <handshake>aaf4c61d</handshake> \n\t <p:iq xmlns:p='jabber:component:accept' type='set' \
    j:k='v'><q xmlns='urn:q'><r xml:lang='ja'>\u{30C6}\u{30AD}\u{30B9}\u{30C8}</r>\
    <\u{540D}\u{524D}/><s xmlns=''>a\r\nb</s></q></p:iq>  <s:error><not-well-formed \
    xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></s:error></s:stream>";

/// A header that opens and closes the stream at once; bytes after a close are ignored.
const SELF_CLOSED: &str = "<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams'/><message/>";

const FIXTURES: &[&str] = &[C2S, COMPONENT, SELF_CLOSED];

/// Feed `input` in pieces ending at `cuts`, draining after each; the events, then the error.
fn run(input: &[u8], cuts: &[usize], limits: &Limits) -> (Vec<Event>, Option<XmlError>) {
    let mut p = StreamParser::new(limits.clone());
    let mut events = Vec::new();
    let mut from = 0;
    for &to in cuts.iter().chain([&input.len()]) {
        let step = p.feed(&input[from..to]).and_then(|()| {
            while let Some(event) = p.next_event()? {
                events.push(event);
            }
            Ok(())
        });
        if let Err(e) = step {
            return (events, Some(e));
        }
        from = to;
    }
    (events, None)
}

fn parse_whole(input: &str) -> Result<Vec<Event>, XmlError> {
    match run(input.as_bytes(), &[], &Limits::default()) {
        (events, None) => Ok(events),
        (_, Some(e)) => Err(e),
    }
}

fn stanza(events: &[Event], i: usize) -> &Element {
    match &events[i] {
        Event::Stanza(el) => el,
        other => panic!("event {i} is {other:?}"),
    }
}

#[test]
fn c2s_fixture() {
    let events = parse_whole(C2S).expect("valid");
    assert_eq!(events.len(), 6);
    let Event::StreamOpen(h) = &events[0] else {
        panic!("{:?}", events[0])
    };
    assert_eq!(h.to.as_deref(), Some("example.com"));
    assert_eq!(h.version.as_deref(), Some("1.0"));
    assert_eq!(h.default_ns, ns::CLIENT);
    let m = stanza(&events, 1);
    assert!(m.is("message", ns::CLIENT));
    assert_eq!(m.attr("type"), Some("chat"));
    let body = m.get_child("body", ns::CLIENT).expect("body");
    assert_eq!(body.text(), "h\u{e9}llo & \u{263A} \u{1F600}");
    let x = m.get_child("x", "urn:x").expect("x");
    assert_eq!(x.attr("a"), Some("<\""));
    assert!(x.has_child("y", "urn:x"));
    assert_eq!(m.text(), "<raw>");
    assert!(stanza(&events, 2).has_child("ping", ns::PING));
    assert!(stanza(&events, 3).is("presence", ns::CLIENT));
    let features = stanza(&events, 4);
    assert!(features.is("features", ns::STREAMS));
    assert!(features.has_child("bind", ns::BIND));
    assert_eq!(events[5], Event::StreamClose);
}

#[test]
fn component_fixture() {
    let events = parse_whole(COMPONENT).expect("valid");
    assert_eq!(events.len(), 5);
    let Event::StreamOpen(h) = &events[0] else {
        panic!("{:?}", events[0])
    };
    assert_eq!(h.default_ns, ns::COMPONENT);
    assert!(stanza(&events, 1).is("handshake", ns::COMPONENT));
    let iq = stanza(&events, 2);
    assert!(iq.is("iq", ns::COMPONENT));
    assert_eq!(iq.attr("j:k"), Some("v"));
    assert_eq!(
        iq.attr("xmlns:j"),
        Some("urn:j"),
        "inherited declaration copied"
    );
    let q = iq.get_child("q", "urn:q").expect("q");
    let r = q.get_child("r", "urn:q").expect("r");
    assert_eq!(r.attr("xml:lang"), Some("ja"));
    assert_eq!(r.text(), "\u{30C6}\u{30AD}\u{30B9}\u{30C8}");
    assert!(q.has_child("\u{540D}\u{524D}", "urn:q"));
    assert_eq!(
        q.get_child("s", "").map(Element::text).as_deref(),
        Some("a\nb")
    );
    let err = stanza(&events, 3);
    assert!(err.is("error", ns::STREAMS));
    assert!(err.has_child("not-well-formed", ns::STREAM_ERRORS));
    assert_eq!(events[4], Event::StreamClose);
}

#[test]
fn self_closing_header_opens_and_closes() {
    let events = parse_whole(SELF_CLOSED).expect("valid");
    assert!(matches!(
        &events[..],
        [Event::StreamOpen(_), Event::StreamClose]
    ));
}

/// Each prefix yields exactly the events complete within it, and the rest yields the others.
#[test]
fn every_cut_point_and_one_byte_at_a_time() {
    for fixture in FIXTURES {
        let bytes = fixture.as_bytes();
        let expected = parse_whole(fixture).expect("valid");
        // One byte at a time, noting after how many bytes each event became available.
        let mut p = StreamParser::new(Limits::default());
        let mut ends = Vec::new();
        for (i, b) in bytes.iter().enumerate() {
            p.feed(std::slice::from_ref(b)).expect("feed");
            while let Some(event) = p.next_event().expect("valid") {
                assert_eq!(event, expected[ends.len()], "byte {i}");
                assert_eq!(*b, b'>', "an event completes on '>'");
                ends.push(i + 1);
            }
        }
        assert_eq!(ends.len(), expected.len());
        for cut in 0..=bytes.len() {
            let (prefix, err) = run(&bytes[..cut], &[], &Limits::default());
            assert_eq!(err, None);
            let complete = ends.iter().filter(|&&end| end <= cut).count();
            assert_eq!(prefix[..], expected[..complete], "cut at {cut}");
            let (all, err) = run(bytes, &[cut], &Limits::default());
            assert_eq!((all, err), (expected.clone(), None), "cut at {cut}");
        }
    }
}

/// The error is the same wherever the input is cut.
fn assert_error_at_every_cut(input: &str, limits: &Limits, condition: &str) {
    let bytes = input.as_bytes();
    let (_, err) = run(bytes, &[], limits);
    let err = err.unwrap_or_else(|| panic!("{input:?} should fail"));
    assert_eq!(err.condition(), condition, "{input:?}: {err}");
    for cut in 0..=bytes.len() {
        let (_, e) = run(bytes, &[cut], limits);
        assert_eq!(
            e.as_ref().map(XmlError::condition),
            Some(condition),
            "{input:?} cut at {cut}"
        );
    }
}

#[test]
fn restricted_xml() {
    for body in [
        "<message><!-- c --></message>",
        "<!-- c -->",
        "<?pi x?>",
        "<message><?pi x?></message>",
        "<?xml version='1.0'?>",
        "<!DOCTYPE x>",
        "<message><!ENTITY x 'y'></message>",
        "<message>&foo;</message>",
        "<message a='&foo;'/>",
    ] {
        assert_error_at_every_cut(
            &format!("{HEADER}{body}"),
            &Limits::default(),
            "restricted-xml",
        );
    }
    for input in [
        "<!DOCTYPE stream><stream:stream>",
        " <?xml version='1.0'?><stream:stream>",
        "<?xml version='1.0'?><?xml version='1.0'?>",
        "<?xml-stylesheet href='a'?><stream:stream>",
    ] {
        assert_error_at_every_cut(input, &Limits::default(), "restricted-xml");
    }
}

#[test]
fn not_well_formed() {
    for body in [
        "<message></iq>",
        "<message a='1' a='2'/>",
        "<message a='<'/>",
        "<message a=1/>",
        "<p:message/>",
        "<message p:a='1'/>",
        "<message>\u{0}</message>",
        "<message>\u{FFFF}</message>",
        "text at stream level",
        "<message><<</message>",
        "< message/>",
        "<1message/>",
        "</nope>",
        "</stream>",
        "<![CDATA[x]]>",
        "<message>&#0;</message>",
        "<message>a & b</message>",
        "<message :x='1'/>",
        "<a:b:c/>",
    ] {
        assert_error_at_every_cut(
            &format!("{HEADER}{body}"),
            &Limits::default(),
            "not-well-formed",
        );
    }
    assert_error_at_every_cut("hello", &Limits::default(), "not-well-formed");
    assert_error_at_every_cut("</stream:stream>", &Limits::default(), "not-well-formed");
    let mut p = StreamParser::new(Limits::default());
    p.feed(HEADER.as_bytes()).expect("feed");
    p.feed(b"<message>\xff\xfe</message>").expect("feed");
    assert!(matches!(p.next_event(), Ok(Some(Event::StreamOpen(_)))));
    let e = p.next_event().expect_err("invalid UTF-8");
    assert_eq!(e.condition(), "not-well-formed");
    // Errors are sticky.
    assert_eq!(p.next_event(), Err(e.clone()));
    assert_eq!(p.feed(b"<presence/>"), Err(e));
    assert_eq!(p.buffered_len(), 0);
}

#[test]
fn header_errors() {
    let streams = "xmlns:stream='http://etherx.jabber.org/streams'";
    for (input, condition) in [
        (
            "<stream:stream xmlns:stream='urn:wrong' xmlns='jabber:client'>".to_owned(),
            "invalid-namespace",
        ),
        (
            "<foo xmlns='jabber:client'>".to_owned(),
            "invalid-namespace",
        ),
        (format!("<stream:foo {streams}>"), "bad-format"),
        (
            "<?xml version='1.0' encoding='latin1'?>".to_owned(),
            "bad-format",
        ),
        (
            format!("<stream:stream {streams} a='1' a='2'>"),
            "not-well-formed",
        ),
    ] {
        assert_error_at_every_cut(&input, &Limits::default(), condition);
    }
}

fn small_limits() -> Limits {
    Limits {
        max_stanza_bytes: 1024,
        max_depth: 4,
        max_attrs: 4,
        max_header_bytes: 512,
    }
}

#[test]
fn limits() {
    let limits = small_limits();
    let policy = |input: String| assert_error_at_every_cut(&input, &limits, "policy-violation");
    policy(format!(
        "{HEADER}<message><body>{}</body></message>",
        "x".repeat(2000)
    ));
    policy(format!("{HEADER}<message a='{}'/>", "x".repeat(2000)));
    policy(format!("{HEADER}<a><a><a><a><a></a></a></a></a></a>"));
    policy(format!("{HEADER}<a><a><a><a><a/></a></a></a></a>"));
    policy(format!("{HEADER}<a b='1' c='2' d='3' e='4' f='5'/>"));
    policy(format!("<stream:stream {}>", "a".repeat(600)));
    policy(format!("<?xml version='1.0' {}?>", " ".repeat(600)));
    policy(format!("{HEADER}</{}>", "a".repeat(2000)));
    // Exactly at the limits is fine.
    let (events, err) = run(
        format!("{HEADER}<a><a><a><a/></a></a></a><a b='1' c='2' d='3' e='4'/>").as_bytes(),
        &[],
        &limits,
    );
    assert_eq!((events.len(), err), (3, None));
    let body = "x".repeat(1024 - "<m></m>".len());
    let (events, err) = run(format!("{HEADER}<m>{body}</m>").as_bytes(), &[], &limits);
    assert_eq!((events.len(), err), (2, None));
}

#[test]
fn an_unfinished_stanza_is_refused_before_it_grows_past_the_limit() {
    let limits = small_limits();
    let mut p = StreamParser::new(limits.clone());
    p.feed(HEADER.as_bytes()).expect("header");
    assert!(matches!(p.next_event(), Ok(Some(Event::StreamOpen(_)))));
    p.feed(b"<message><body>").expect("feed");
    let chunk = [b'x'; 100];
    let err = loop {
        if let Err(e) = p.feed(&chunk).and_then(|()| p.next_event().map(|_| ())) {
            break e;
        }
        assert!(p.buffered_len() <= limits.max_stanza_bytes + chunk.len());
    };
    assert_eq!(err.condition(), "policy-violation");
    // Feeding without draining is refused too, once past the limit plus the bytes being fed.
    let mut p = StreamParser::new(limits.clone());
    p.feed(HEADER.as_bytes()).expect("header");
    assert!(matches!(p.next_event(), Ok(Some(Event::StreamOpen(_)))));
    p.feed(&[b' '; 1100])
        .expect("at most the limit plus this read");
    let e = p.feed(b" ").expect_err("held bytes past the limit");
    assert_eq!(e.condition(), "policy-violation");
}

#[test]
fn whitespace_keepalives_are_consumed() {
    let mut p = StreamParser::new(small_limits());
    p.feed(HEADER.as_bytes()).expect("header");
    assert!(matches!(p.next_event(), Ok(Some(Event::StreamOpen(_)))));
    for i in 0..100_000 {
        p.feed(if i % 2 == 0 { b" " } else { b"\n" })
            .expect("keepalive");
        assert_eq!(p.next_event(), Ok(None));
        assert_eq!(p.buffered_len(), 0);
    }
    p.feed(b" \r\n\t<message xml:lang='fr'/>\n").expect("feed");
    let Ok(Some(Event::Stanza(m))) = p.next_event() else {
        panic!("a stanza after the keepalives")
    };
    assert_eq!(m.attr("xml:lang"), Some("fr"));
    assert_eq!(p.buffered_len(), 1, "scanning stops at the event");
    assert_eq!(p.next_event(), Ok(None));
    assert_eq!(p.buffered_len(), 0);
}

#[test]
fn many_stanzas_in_one_read_are_not_moved_per_stanza() {
    let mut input = HEADER.as_bytes().to_vec();
    for _ in 0..50_000 {
        input.extend_from_slice(b"<presence/>");
    }
    input.extend_from_slice(b"<presence");
    let mut p = StreamParser::new(Limits::default());
    p.feed(&input).expect("feed");
    let len = p.buf.len();
    let mut count = 0;
    while let Some(event) = p.next_event().expect("valid") {
        count += 1;
        assert_eq!(p.buf.len(), len, "the buffer is not drained per event");
        assert!(matches!(event, Event::StreamOpen(_) | Event::Stanza(_)));
    }
    assert_eq!(count, 50_001);
    assert_eq!(p.buffered_len(), "<presence".len());
    p.feed(b"/>").expect("compacts, then appends");
    assert_eq!(p.buf.len(), "<presence/>".len());
    assert!(matches!(p.next_event(), Ok(Some(Event::Stanza(_)))));
    assert_eq!((p.buf.len(), p.buffered_len()), (0, 0));
}

#[test]
fn reset_drops_bytes_and_restart_keeps_them() {
    let mut p = StreamParser::new(Limits::default());
    p.feed(
        format!("{HEADER}<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>{HEADER}<presence/>")
            .as_bytes(),
    )
    .expect("feed");
    assert!(matches!(p.next_event(), Ok(Some(Event::StreamOpen(_)))));
    assert!(matches!(p.next_event(), Ok(Some(Event::Stanza(ref e))) if e.is("success", ns::SASL)));
    p.restart();
    assert!(
        matches!(p.next_event(), Ok(Some(Event::StreamOpen(_)))),
        "declaration allowed again"
    );
    assert!(matches!(p.next_event(), Ok(Some(Event::Stanza(ref e))) if e.name() == "presence"));
    p.feed(b"<iq").expect("feed");
    p.reset();
    assert_eq!(p.buffered_len(), 0);
    p.feed(HEADER.as_bytes()).expect("feed");
    assert!(matches!(p.next_event(), Ok(Some(Event::StreamOpen(_)))));
    p.feed(b"<!-- -->").expect("feed");
    assert!(p.next_event().is_err());
    p.reset();
    p.feed(HEADER.as_bytes())
        .expect("reset also clears an error");
    assert!(matches!(p.next_event(), Ok(Some(Event::StreamOpen(_)))));
}

#[test]
fn stream_close() {
    let input = "<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client'>\
        <presence/></s:stream >";
    let events = parse_whole(input).expect("valid");
    assert_eq!(events.last(), Some(&Event::StreamClose));
    let mut p = StreamParser::new(Limits::default());
    p.feed(input.as_bytes()).expect("feed");
    while p.next_event().expect("valid").is_some() {}
    p.feed(b"<message/>junk").expect("ignored after the close");
    assert_eq!(p.next_event(), Ok(None));
    assert_eq!(p.buffered_len(), 0);
    let e = parse_whole(&format!("{HEADER}<presence/></stream:stream2>")).expect_err("mismatch");
    assert_eq!(e.condition(), "not-well-formed");
}

#[test]
fn standalone_elements() {
    let limits = Limits::default();
    let el = parse_element(
        b" <open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='x' version='1.0'/>\n",
        &limits,
    )
    .expect("frame");
    assert!(el.is("open", ns::FRAMING));
    assert_eq!(el.attr("to"), Some("x"));
    assert_eq!(
        parse_element(b"<a/>", &limits).expect("no namespace").ns(),
        ""
    );
    for bad in [
        &b""[..],
        b"  ",
        b"<a/><b/>",
        b"<a/><b",
        b"<a/>x",
        b"<a>",
        b"</a>",
        b"x",
        b"<?xml version='1.0'?><a/>",
        b"<!-- c --><a/>",
    ] {
        assert!(
            parse_element(bad, &limits).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let small = Limits {
        max_stanza_bytes: 8,
        ..Limits::default()
    };
    let e = parse_element(b"<abcdefgh/>", &small).expect_err("too large");
    assert_eq!(e.condition(), "policy-violation");
}

/// parse → serialize → parse gives the same element, standalone and inside a stream.
#[test]
fn round_trips() {
    for fixture in [C2S, COMPONENT] {
        let events = parse_whole(fixture).expect("valid");
        let Event::StreamOpen(header) = &events[0] else {
            panic!("header first")
        };
        let mut stream = format!(
            "<stream:stream xmlns='{}' xmlns:stream='{}'>",
            header.default_ns,
            ns::STREAMS
        )
        .into_bytes();
        let mut stanzas = Vec::new();
        for event in &events {
            if let Event::Stanza(el) = event {
                let again = parse_element(&el.to_bytes(""), &Limits::default()).expect("reparse");
                assert_eq!(&again, el);
                assert_eq!(
                    parse_element(el.to_string().as_bytes(), &Limits::default()).as_ref(),
                    Ok(el)
                );
                el.write_to(&mut stream, &header.default_ns);
                stanzas.push(Event::Stanza(el.clone()));
            }
        }
        let (reparsed, err) = run(&stream, &[], &Limits::default());
        assert_eq!(err, None);
        assert_eq!(reparsed[1..], stanzas[..]);
    }
}
