//! Hard limits the splitter enforces on what a peer sends: a stanza's bytes, nesting depth,
//! attributes per element, header size.
//!
//! Core (pure data). Spec: RFC 6120 §13.12 (resource exhaustion); exceeding a limit is the
//! `policy-violation` stream error (§4.9.3.14).
//! Invariants: none beyond the field docs; `config` may override the defaults per listener.
//! Tests: splitter.rs and reader.rs `mod tests` (`limits`, `attribute_limit_…`).

/// Parser limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest top-level element (stanza) in bytes, as received. Defaults to 256 KiB.
    pub max_stanza_bytes: usize,
    /// Deepest nesting inside a stanza; the stanza itself is level 1. Defaults to 64. Keep it
    /// in the hundreds at most: dropping, comparing and serializing a tree recurse.
    pub max_depth: usize,
    /// Most attributes on one element, counting `xmlns:p` declarations (and those copied onto
    /// it for its prefixed attributes) but not the default `xmlns`. Defaults to 64.
    pub max_attrs: usize,
    /// Largest XML declaration or stream header, each, in bytes. Defaults to 8 KiB.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    /// 256 KiB stanzas, depth 64, 64 attributes, 8 KiB headers.
    fn default() -> Self {
        Limits {
            max_stanza_bytes: 256 * 1024,
            max_depth: 64,
            max_attrs: 64,
            max_header_bytes: 8 * 1024,
        }
    }
}
