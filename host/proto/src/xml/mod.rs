//! XML for XMPP streams: the resumable stream splitter, the owned `Element` tree, its
//! serializer, namespace constants and limits.
//!
//! Core (sans-IO). quick-xml borrows the read buffer only while one complete stanza is turned
//! into an owned `Element`; everything else owns its data. Tests: `mod tests` in each file;
//! fuzzing in `fuzz/`.

mod element;
mod limits;
pub mod ns;
mod splitter;

pub use element::{Element, ElementBuilder, Node, escape_attr, escape_text};
pub use limits::Limits;
pub use splitter::{Event, StreamHeader, StreamParser, XmlError, parse_element};
