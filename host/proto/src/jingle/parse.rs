//! The `<jingle/>` parser: a peer's element in, a typed `Jingle` or a `JingleError` out.
//!
//! Core (pure). Never panics on peer input; every list and every kept string is bounded
//! (`MAX_*` in mod.rs; a longer value is refused, a long reason text is cut); unknown
//! children are ignored (XMPP extensibility), but a known one in another namespace is refused:
//! `description` (RTP), `transport` (ICE-UDP), `source`/`ssrc-group` in a description (SSMA),
//! `fingerprint` (DTLS), `candidate` (ICE-UDP). Tests: jingle/tests.rs.

use std::str::FromStr;

use super::{
    Action, BridgeSession, Candidate, Content, Fingerprint, Jingle, JingleError, MAX_CANDIDATES,
    MAX_CONTENTS, MAX_FINGERPRINTS, MAX_GROUPS_PER_CONTENT, MAX_SOURCES_PER_CONTENT,
    MAX_SSRCS_PER_GROUP, MAX_VALUE_LEN, Media, Reason, Source, SsrcGroup, Transport, ns,
};
use crate::stanza::Jid;
use crate::xml::Element;

/// Parse a `<jingle xmlns='urn:xmpp:jingle:1'/>` element (the child of an iq).
///
/// # Errors
/// When the element is not Jingle, lacks `action`/`sid` or a required attribute of a known
/// child, holds a bad number or JID, a description/transport in a foreign namespace,
/// duplicate content names, or more entries than the `MAX_*` bounds.
pub fn parse(el: &Element) -> Result<Jingle, JingleError> {
    if !el.is("jingle", ns::JINGLE) {
        return Err(JingleError::NotJingle);
    }
    let action = Action::from_attr(req(el, "jingle", "action")?);
    let sid = req(el, "jingle", "sid")?.to_owned();
    let initiator = jid(el, "initiator")?;
    let responder = jid(el, "responder")?;

    let mut contents: Vec<Content> = Vec::new();
    for c in el.children().filter(|c| c.is("content", ns::JINGLE)) {
        if contents.len() == MAX_CONTENTS {
            return Err(JingleError::TooMany {
                what: "contents",
                limit: MAX_CONTENTS,
            });
        }
        let content = parse_content(c)?;
        if contents.iter().any(|o| o.name == content.name) {
            return Err(JingleError::DuplicateContent(trunc(&content.name, 64)));
        }
        contents.push(content);
    }

    let mut bundle = None;
    for g in el.children().filter(|c| c.name() == "group") {
        if g.ns() != ns::GROUPING {
            continue;
        }
        if req(g, "group", "semantics")? != "BUNDLE" {
            continue;
        }
        let mut names = Vec::new();
        for c in g.children().filter(|c| c.name() == "content") {
            if names.len() == MAX_CONTENTS {
                return Err(JingleError::TooMany {
                    what: "bundled contents",
                    limit: MAX_CONTENTS,
                });
            }
            names.push(req(c, "content", "name")?.to_owned());
        }
        bundle = Some(names);
    }

    let bridge_session = el
        .get_child("bridge-session", ns::FOCUS)
        .map(|b| {
            Ok::<_, JingleError>(BridgeSession {
                id: opt(b, "bridge-session", "id")?,
                restart: matches!(b.attr("restart"), Some("true" | "1")),
            })
        })
        .transpose()?;
    let ice_state = el
        .get_child("ice-state", ns::FOCUS)
        .map(|s| text(s, "ice-state"))
        .transpose()?;
    let reason = el.get_child("reason", ns::JINGLE).map(|r| Reason {
        condition: r
            .children()
            .find(|c| c.name() != "text")
            .map(|c| trunc(c.name(), MAX_VALUE_LEN))
            .unwrap_or_default(),
        // Informational: cut, not refused, so a long text cannot keep a session alive.
        text: r
            .get_child("text", ns::JINGLE)
            .map(|t| trunc(&t.text(), MAX_VALUE_LEN)),
    });

    Ok(Jingle {
        action,
        sid,
        initiator,
        responder,
        contents,
        bundle,
        bridge_session,
        ice_state,
        reason,
    })
}

fn parse_content(c: &Element) -> Result<Content, JingleError> {
    let name = req(c, "content", "name")?.to_owned();
    let mut media = Media::from_attr(&name);
    let mut sources = Vec::new();
    let mut groups = Vec::new();
    if let Some(d) = c.children().find(|d| d.name() == "description") {
        expect_ns(d, "description", ns::RTP)?;
        if let Some(m) = d.attr("media") {
            media = Media::from_attr(m);
        }
        for s in d.children().filter(|s| s.name() == "source") {
            expect_ns(s, "source", ns::SSMA)?;
            if sources.len() == MAX_SOURCES_PER_CONTENT {
                return Err(JingleError::TooMany {
                    what: "sources in a content",
                    limit: MAX_SOURCES_PER_CONTENT,
                });
            }
            sources.push(parse_source(s)?);
        }
        for g in d.children().filter(|g| g.name() == "ssrc-group") {
            expect_ns(g, "ssrc-group", ns::SSMA)?;
            if groups.len() == MAX_GROUPS_PER_CONTENT {
                return Err(JingleError::TooMany {
                    what: "ssrc-groups in a content",
                    limit: MAX_GROUPS_PER_CONTENT,
                });
            }
            let semantics = req(g, "ssrc-group", "semantics")?.to_owned();
            let mut ssrcs = Vec::new();
            for s in g.children().filter(|s| s.name() == "source") {
                if ssrcs.len() == MAX_SSRCS_PER_GROUP {
                    return Err(JingleError::TooMany {
                        what: "SSRCs in a group",
                        limit: MAX_SSRCS_PER_GROUP,
                    });
                }
                ssrcs.push(num(s, "source", "ssrc")?);
            }
            groups.push(SsrcGroup { semantics, ssrcs });
        }
    }
    let transport = match c.children().find(|t| t.name() == "transport") {
        None => None,
        Some(t) => {
            expect_ns(t, "transport", ns::ICE_UDP)?;
            Some(parse_transport(t)?)
        }
    };
    Ok(Content {
        name,
        media,
        sources,
        groups,
        transport,
    })
}

fn parse_source(s: &Element) -> Result<Source, JingleError> {
    let ssrc = num(s, "source", "ssrc")?;
    let param = |name: &str| {
        s.children()
            .find(|p| p.name() == "parameter" && p.attr("name") == Some(name))
            .and_then(|p| p.attr("value"))
    };
    // Old clients signal `mslabel` and `label` instead of `msid`.
    let msid =
        param("msid")
            .map(str::to_owned)
            .or_else(|| match (param("mslabel"), param("label")) {
                (Some(stream), Some(track)) => Some(format!("{stream} {track}")),
                _ => None,
            });
    if msid.as_ref().is_some_and(|m| m.len() > MAX_VALUE_LEN) {
        return Err(JingleError::TooLong {
            element: "parameter",
            attr: "msid",
        });
    }
    Ok(Source {
        ssrc,
        name: opt(s, "source", "name")?,
        video_type: opt(s, "source", "videoType")?,
        msid,
        owner: match s.get_child("ssrc-info", ns::JITMEET) {
            Some(i) => opt(i, "ssrc-info", "owner")?,
            None => None,
        },
    })
}

fn parse_transport(t: &Element) -> Result<Transport, JingleError> {
    let mut fingerprints = Vec::new();
    for f in t.children().filter(|f| f.name() == "fingerprint") {
        expect_ns(f, "fingerprint", ns::DTLS)?;
        if fingerprints.len() == MAX_FINGERPRINTS {
            return Err(JingleError::TooMany {
                what: "fingerprints",
                limit: MAX_FINGERPRINTS,
            });
        }
        fingerprints.push(Fingerprint {
            hash: req(f, "fingerprint", "hash")?.to_owned(),
            setup: opt(f, "fingerprint", "setup")?,
            value: text(f, "fingerprint")?,
        });
    }
    let mut candidates = Vec::new();
    for c in t.children().filter(|c| c.name() == "candidate") {
        expect_ns(c, "candidate", ns::ICE_UDP)?;
        if candidates.len() == MAX_CANDIDATES {
            return Err(JingleError::TooMany {
                what: "candidates",
                limit: MAX_CANDIDATES,
            });
        }
        candidates.push(parse_candidate(c)?);
    }
    Ok(Transport {
        ufrag: opt(t, "transport", "ufrag")?,
        pwd: opt(t, "transport", "pwd")?,
        fingerprints,
        candidates,
        web_socket: match t.get_child("web-socket", ns::COLIBRI) {
            Some(w) => opt(w, "web-socket", "url")?,
            None => None,
        },
    })
}

fn parse_candidate(c: &Element) -> Result<Candidate, JingleError> {
    const E: &str = "candidate";
    Ok(Candidate {
        component: num(c, E, "component")?,
        foundation: req(c, E, "foundation")?.to_owned(),
        generation: opt_num(c, E, "generation")?,
        id: opt(c, E, "id")?,
        network: opt_num(c, E, "network")?,
        protocol: req(c, E, "protocol")?.to_owned(),
        priority: num(c, E, "priority")?,
        ip: req(c, E, "ip")?.to_owned(),
        port: num(c, E, "port")?,
        kind: req(c, E, "type")?.to_owned(),
        rel_addr: opt(c, E, "rel-addr")?,
        rel_port: opt_num(c, E, "rel-port")?,
        tcptype: opt(c, E, "tcptype")?,
    })
}

/// `el` (named `element`) is in `want`.
fn expect_ns(el: &Element, element: &'static str, want: &str) -> Result<(), JingleError> {
    if el.ns() == want {
        Ok(())
    } else {
        Err(JingleError::WrongNamespace {
            element,
            ns: trunc(el.ns(), 64),
        })
    }
}

/// A required attribute, at most `MAX_VALUE_LEN` bytes.
fn req<'a>(
    el: &'a Element,
    element: &'static str,
    attr: &'static str,
) -> Result<&'a str, JingleError> {
    let v = el
        .attr(attr)
        .ok_or(JingleError::MissingAttr { element, attr })?;
    if v.len() > MAX_VALUE_LEN {
        return Err(JingleError::TooLong { element, attr });
    }
    Ok(v)
}

/// An optional attribute, at most `MAX_VALUE_LEN` bytes.
fn opt(
    el: &Element,
    element: &'static str,
    attr: &'static str,
) -> Result<Option<String>, JingleError> {
    el.attr(attr)
        .map(|_| req(el, element, attr).map(str::to_owned))
        .transpose()
}

/// Trimmed text content, at most `MAX_VALUE_LEN` bytes.
fn text(el: &Element, element: &'static str) -> Result<String, JingleError> {
    let t = el.text();
    let t = t.trim();
    if t.len() > MAX_VALUE_LEN {
        return Err(JingleError::TooLong {
            element,
            attr: "text",
        });
    }
    Ok(t.to_owned())
}

fn num<T: FromStr>(
    el: &Element,
    element: &'static str,
    attr: &'static str,
) -> Result<T, JingleError> {
    opt_num(el, element, attr)?.ok_or(JingleError::MissingAttr { element, attr })
}

fn opt_num<T: FromStr>(
    el: &Element,
    element: &'static str,
    attr: &'static str,
) -> Result<Option<T>, JingleError> {
    let Some(v) = el.attr(attr) else {
        return Ok(None);
    };
    // Digits only: `FromStr` would also take a leading `+`.
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_number(element, attr, v));
    }
    v.parse()
        .map(Some)
        .map_err(|_| bad_number(element, attr, v))
}

fn bad_number(element: &'static str, attr: &'static str, v: &str) -> JingleError {
    JingleError::BadNumber {
        element,
        attr,
        value: trunc(v, 64),
    }
}

fn jid(el: &Element, attr: &'static str) -> Result<Option<Jid>, JingleError> {
    el.attr(attr)
        .map(|s| Jid::parse(s).map_err(|_| JingleError::BadJid(attr)))
        .transpose()
}

/// At most `max` bytes of a peer's string (cut at a character boundary).
fn trunc(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}
