//! Lilt's selective forwarding unit (media path of the Jitsi Videobridge role).
//!
//! Owns: the sans-IO SFU core ([`Sfu`]) that terminates ICE, DTLS and SRTP for every browser
//! endpoint on one shared UDP port and forwards RTP/RTCP between the endpoints of a conference by
//! SSRC (with its own receiver reports and keyframe requests towards senders, and dominant-speaker
//! detection); its colibri2-shaped control API; and a thin tokio shell ([`shell`], feature `shell`) that
//! binds the socket and drives the core with real time. The [`client`] module is a synthetic
//! browser-like endpoint (ICE controlled, DTLS client, SRTP) used by the tests and the bench.
//!
//! Protocol machinery comes from the webrtc-rs sans-IO crates (`rtc-ice`, `rtc-dtls`,
//! `rtc-srtp`); see `docs/sfu.md` for the design and its measured figures.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bwe;
mod cert;
pub mod client;
pub mod demux;
mod rate;
pub mod recv;
mod rng;
pub mod rtcp;
pub mod rtp;
mod sfu;
#[cfg(feature = "shell")]
pub mod shell;
pub mod simulcast;
pub mod speaker;
mod transport;
mod twcc;
mod types;

pub use cert::DtlsCertificate;
pub use rng::SfuRng;
pub use sfu::{Sfu, SfuConfig, TRANSPORT_CC_EXTENSION};
pub use speaker::SpeakerConfig;
pub use transport::SRTP_PROFILES;
pub use types::*;
