//! JIDs (RFC 7622): parsing, normalization and the bare/full distinction routing relies on.
//!
//! Core (pure). Normalization is a conservative subset of PRECIS: localpart and domainpart are
//! case-folded (Unicode lowercase), the resourcepart is kept as sent; forbidden localpart
//! characters, control characters, whitespace in local/domain parts and parts over 1023 bytes
//! are refused. Full PRECIS (width mapping, NFC, bidi rules) is not implemented.
//! Tests: `mod tests` below.

use std::fmt;

/// Longest part of a JID in bytes (RFC 7622 §3.2–3.4).
const MAX_PART: usize = 1023;

/// A parsed, normalized JID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Jid {
    node: Option<String>,
    domain: String,
    resource: Option<String>,
}

/// Why a JID string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed JID: {0}")]
pub struct JidError(&'static str);

/// Is `d` acceptable as a domainpart (after lowercasing)?
pub fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= MAX_PART
        && !d.starts_with('.')
        && !d.ends_with('.')
        && !d.contains("..")
        && d.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !"@/\\\"&'<>:".contains(c))
}

/// Is `n` acceptable as a localpart?
pub fn valid_node(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= MAX_PART
        && n.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !"\"&'/:<>@".contains(c))
}

fn valid_resource(r: &str) -> bool {
    !r.is_empty() && r.len() <= MAX_PART && r.chars().all(|c| !c.is_control())
}

impl Jid {
    /// Parse and normalize.
    ///
    /// # Errors
    /// When a part is empty, too long or holds forbidden characters.
    pub fn parse(s: &str) -> Result<Jid, JidError> {
        let (rest, resource) = match s.find('/') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        let (node, domain) = match rest.find('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let domain = domain.to_lowercase();
        if !valid_domain(&domain) {
            return Err(JidError("bad domainpart"));
        }
        let node = match node {
            Some(n) => {
                let n = n.to_lowercase();
                if !valid_node(&n) {
                    return Err(JidError("bad localpart"));
                }
                Some(n)
            }
            None => None,
        };
        let resource = match resource {
            Some(r) if valid_resource(r) => Some(r.to_owned()),
            Some(_) => return Err(JidError("bad resourcepart")),
            None => None,
        };
        Ok(Jid {
            node,
            domain,
            resource,
        })
    }

    /// A domain JID. The caller guarantees `domain` is valid and lowercase.
    pub fn domain_jid(domain: &str) -> Jid {
        Jid {
            node: None,
            domain: domain.to_owned(),
            resource: None,
        }
    }

    /// `node@domain`. The caller guarantees both are valid and normalized.
    pub fn bare_from(node: &str, domain: &str) -> Jid {
        Jid {
            node: Some(node.to_owned()),
            domain: domain.to_owned(),
            resource: None,
        }
    }

    /// The localpart.
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// The domainpart.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The resourcepart.
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// True when there is no resource.
    pub fn is_bare(&self) -> bool {
        self.resource.is_none()
    }

    /// This JID without its resource.
    pub fn bare(&self) -> Jid {
        Jid {
            node: self.node.clone(),
            domain: self.domain.clone(),
            resource: None,
        }
    }

    /// This JID with `resource`.
    ///
    /// # Errors
    /// When the resource is empty, too long or holds control characters.
    pub fn with_resource(&self, resource: &str) -> Result<Jid, JidError> {
        if !valid_resource(resource) {
            return Err(JidError("bad resourcepart"));
        }
        Ok(Jid {
            node: self.node.clone(),
            domain: self.domain.clone(),
            resource: Some(resource.to_owned()),
        })
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = &self.node {
            write!(f, "{n}@")?;
        }
        f.write_str(&self.domain)?;
        if let Some(r) = &self.resource {
            write!(f, "/{r}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Jid {
    type Err = JidError;
    fn from_str(s: &str) -> Result<Jid, JidError> {
        Jid::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalizes() {
        let j = Jid::parse("Juliet@Example.COM/Balcony/Garden").expect("valid");
        assert_eq!(j.node(), Some("juliet"));
        assert_eq!(j.domain(), "example.com");
        assert_eq!(j.resource(), Some("Balcony/Garden"));
        assert_eq!(j.to_string(), "juliet@example.com/Balcony/Garden");
        assert_eq!(j.bare().to_string(), "juliet@example.com");
        assert!(Jid::parse("example.com").expect("domain").is_bare());
    }

    #[test]
    fn refuses_bad_parts() {
        for bad in [
            "",
            "@example.com",
            "a@",
            "a@b/",
            "a b@c",
            "a@b c",
            "a\"b@c",
            "x@.com",
            "x@a..b",
            "a@b/\u{0}",
        ] {
            assert!(Jid::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let long = "a".repeat(1024);
        assert!(Jid::parse(&format!("{long}@x")).is_err());
    }

    #[test]
    fn round_trips() {
        for s in ["a@b", "a@b/c", "b", "b/c", "ü@ß.example/Ω"] {
            let j = Jid::parse(s).expect("valid");
            assert_eq!(Jid::parse(&j.to_string()).expect("reparse"), j);
        }
    }
}
