//! Lilt's selective forwarding unit (media path of the Jitsi Videobridge role).
//!
//! Owns: nothing yet. The SFU (ICE/DTLS/SRTP endpoints, RTP/RTCP forwarding by SSRC, the
//! colibri bridge channel) arrives with the focus/SFU issue; see `docs/architecture.md`.
//! This crate exists now so that the workspace layout in docs/architecture.md is stable and other
//! crates can depend on it without a later reshuffle.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
