//! The router's owner task: the only holder of `router::Router`, fed commands over one mpsc
//! channel, handing deliveries to session and component mailboxes and plugin calls to the
//! vhosts' plugin workers.
//!
//! Shell (tokio). Invariants: the router never awaits a mailbox or a plugin (it uses
//! `try_send`; a full mailbox bounces the stanza with `resource-constraint` so a stuck peer
//! slows nobody else, and a full plugin queue refuses the stanza or join the same way);
//! endpoint ids are never reused. Tests: router/tests.rs for the rules, tests/all/ end to end.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::link::Link;
use super::plugin_worker::Workers;
use super::reload::PluginRegistry;
use crate::focus::BridgeRequest;
use crate::hooks::{Ask, PluginCall, Verdict};
use crate::metrics::Metrics;
use crate::router::{Delivery, EndpointId, Router};
use crate::stanza::{self, ErrorType, Jid, Outbound, StanzaError};
use crate::stream::c2s::PendingInput;
use crate::xml::Element;

/// How often the MUC room and occupant gauges are refreshed.
const GAUGE_PERIOD: std::time::Duration = std::time::Duration::from_millis(500);

/// A message to a session or component task.
#[derive(Debug)]
pub enum EndpointMsg {
    /// A stanza to send to the peer.
    Deliver(Outbound),
    /// Another connection took this resource or domain.
    Conflict,
    /// The session's vhost is no longer served (configuration reload).
    HostGone,
    /// XEP-0198: continue this session on a new transport.
    Takeover(Box<Handoff>),
}

/// What a resuming connection hands to the detached session it resumes.
#[derive(Debug)]
pub struct Handoff {
    /// The new connection's link.
    pub link: Link,
    /// Its unprocessed input, positioned after `<resume/>`.
    pub input: PendingInput,
    /// The client's acknowledged count.
    pub h: u32,
    /// Whether the session stays resumable (`router::Resumption::keep_resumable`).
    pub keep_resumable: bool,
}

/// A mailbox.
pub type Mailbox = super::mailbox::MailboxTx;

/// What a finished plugin call answers.
#[derive(Debug)]
pub enum PluginDone {
    /// The pre-routing verdict on this stanza.
    Stanza {
        /// The stanza the hooks were asked about.
        stanza: Element,
        /// Their verdict.
        verdict: Verdict,
    },
    /// The verdict on a parked MUC join.
    Muc {
        /// The parked join.
        ask: Ask,
        /// The verdict.
        verdict: Verdict,
    },
    /// No verdict (a notification, a component stanza or a timer); the stanzas sent are
    /// `depth` plugin hops from the peer's stanza that caused them.
    Sent {
        /// Plugin hops so far.
        depth: u8,
    },
}

/// Commands to the router task.
#[derive(Debug)]
pub enum RouterCmd {
    /// Route a stanza (its `from` already checked by the sending endpoint).
    Route(Element),
    /// Bind a resource.
    Bind {
        /// Authenticated bare JID.
        jid: Jid,
        /// Requested resource.
        resource: Option<String>,
        /// What the auth plugin said about the session.
        identity: Option<Arc<crate::identity::Identity>>,
        /// The session's mailbox.
        mailbox: Mailbox,
        /// The bound JID and the session's endpoint id.
        reply: oneshot::Sender<Result<(Jid, EndpointId), StanzaError>>,
    },
    /// The session ended for good.
    Unbind {
        /// Bound JID.
        full: Jid,
        /// Endpoint id.
        id: EndpointId,
    },
    /// Allow resumption of a session.
    EnableResumption {
        /// Bound JID.
        full: Jid,
        /// Endpoint id.
        id: EndpointId,
        /// The session logged in anonymously.
        anonymous: bool,
        /// The resumption id.
        reply: oneshot::Sender<String>,
    },
    /// Find the session a resumption id stands for.
    ResumeLookup {
        /// The id.
        token: String,
        /// Who asks.
        bare: Jid,
        /// The asker logged in anonymously.
        anonymous: bool,
        /// Its mailbox, and whether it stays resumable after this. The id is claimed (a
        /// single-use one is spent) even if the takeover then fails.
        reply: oneshot::Sender<Option<(Mailbox, bool)>>,
    },
    /// A component authenticated.
    AddComponent {
        /// Its domain.
        domain: String,
        /// Its mailbox.
        mailbox: Mailbox,
        /// Its endpoint id.
        reply: oneshot::Sender<EndpointId>,
    },
    /// A component disconnected.
    RemoveComponent {
        /// Its domain.
        domain: String,
        /// Its endpoint id.
        id: EndpointId,
    },
    /// Plugins changed (a reload): what the cores query from now on.
    SetExtensions(Arc<dyn crate::hooks::Extensions>),
    /// A vhost's plugin worker changed (a configuration reload); `None` retires it.
    SetWorker {
        /// The vhost.
        vhost: String,
        /// Its worker.
        worker: Option<mpsc::Sender<super::plugin_worker::WorkerMsg>>,
        /// The plugin component domains it owns.
        components: Vec<String>,
    },
    /// Serve a new vhost (a configuration reload).
    AddVhost {
        /// Its domain.
        domain: String,
        /// Its MUC service (boxed, as the focus: commands stay small).
        muc: Option<Box<crate::muc::MucConfig>>,
        /// Its conference focus.
        focus: Option<Box<crate::focus::FocusConfig>>,
    },
    /// Stop serving a vhost: its sessions are told `host-gone`.
    RemoveVhost {
        /// Its domain.
        domain: String,
    },
    /// The SFU answered a focus's endpoint allocation.
    Allocated {
        /// The focus's vhost.
        vhost: String,
        /// Conference id on the SFU.
        conference: String,
        /// Endpoint id.
        endpoint: String,
        /// The endpoint's transport, or why there is none (boxed: commands stay small).
        transport: Result<Box<crate::focus::LocalTransport>, String>,
    },
    /// The vhost's auth plugin answered a `router::AccountLookup` (RFC 6121 §8.5.1).
    AccountChecked {
        /// The iq the lookup carried.
        stanza: Element,
        /// Whether the account exists (false when the plugin failed).
        exists: bool,
    },
    /// A plugin call finished (from a vhost's plugin worker).
    Plugin {
        /// Its answer.
        done: PluginDone,
        /// Stanzas the plugins sent, checked by the plugin host.
        sent: Vec<Element>,
    },
}

/// Run the router until every sender is dropped. `me` reaches this task again (for the answers
/// of account lookups, asked of `accounts`' auth plugins on their own tasks).
pub async fn run(
    mut router: Router,
    mut rx: mpsc::Receiver<RouterCmd>,
    me: mpsc::WeakSender<RouterCmd>,
    accounts: Arc<PluginRegistry>,
    mut workers: Workers,
    bridge: Option<mpsc::Sender<(String, BridgeRequest)>>,
    metrics: Arc<Metrics>,
) {
    let mut mailboxes: HashMap<EndpointId, Mailbox> = HashMap::new();
    let mut next_id: EndpointId = 1;
    // MUC gauges are sampled, not recounted per stanza (counting walks every room).
    let mut gauges = tokio::time::interval(GAUGE_PERIOD);
    gauges.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let cmd = tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(cmd) => cmd,
                None => break,
            },
            _ = gauges.tick() => {
                let (rooms, occupants) = router.muc_counts();
                metrics.set_muc(rooms, occupants);
                continue;
            }
        };
        router.set_clock(unix_millis());
        match cmd {
            RouterCmd::Route(stanza) => {
                metrics.stanza_routed();
                let deliveries = router.route_inbound(stanza);
                deliver(&mut router, &mailboxes, deliveries, &metrics);
            }
            RouterCmd::Bind {
                jid,
                resource,
                identity,
                mailbox,
                reply,
            } => {
                let id = next_id;
                next_id += 1;
                match router.bind(&jid, resource.as_deref(), id, identity) {
                    Ok((full, replaced)) => {
                        if let Some(old) = replaced.and_then(|old| mailboxes.remove(&old)) {
                            let _ = old.try_send(EndpointMsg::Conflict);
                        }
                        mailboxes.insert(id, mailbox);
                        let _ = reply.send(Ok((full, id)));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            RouterCmd::Unbind { full, id } => {
                let deliveries = router.unbind(&full, id);
                mailboxes.remove(&id);
                deliver(&mut router, &mailboxes, deliveries, &metrics);
            }
            RouterCmd::EnableResumption {
                full,
                id,
                anonymous,
                reply,
            } => {
                let _ = reply.send(router.enable_resumption(&full, id, anonymous));
            }
            RouterCmd::ResumeLookup {
                token,
                bare,
                anonymous,
                reply,
            } => {
                let mailbox = router
                    .claim_resumption(&token, &bare, anonymous)
                    .and_then(|r| Some((mailboxes.get(&r.endpoint)?.clone(), r.keep_resumable)));
                let _ = reply.send(mailbox);
            }
            RouterCmd::AddComponent {
                domain,
                mailbox,
                reply,
            } => {
                let id = next_id;
                next_id += 1;
                if let Some(old) = router
                    .add_component(&domain, id)
                    .and_then(|old| mailboxes.remove(&old))
                {
                    let _ = old.try_send(EndpointMsg::Conflict);
                }
                mailboxes.insert(id, mailbox);
                let _ = reply.send(id);
            }
            RouterCmd::RemoveComponent { domain, id } => {
                router.remove_component(&domain, id);
                mailboxes.remove(&id);
            }
            RouterCmd::SetExtensions(ext) => router.set_extensions(ext),
            RouterCmd::SetWorker {
                vhost,
                worker,
                components,
            } => workers.set(&vhost, worker, components),
            RouterCmd::AddVhost { domain, muc, focus } => {
                router.add_vhost(&domain, muc.map(|m| *m), focus.map(|f| *f));
            }
            RouterCmd::Allocated {
                vhost,
                conference,
                endpoint,
                transport,
            } => {
                let transport = transport.map(|t| *t);
                let deliveries = router.bridge_allocated(&vhost, &conference, &endpoint, transport);
                deliver(&mut router, &mailboxes, deliveries, &metrics);
            }
            RouterCmd::RemoveVhost { domain } => {
                for id in router.remove_vhost(&domain) {
                    if let Some(mailbox) = mailboxes.remove(&id) {
                        let _ = mailbox.try_send(EndpointMsg::HostGone);
                    }
                }
            }
            RouterCmd::AccountChecked { stanza, exists } => {
                let deliveries = router.account_checked(stanza, exists);
                deliver(&mut router, &mailboxes, deliveries, &metrics);
            }
            RouterCmd::Plugin { done, sent } => {
                let (mut deliveries, depth) = match done {
                    PluginDone::Stanza { stanza, verdict } => {
                        (router.resume_stanza(stanza, verdict), 1)
                    }
                    PluginDone::Muc { ask, verdict } => (router.resume_muc(&ask, verdict), 1),
                    PluginDone::Sent { depth } => (Vec::new(), depth),
                };
                for stanza in sent {
                    deliveries.extend(router.route_from_plugin(stanza, depth));
                }
                deliver(&mut router, &mailboxes, deliveries, &metrics);
            }
        }
        dispatch_calls(&mut router, &workers, &mailboxes, &metrics);
        check_accounts(&mut router, &me, &accounts);
        for request in router.take_bridge() {
            // The bridge task owns the SFU and never waits on the router; a full queue means
            // it is stuck, and the request is dropped rather than the router blocked.
            match &bridge {
                Some(b) => {
                    if b.try_send(request).is_err() {
                        tracing::error!(message = "The SFU's queue is full; request dropped.");
                    }
                }
                None => tracing::warn!(message = "A focus asked for the SFU, but none runs."),
            }
        }
    }
}

/// Hand the plugin calls the router asked for to the vhosts' workers. A call whose vhost's
/// queue is full is refused (`resource-constraint`) rather than waited for or skipped.
fn dispatch_calls(
    router: &mut Router,
    workers: &Workers,
    mailboxes: &HashMap<EndpointId, Mailbox>,
    metrics: &Metrics,
) {
    // Refusals can cause further calls (a bounce into a hooked vhost); each round is bounded
    // by what the previous one produced, and a refusal's error is never hooked again.
    for _ in 0..4 {
        let calls = router.take_calls();
        if calls.is_empty() {
            return;
        }
        let mut deliveries = Vec::new();
        for call in calls {
            let Err(call) = workers.dispatch(call) else {
                continue;
            };
            let busy = || {
                StanzaError::new(ErrorType::Wait, "resource-constraint")
                    .with_text("This domain's plugins are busy; try again shortly.")
            };
            match call {
                PluginCall::Stanza { vhost, stanza, .. } => {
                    tracing::warn!(message = "Plugin queue full; stanza refused.", %vhost);
                    deliveries.extend(router.resume_stanza(stanza, Verdict::Reject(busy())));
                }
                PluginCall::Muc {
                    vhost,
                    ask: Some(ask),
                    ..
                } => {
                    tracing::warn!(message = "Plugin queue full; join refused.", %vhost);
                    deliveries.extend(router.resume_muc(&ask, Verdict::Reject(busy())));
                }
                PluginCall::Muc {
                    vhost, ask: None, ..
                } => {
                    tracing::warn!(message = "Plugin queue full; room event dropped.", %vhost);
                }
                PluginCall::Component { domain, stanza, .. } => {
                    tracing::warn!(message = "Plugin queue full; stanza refused.", %domain);
                    if let Some(reply) = stanza::error_reply(&stanza, &busy()) {
                        deliveries.extend(router.route(reply));
                    }
                }
            }
        }
        deliver(router, mailboxes, deliveries, metrics);
    }
    let dropped = router.take_calls().len();
    if dropped > 0 {
        tracing::warn!(
            message = "Plugin calls dropped after repeated refusals.",
            dropped
        );
    }
}

/// Ask the vhosts' auth plugins the account lookups the router handed out, each on its own
/// task; the answers come back as `RouterCmd::AccountChecked`. The router bounds how many are
/// in flight (`router::MAX_ACCOUNT_LOOKUPS`), so this never piles up calls.
fn check_accounts(
    router: &mut Router,
    me: &mpsc::WeakSender<RouterCmd>,
    accounts: &Arc<PluginRegistry>,
) {
    for lookup in router.take_account_lookups() {
        let plugin = accounts.auth(&lookup.vhost);
        let me = me.clone();
        tokio::spawn(async move {
            let exists = match plugin {
                Some(p) => match p.user_exists(&lookup.username).await {
                    Ok(exists) => exists,
                    Err(e) => {
                        tracing::warn!(message = "Account lookup failed; answered as no such account.", vhost = %lookup.vhost, error = %e);
                        false
                    }
                },
                None => false,
            };
            if let Some(me) = me.upgrade() {
                let _ = me
                    .send(RouterCmd::AccountChecked {
                        stanza: lookup.stanza,
                        exists,
                    })
                    .await;
            }
        });
    }
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn deliver(
    router: &mut Router,
    mailboxes: &HashMap<EndpointId, Mailbox>,
    deliveries: Vec<Delivery>,
    metrics: &Metrics,
) {
    let mut pending = deliveries;
    // Bounces can cause further deliveries; each round strictly shrinks (errors are not bounced).
    while !pending.is_empty() {
        let mut bounced = Vec::new();
        for d in pending {
            let Some(mailbox) = mailboxes.get(&d.to) else {
                continue;
            };
            match mailbox.try_send(EndpointMsg::Deliver(d.stanza)) {
                Ok(()) => metrics.stanzas_delivered(1),
                Err(super::mailbox::Refused::Full(EndpointMsg::Deliver(stanza))) => {
                    metrics.stanza_bounced();
                    tracing::warn!(
                        message = "Session mailbox full; stanza bounced.",
                        endpoint = d.to
                    );
                    let err = StanzaError::new(ErrorType::Wait, "resource-constraint");
                    if let Some(reply) = stanza::error_reply(&stanza.into_element(), &err) {
                        bounced.extend(router.route(reply));
                    }
                }
                Err(_) => {}
            }
        }
        pending = bounced;
    }
}
