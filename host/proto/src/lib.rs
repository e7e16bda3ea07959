//! Lilt's protocol cores, sans I/O, the way quinn-proto sits under quinn: everything here takes
//! bytes, stanzas, answers, time and random seeds as input and returns what should happen. No
//! module opens a socket, spawns a task, reads a clock or asks the OS for randomness; the
//! `lilt` crate is the shell that does (docs/architecture.md).
//!
//! * `xml`: the resumable stream splitter with hard limits, `Element`, serialization.
//! * `sasl`: ANONYMOUS, PLAIN, SCRAM-SHA-1/256 server state machines (decisions from outside).
//! * `stanza`: JIDs, stanza kinds, stanza and stream errors, shared fan-out stanzas.
//! * `stream`: the c2s stream (RFC 6120 negotiation, XEP-0198) and the XEP-0114 component
//!   stream, with WebSocket/BOSH framing.
//! * `bosh`: XEP-0124/0206 sessions; `entropy`: the randomness the shell injects.
//! * `router`: the session registry and delivery rules; `muc`: XEP-0045 rooms with Jitsi's
//!   conventions; `hooks`: what these cores know of plugins (subscriptions, calls, verdicts).
//! * `jingle`: the Jingle the focus speaks to lib-jitsi-meet (parse, build, endpoint sources).
//!
//! Every file opens with what it owns, the spec it follows and where it is tested.

pub mod bosh;
pub mod entropy;
pub mod focus;
pub mod hooks;
pub mod identity;
pub mod jingle;
pub mod muc;
pub mod router;
pub mod sasl;
pub mod stanza;
pub mod stream;
pub mod xml;
