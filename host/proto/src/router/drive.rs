//! The router driven the way every core is: one `Input` at a time through `handle_input`,
//! then every effect drained through `poll_output` (deliveries, plugin calls, account lookups,
//! SFU requests, stanzas for other shards). The shell's loop is the same for each input, and
//! what the shell feeds back (a bounce for a full mailbox, a refused plugin call's verdict)
//! is one more input.
//!
//! Configuration and questions with an immediate answer (`bind`, `enable_resumption`,
//! `claim_resumption`, `add_component`, `add_vhost`, `remove_vhost`, `set_extensions`,
//! `muc_counts`) stay plain methods, as a rustls connection's accessors do.
//!
//! Core (sans-IO): time comes in with each input. Invariants: outputs leave in the order the
//! input caused them within each kind, deliveries first; nothing is dropped between
//! `handle_input` and `poll_output`. Tests: router/tests.rs.

use std::sync::Arc;

use super::{AccountLookup, Delivery, EndpointId, Forward, Router};
use crate::focus::{BridgeRequest, LocalTransport};
use crate::hooks::{Ask, PluginCall, Verdict};
use crate::identity::Identity;
use crate::stanza::{Jid, Stanza};
use crate::xml::Element;

/// One input to the router.
#[derive(Debug)]
pub enum Input {
    /// A stanza a client or component sent (its `from` already checked, its addresses parsed
    /// by the stream core): the sender's vhost's pre-routing hooks see it first when it has
    /// any.
    Inbound(Stanza),
    /// A stanza to route as it is (no hooks): an error the shell made, say.
    Stanza(Element),
    /// The pre-routing hooks' verdict on a stanza of a `PluginCall::Stanza`.
    Verdict {
        /// The stanza, as the call carried it.
        stanza: Stanza,
        /// The verdict.
        verdict: Verdict,
    },
    /// The verdict on a parked MUC join.
    MucVerdict {
        /// The parked join.
        ask: Ask,
        /// The verdict.
        verdict: Verdict,
    },
    /// A stanza a plugin sent, `depth` plugin hops after the peer's stanza behind it.
    FromPlugin {
        /// The stanza (its `from` checked by the plugin host).
        stanza: Element,
        /// Hops so far.
        depth: u8,
    },
    /// What another shard forwarded here.
    Forwarded(Forward),
    /// Another shard bound this session (what its auth plugin said, for the rooms here).
    BoundElsewhere {
        /// The session.
        full: Jid,
        /// Its identity.
        identity: Option<Arc<Identity>>,
    },
    /// A session another shard owned ended.
    GoneElsewhere {
        /// The session.
        full: Jid,
    },
    /// A session of this shard ended for good.
    Unbind {
        /// Its JID.
        full: Jid,
        /// Its endpoint.
        id: EndpointId,
    },
    /// The answer to an `AccountLookup`.
    AccountChecked {
        /// The iq the lookup carried.
        stanza: Element,
        /// Whether the account exists.
        exists: bool,
    },
    /// The SFU's answer to a focus's `BridgeRequest::Allocate`.
    Allocated {
        /// The focus's vhost.
        vhost: String,
        /// The conference id on the SFU.
        conference: String,
        /// The endpoint id.
        endpoint: String,
        /// Its transport, or why there is none.
        transport: Result<LocalTransport, String>,
    },
}

/// One effect for the shell.
#[derive(Debug)]
pub enum Output {
    /// Hand this stanza to this endpoint's mailbox.
    Deliver(Delivery),
    /// Hand this to another shard.
    Forward {
        /// The shard.
        shard: usize,
        /// What to hand it.
        forward: Forward,
    },
    /// Make this plugin call (its answer comes back as `Verdict`, `MucVerdict` or
    /// `FromPlugin` inputs).
    Call(PluginCall),
    /// Ask the vhost's auth plugin whether an account exists (answer: `AccountChecked`).
    Lookup(AccountLookup),
    /// Ask the SFU (answer: `Allocated`, for an allocation).
    Bridge {
        /// The asking focus's vhost.
        vhost: String,
        /// The request.
        request: BridgeRequest,
    },
}

impl Router {
    /// Feed one input; then drain `poll_output`.
    pub fn handle_input(&mut self, now_ms: u64, input: Input) {
        self.set_clock(now_ms);
        let deliveries = match input {
            Input::Inbound(stanza) => self.route_inbound(stanza),
            Input::Stanza(stanza) => self.route(stanza),
            Input::Verdict { stanza, verdict } => self.resume_stanza(stanza, verdict),
            Input::MucVerdict { ask, verdict } => self.resume_muc(&ask, verdict),
            Input::FromPlugin { stanza, depth } => self.route_from_plugin(stanza, depth),
            Input::Forwarded(Forward::Route { stanza, depth }) => {
                self.route_forwarded(stanza, depth)
            }
            Input::Forwarded(Forward::Deliver(items)) => self.deliver_forwarded(items),
            Input::BoundElsewhere { full, identity } => {
                self.remember_identity(&full, identity);
                Vec::new()
            }
            Input::GoneElsewhere { full } => self.session_gone_elsewhere(&full),
            Input::Unbind { full, id } => self.unbind(&full, id),
            Input::AccountChecked { stanza, exists } => self.account_checked(stanza, exists),
            Input::Allocated {
                vhost,
                conference,
                endpoint,
                transport,
            } => self.bridge_allocated(&vhost, &conference, &endpoint, transport),
        };
        self.out_deliveries.extend(deliveries);
    }

    /// The next effect of the inputs so far, deliveries first.
    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some(d) = self.out_deliveries.pop_front() {
            return Some(Output::Deliver(d));
        }
        if let Some((shard, forward)) = self.forwards.pop_front() {
            return Some(Output::Forward { shard, forward });
        }
        if let Some(call) = self.calls.pop_front() {
            return Some(Output::Call(call));
        }
        if let Some(lookup) = self.lookups.pop_front() {
            return Some(Output::Lookup(lookup));
        }
        let (vhost, request) = self.bridge.pop_front()?;
        Some(Output::Bridge { vhost, request })
    }
}
