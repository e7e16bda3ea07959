//! XML for XMPP streams: the resumable stream splitter, the owned `Element` tree, its reader and
//! writer, namespace constants and limits.
//!
//! Core (sans-IO): bytes in, `Event`s out; no IO, no clock. Self-contained: only std, quick-xml,
//! bytes and thiserror, nothing else from this crate.
//! Spec: RFC 6120 §4 (streams), §11 (XML usage); XML 1.0; Namespaces in XML 1.0.
//! Invariants: quick-xml borrows the read buffer only while one complete stanza becomes an owned
//! `Element` (reader.rs); the splitter is O(n) in bytes received however they are chunked and
//! never holds more than its limits plus one read (splitter.rs); serializing a parsed element
//! and parsing it again gives an equal element (writer.rs).
//! Tests: `mod tests` in each file; fuzz/ runs `check_splitter` (libFuzzer, or the stable
//! `smoke` binary).

mod element;
mod error;
mod limits;
pub mod ns;
mod reader;
mod splitter;
mod writer;

pub use element::{Element, ElementBuilder, Node};
pub use error::XmlError;
pub use limits::Limits;
pub use splitter::{Event, StreamHeader, StreamParser, parse_element};
pub use writer::{escape_attr, escape_text};
