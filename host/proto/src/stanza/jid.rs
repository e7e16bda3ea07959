//! JIDs (RFC 7622): parsing, normalization and the bare/full distinction routing relies on.
//!
//! Core (pure). Normalization is a conservative subset of PRECIS: localpart and domainpart are
//! case-folded (Unicode lowercase), the resourcepart is kept as sent; forbidden localpart
//! characters, control characters, whitespace in local/domain parts and parts over 1023 bytes
//! are refused. Full PRECIS (width mapping, NFC, bidi rules) is not implemented.
//!
//! A `Jid` is one shared allocation: the normalized text `[node@]domain[/resource]` behind an
//! `Arc<str>`, plus where its parts end. Cloning it (once per MUC recipient, per routing step)
//! is a reference-count increment; `Display` writes the stored text. The text determines the
//! parts (neither localpart nor domainpart may hold `@` or `/`), so equality, hashing and
//! ordering are those of the (node, domain, resource) triple, as when the parts were separate
//! strings. Tests: `mod tests` below.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Longest part of a JID in bytes (RFC 7622 §3.2–3.4).
const MAX_PART: usize = 1023;

/// A parsed, normalized JID.
#[derive(Clone)]
pub struct Jid {
    /// The normalized text, `[node@]domain[/resource]`.
    text: Arc<str>,
    /// Bytes of the localpart; 0 when there is none (a localpart is never empty).
    node_len: u32,
    /// Offset just past the domainpart: `text.len()` when there is no resource.
    domain_end: u32,
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

/// `s` lowercased, borrowed when lowercasing leaves it unchanged (the usual case: ASCII
/// without capitals).
fn lowercase(s: &str) -> std::borrow::Cow<'_, str> {
    if s.is_ascii() && !s.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(s.to_lowercase())
    }
}

/// An offset into a JID's text. Parsed parts are at most 1023 bytes each, and the callers of
/// the unchecked constructors guarantee valid parts, so this cannot fail.
fn offset(n: usize) -> u32 {
    u32::try_from(n).expect("JID parts are at most 1023 bytes")
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
        let domain = lowercase(domain);
        if !valid_domain(&domain) {
            return Err(JidError("bad domainpart"));
        }
        let node = match node {
            Some(n) => {
                let n = lowercase(n);
                if !valid_node(&n) {
                    return Err(JidError("bad localpart"));
                }
                Some(n)
            }
            None => None,
        };
        if resource.is_some_and(|r| !valid_resource(r)) {
            return Err(JidError("bad resourcepart"));
        }
        let node_len = node.as_ref().map_or(0, |n| n.len());
        let domain_end = node.as_ref().map_or(0, |n| n.len() + 1) + domain.len();
        let unchanged = matches!(domain, std::borrow::Cow::Borrowed(_))
            && !matches!(node, Some(std::borrow::Cow::Owned(_)));
        let text: Arc<str> = if unchanged {
            // Already normalized: the input is the text.
            Arc::from(s)
        } else {
            Self::join(node.as_deref(), &domain, resource).into()
        };
        Ok(Jid {
            text,
            node_len: offset(node_len),
            domain_end: offset(domain_end),
        })
    }

    /// `[node@]domain[/resource]`.
    fn join(node: Option<&str>, domain: &str, resource: Option<&str>) -> String {
        let len =
            node.map_or(0, |n| n.len() + 1) + domain.len() + resource.map_or(0, |r| r.len() + 1);
        let mut text = String::with_capacity(len);
        if let Some(n) = node {
            text.push_str(n);
            text.push('@');
        }
        text.push_str(domain);
        if let Some(r) = resource {
            text.push('/');
            text.push_str(r);
        }
        text
    }

    /// A domain JID. The caller guarantees `domain` is valid and lowercase.
    pub fn domain_jid(domain: &str) -> Jid {
        Jid {
            text: Arc::from(domain),
            node_len: 0,
            domain_end: offset(domain.len()),
        }
    }

    /// `node@domain`. The caller guarantees both are valid and normalized.
    pub fn bare_from(node: &str, domain: &str) -> Jid {
        Jid {
            text: Self::join(Some(node), domain, None).into(),
            node_len: offset(node.len()),
            domain_end: offset(node.len() + 1 + domain.len()),
        }
    }

    /// The whole JID as text (what `Display` writes), without allocating.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The localpart.
    pub fn node(&self) -> Option<&str> {
        match self.node_len as usize {
            0 => None,
            n => Some(&self.text[..n]),
        }
    }

    /// The domainpart.
    pub fn domain(&self) -> &str {
        let start = match self.node_len as usize {
            0 => 0,
            n => n + 1,
        };
        &self.text[start..self.domain_end as usize]
    }

    /// The resourcepart.
    pub fn resource(&self) -> Option<&str> {
        self.text.get(self.domain_end as usize + 1..)
    }

    /// True when there is no resource.
    pub fn is_bare(&self) -> bool {
        self.domain_end as usize == self.text.len()
    }

    /// This JID without its resource: a clone when it has none, else one allocation (no
    /// re-validation).
    pub fn bare(&self) -> Jid {
        if self.is_bare() {
            return self.clone();
        }
        Jid {
            text: Arc::from(&self.text[..self.domain_end as usize]),
            node_len: self.node_len,
            domain_end: self.domain_end,
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
        let bare = &self.text[..self.domain_end as usize];
        let mut text = String::with_capacity(bare.len() + 1 + resource.len());
        text.push_str(bare);
        text.push('/');
        text.push_str(resource);
        Ok(Jid {
            text: text.into(),
            node_len: self.node_len,
            domain_end: self.domain_end,
        })
    }

    /// The (node, domain, resource) triple that equality, hashing and ordering are defined on.
    fn parts(&self) -> (Option<&str>, &str, Option<&str>) {
        (self.node(), self.domain(), self.resource())
    }
}

impl PartialEq for Jid {
    fn eq(&self, other: &Jid) -> bool {
        // Same offsets and same text means same parts, and the converse.
        self.node_len == other.node_len
            && self.domain_end == other.domain_end
            && (Arc::ptr_eq(&self.text, &other.text) || self.text == other.text)
    }
}

impl Eq for Jid {}

impl Hash for Jid {
    /// Hashes the parts exactly as the former `#[derive(Hash)]` on
    /// `(Option<String>, String, Option<String>)` fields did.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.node().hash(state);
        self.domain().hash(state);
        self.resource().hash(state);
    }
}

impl PartialOrd for Jid {
    fn partial_cmp(&self, other: &Jid) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Jid {
    /// By localpart (none first), then domainpart, then resourcepart (none first): the order
    /// the former derived `Ord` gave, which `BTreeSet<Jid>` iteration relies on.
    fn cmp(&self, other: &Jid) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}

impl fmt::Debug for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jid")
            .field("node", &self.node())
            .field("domain", &self.domain())
            .field("resource", &self.resource())
            .finish()
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
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

    fn hash_of(j: &Jid) -> u64 {
        use std::collections::hash_map::DefaultHasher;
        let mut h = DefaultHasher::new();
        j.hash(&mut h);
        h.finish()
    }

    /// The former layout's fields, for checking hash and order against it.
    #[derive(Hash, PartialEq, Eq, PartialOrd, Ord, Debug)]
    struct Triple {
        node: Option<String>,
        domain: String,
        resource: Option<String>,
    }

    fn triple(j: &Jid) -> Triple {
        Triple {
            node: j.node().map(str::to_owned),
            domain: j.domain().to_owned(),
            resource: j.resource().map(str::to_owned),
        }
    }

    #[test]
    fn one_shared_allocation_no_bigger() {
        // Before: three `String`s (72 bytes on 64-bit).
        assert!(std::mem::size_of::<Jid>() <= 3 * std::mem::size_of::<String>());
        #[cfg(target_pointer_width = "64")]
        assert_eq!(std::mem::size_of::<Jid>(), 24);
        assert_eq!(
            std::mem::size_of::<Jid>(),
            std::mem::size_of::<Option<Jid>>()
        );
        let j = Jid::parse("a@b/c").expect("valid");
        let c = j.clone();
        assert!(Arc::ptr_eq(&j.text, &c.text));
        let bare = Jid::parse("a@b").expect("valid");
        assert!(Arc::ptr_eq(&bare.text, &bare.bare().text));
    }

    #[test]
    fn parts_and_text_of_every_shape() {
        for (s, node, domain, resource) in [
            ("b", None, "b", None),
            ("b/c", None, "b", Some("c")),
            ("a@b", Some("a"), "b", None),
            ("a@b/c", Some("a"), "b", Some("c")),
            ("A@B/C@D/E", Some("a"), "b", Some("C@D/E")),
            ("Ü@SS.Example/Ω", Some("ü"), "ss.example", Some("Ω")),
        ] {
            let j = Jid::parse(s).expect("valid");
            assert_eq!(
                (j.node(), j.domain(), j.resource()),
                (node, domain, resource),
                "{s}"
            );
            assert_eq!(j.is_bare(), resource.is_none());
            let text = format!(
                "{}{domain}{}",
                node.map(|n| format!("{n}@")).unwrap_or_default(),
                resource.map(|r| format!("/{r}")).unwrap_or_default()
            );
            assert_eq!(j.to_string(), text);
            assert_eq!(j.as_str(), text);
            assert_eq!(format!("{j}"), text);
        }
    }

    #[test]
    fn equal_however_built() {
        let parsed = Jid::parse("Juliet@Example.com/balcony").expect("valid");
        let normal = Jid::parse("juliet@example.com/balcony").expect("valid");
        let built = Jid::bare_from("juliet", "example.com")
            .with_resource("balcony")
            .expect("resource");
        let rebuilt = Jid::parse("juliet@example.com/other")
            .expect("valid")
            .bare()
            .with_resource("balcony")
            .expect("resource");
        for j in [&normal, &built, &rebuilt] {
            assert_eq!(&parsed, j);
            assert_eq!(hash_of(&parsed), hash_of(j));
            assert_eq!(parsed.cmp(j), Ordering::Equal);
        }
        let domain = Jid::domain_jid("example.com");
        assert_eq!(domain, Jid::parse("EXAMPLE.com").expect("valid"));
        assert_eq!(domain, Jid::parse("example.com/r").expect("valid").bare());
        assert_ne!(domain, Jid::parse("example.com/r").expect("valid"));
        assert_ne!(parsed.bare(), parsed);
        assert_eq!(parsed.bare(), Jid::bare_from("juliet", "example.com"));
        assert_eq!(
            hash_of(&parsed.bare()),
            hash_of(&Jid::bare_from("juliet", "example.com"))
        );
    }

    #[test]
    fn bare_and_with_resource() {
        let full = Jid::parse("a@b/r1").expect("valid");
        let bare = full.bare();
        assert!(bare.is_bare());
        assert_eq!(bare.to_string(), "a@b");
        assert_eq!(bare.resource(), None);
        assert_eq!(bare.bare(), bare);
        let other = full.with_resource("r2/x").expect("resource");
        assert_eq!(other.to_string(), "a@b/r2/x");
        assert_eq!(other.resource(), Some("r2/x"));
        assert_eq!(other.bare(), bare);
        assert!(full.with_resource("").is_err());
        assert!(full.with_resource("\u{7}").is_err());
        assert!(full.with_resource(&"r".repeat(1024)).is_err());
        let d = Jid::parse("b")
            .expect("valid")
            .with_resource("r")
            .expect("resource");
        assert_eq!((d.node(), d.domain(), d.resource()), (None, "b", Some("r")));
    }

    #[test]
    fn hash_debug_and_order_as_the_former_fields() {
        let mut jids: Vec<Jid> = [
            "b", "a@b", "a@b/r", "a@b/q", "b/r", "a@c", "ab@b", "a@b.c", "z", "a@a/z", "a.b@b",
            "b/", "a@b/r/s", "a@b-c", "a-b@b",
        ]
        .into_iter()
        .filter_map(|s| Jid::parse(s).ok())
        .collect();
        for j in &jids {
            assert_eq!(hash_of(j), {
                use std::collections::hash_map::DefaultHasher;
                let mut h = DefaultHasher::new();
                triple(j).hash(&mut h);
                h.finish()
            });
            let t = triple(j);
            assert_eq!(
                format!("{j:?}"),
                format!("{t:?}").replacen("Triple", "Jid", 1),
                "Debug as derived on the former fields"
            );
        }
        let mut triples: Vec<Triple> = jids.iter().map(triple).collect();
        jids.sort();
        triples.sort();
        assert_eq!(jids.iter().map(triple).collect::<Vec<_>>(), triples);
        let set: std::collections::BTreeSet<Jid> = jids.iter().cloned().collect();
        assert_eq!(set.iter().map(triple).collect::<Vec<_>>(), triples);
    }
}
