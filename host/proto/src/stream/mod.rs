//! Stream state machines: client-to-server (`c2s`, RFC 6120) with XEP-0198 stream management
//! (`sm`), and external components (`component`, XEP-0114); stream error conditions (`error`).
//!
//! Core (sans-IO): each stream takes bytes, answers and time as `Input`, and returns `Output`s.

pub mod c2s;
pub mod component;
pub mod error;
pub mod framing;
pub mod sm;

#[cfg(test)]
mod tests;
