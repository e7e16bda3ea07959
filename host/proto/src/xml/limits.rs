//! Hard limits the splitter enforces on what a peer sends (RFC 6120 §13.12 resource
//! exhaustion): a stanza's bytes, nesting depth, attributes per element, elements per stanza
//! (a parsed element costs many times its wire size), header size.
//!
//! Pure data. Defaults suit c2s; `config::Limits` overrides them.

/// Parser limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest top-level element in bytes.
    pub max_stanza_bytes: usize,
    /// Deepest nesting inside a stanza (the stanza itself is depth 1).
    pub max_depth: usize,
    /// Most attributes on one element (namespace declarations included).
    pub max_attrs: usize,
    /// Most elements in one stanza, itself included (for a BOSH body, in the whole body).
    pub max_elements: usize,
    /// Largest stream header in bytes.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    /// 256 KiB stanzas, depth 64, 64 attributes, 4096 elements, 8 KiB headers.
    fn default() -> Self {
        Limits {
            max_stanza_bytes: 256 * 1024,
            max_depth: 64,
            max_attrs: 64,
            max_elements: 4096,
            max_header_bytes: 8 * 1024,
        }
    }
}
