//! The router's owner tasks: one per routing shard, each the only holder of its
//! `router::Router`, fed commands over its own channel, handing deliveries to session and
//! component mailboxes and plugin calls to the vhosts' plugin workers. `Routers` is the handle
//! the rest of the shell sends commands through: it picks the shard that owns a command
//! (a session's commands go to the shard of its bare JID) or sends it to every shard (vhosts,
//! plugins, components).
//!
//! Shell (tokio). Invariants: a shard never awaits a mailbox, a plugin or another shard (it
//! uses `try_send`, and shards talk over unbounded channels whose input is bounded by the
//! sessions' bounded ones; a full mailbox bounces the stanza with `resource-constraint` so a
//! stuck peer slows nobody else, and a full plugin queue refuses the stanza or join the same
//! way); what one shard sends another arrives in the order it was sent; endpoint ids are
//! unique across shards and never reused. Tests: router/tests.rs for the rules, tests/all/
//! end to end (which run with one shard per core).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::future::Either;
use tokio::sync::{mpsc, oneshot};

use super::link::Link;
use super::plugin_worker::Workers;
use super::reload::PluginRegistry;
use crate::focus::BridgeRequest;
use crate::hooks::{Ask, PluginCall, Verdict};
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::router::{self, Delivery, EndpointId, Forward, Router};
use crate::stanza::{self, Condition, ErrorType, Jid, Outbound, Stanza, StanzaError};
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
        stanza: Stanza,
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
    /// Route a stanza (its `from` already checked, its addresses parsed, by the sending
    /// endpoint).
    Route(Stanza),
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
    /// A component authenticated (what `Routers` sends each shard for an `AddComponent`).
    ComponentUp {
        /// Its domain.
        domain: String,
        /// Its mailbox.
        mailbox: Mailbox,
        /// Its endpoint id, the same in every shard.
        id: EndpointId,
        /// Whether this shard tells a replaced connection `conflict` (one shard does).
        primary: bool,
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

/// What one shard sends another, over an unbounded channel (its input is bounded by the
/// sessions' bounded command channels, and a shard must never wait on another).
#[derive(Debug)]
pub enum PeerMsg {
    /// Stanzas for what the receiving shard owns.
    Forward(Forward),
    /// A session bound on the sending shard, with what its auth plugin said (for the rooms of
    /// the receiving shard).
    Identity {
        /// Its full JID.
        full: Jid,
        /// Its identity.
        identity: Option<Arc<Identity>>,
    },
    /// A session of the sending shard ended: it leaves the receiving shard's rooms.
    SessionGone {
        /// Its full JID.
        full: Jid,
    },
}

/// The router is gone (the server is stopping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the router has stopped")]
pub struct RouterGone;

/// What `Routers::send` returns: already done, or a boxed wait for room in a full queue.
pub type RouterSend<'a> = Either<
    std::future::Ready<Result<(), RouterGone>>,
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), RouterGone>> + Send + 'a>>,
>;

/// The handle every other task routes through: one bounded command channel per shard.
#[derive(Debug, Clone)]
pub struct Routers {
    shards: Arc<[mpsc::Sender<RouterCmd>]>,
    ids: Arc<AtomicU64>,
}

impl Routers {
    /// How many shards route.
    pub fn count(&self) -> usize {
        self.shards.len()
    }

    /// Whether a shard has stopped (the server cannot route; `/health` says so).
    pub fn is_closed(&self) -> bool {
        self.shards.iter().any(mpsc::Sender::is_closed)
    }

    /// Whether a shard's queue is full right now (`/health` says so).
    pub fn any_full(&self) -> bool {
        self.shards.iter().any(|s| s.capacity() == 0)
    }

    /// Send `cmd` to the shard that owns it, or to every shard. Waits while that shard's
    /// queue is full (backpressure on the sender).
    ///
    /// # Errors
    /// `RouterGone` once the router has stopped.
    ///
    /// A command that fits the queue is sent at once, when `send` is called; only a wait for
    /// room (and the rare command for every shard) is a boxed future. A session task awaits
    /// this on its hot path, and a task's allocation is the largest state it can be
    /// suspended in: the returned future is two words, not the command plus a channel wait.
    pub fn send(&self, cmd: RouterCmd) -> RouterSend<'_> {
        match self.split(cmd) {
            Split::One(shard, cmd) => match self.shards[shard].try_send(cmd) {
                Ok(()) => Either::Left(std::future::ready(Ok(()))),
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    Either::Left(std::future::ready(Err(RouterGone)))
                }
                Err(mpsc::error::TrySendError::Full(cmd)) => {
                    let shard = &self.shards[shard];
                    Either::Right(Box::pin(async move {
                        shard.send(cmd).await.map_err(|_| RouterGone)
                    }))
                }
            },
            Split::Each(cmds) => Either::Right(Box::pin(async move {
                for (shard, cmd) in cmds {
                    self.shards[shard].send(cmd).await.map_err(|_| RouterGone)?;
                }
                Ok(())
            })),
        }
    }

    /// `send` from a thread outside the runtime.
    ///
    /// # Errors
    /// `RouterGone` once the router has stopped.
    pub fn blocking_send(&self, cmd: RouterCmd) -> Result<(), RouterGone> {
        let cmds = match self.split(cmd) {
            Split::One(shard, cmd) => vec![(shard, cmd)],
            Split::Each(cmds) => cmds,
        };
        for (shard, cmd) in cmds {
            self.shards[shard]
                .blocking_send(cmd)
                .map_err(|_| RouterGone)?;
        }
        Ok(())
    }

    fn shard_of(&self, bare: &str) -> usize {
        router::shard_of(bare, self.shards.len())
    }

    fn jid_shard(&self, jid: &Jid) -> usize {
        router::shard_of_jid(jid, self.shards.len())
    }

    /// The shard of a stanza's sender (`from` up to its resource).
    fn sender_shard(&self, stanza: &Element) -> usize {
        let from = stanza.attr("from").unwrap_or_default();
        self.shard_of(from.split_once('/').map_or(from, |(bare, _)| bare))
    }

    /// Where `cmd` goes: one shard, or a copy to each.
    fn split(&self, cmd: RouterCmd) -> Split {
        let n = self.shards.len();
        let all = |make: &dyn Fn() -> RouterCmd| Split::Each((0..n).map(|i| (i, make())).collect());
        match cmd {
            RouterCmd::Route(stanza) => {
                Split::One(self.jid_shard(stanza.from()), RouterCmd::Route(stanza))
            }
            RouterCmd::Bind { ref jid, .. } => Split::One(self.jid_shard(jid), cmd),
            RouterCmd::Unbind { ref full, .. } | RouterCmd::EnableResumption { ref full, .. } => {
                Split::One(self.jid_shard(full), cmd)
            }
            RouterCmd::ResumeLookup {
                token,
                bare,
                anonymous,
                reply,
            } => match split_token(&token, n) {
                Some((shard, rest)) => Split::One(
                    shard,
                    RouterCmd::ResumeLookup {
                        token: rest.to_owned(),
                        bare,
                        anonymous,
                        reply,
                    },
                ),
                None => {
                    let _ = reply.send(None);
                    Split::Each(Vec::new())
                }
            },
            RouterCmd::AddComponent {
                domain,
                mailbox,
                reply,
            } => {
                let id = self.ids.fetch_add(1, Ordering::Relaxed);
                let _ = reply.send(id);
                Split::Each(
                    (0..n)
                        .map(|i| {
                            let up = RouterCmd::ComponentUp {
                                domain: domain.clone(),
                                mailbox: mailbox.clone(),
                                id,
                                primary: i == 0,
                            };
                            (i, up)
                        })
                        .collect(),
                )
            }
            RouterCmd::ComponentUp { .. } => Split::One(0, cmd),
            RouterCmd::RemoveComponent { domain, id } => all(&|| RouterCmd::RemoveComponent {
                domain: domain.clone(),
                id,
            }),
            RouterCmd::SetExtensions(ext) => all(&|| RouterCmd::SetExtensions(ext.clone())),
            RouterCmd::SetWorker {
                vhost,
                worker,
                components,
            } => all(&|| RouterCmd::SetWorker {
                vhost: vhost.clone(),
                worker: worker.clone(),
                components: components.clone(),
            }),
            RouterCmd::AddVhost { domain, muc, focus } => all(&|| RouterCmd::AddVhost {
                domain: domain.clone(),
                muc: muc.clone(),
                focus: focus.clone(),
            }),
            RouterCmd::RemoveVhost { domain } => all(&|| RouterCmd::RemoveVhost {
                domain: domain.clone(),
            }),
            // Only the shard holding the conference knows it; the others ignore the answer.
            RouterCmd::Allocated {
                vhost,
                conference,
                endpoint,
                transport,
            } => all(&|| RouterCmd::Allocated {
                vhost: vhost.clone(),
                conference: conference.clone(),
                endpoint: endpoint.clone(),
                transport: transport.clone(),
            }),
            // Lookups are answered to the shard that asked, through its own sender.
            RouterCmd::AccountChecked { .. } => Split::One(0, cmd),
            RouterCmd::Plugin { ref done, ref sent } => {
                let shard = match done {
                    PluginDone::Stanza { stanza, .. } => self.jid_shard(stanza.from()),
                    PluginDone::Muc { ask, .. } => self.shard_of(&ask.room),
                    // Plugin stanzas are routed by whichever shard gets them.
                    PluginDone::Sent { .. } => sent.first().map_or(0, |s| self.sender_shard(s)),
                };
                Split::One(shard, cmd)
            }
        }
    }
}

/// Where a command goes: the one shard that owns it (every per-stanza and per-session
/// command, sent without allocating), or a copy to each shard.
enum Split {
    One(usize, RouterCmd),
    Each(Vec<(usize, RouterCmd)>),
}

/// A resumption id names its shard in its first two hex digits.
fn shard_token(shard: usize, token: &str) -> String {
    format!("{shard:02x}{token}")
}

fn split_token(token: &str, count: usize) -> Option<(usize, &str)> {
    let (shard, rest) = (token.get(..2)?, token.get(2..)?);
    let shard = usize::from_str_radix(shard, 16).ok()?;
    (shard < count).then_some((shard, rest))
}

/// Everything the shards share to start.
pub struct Start {
    /// One router per shard, each already `set_shard` and configured alike.
    pub routers: Vec<Router>,
    /// The auth plugins account lookups ask.
    pub accounts: Arc<PluginRegistry>,
    /// The vhosts' plugin workers.
    pub workers: Workers,
    /// The SFU's request queue.
    pub bridge: Option<mpsc::Sender<(String, BridgeRequest)>>,
    /// Counters.
    pub metrics: Arc<Metrics>,
}

/// The routing shards' command channels (create them first: plugin workers and the bridge
/// need the handle before the shards start).
pub fn channels(count: usize) -> (Routers, Vec<mpsc::Receiver<RouterCmd>>) {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..count.max(1)).map(|_| mpsc::channel(4096)).unzip();
    let routers = Routers {
        shards: txs.into(),
        ids: Arc::new(AtomicU64::new(1)),
    };
    (routers, rxs)
}

/// Start one owner task per shard; they run until every sender is dropped.
pub fn spawn(
    start: Start,
    handle: &Routers,
    rxs: Vec<mpsc::Receiver<RouterCmd>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let (peer_txs, peer_rxs): (Vec<_>, Vec<_>) =
        (0..rxs.len()).map(|_| mpsc::unbounded_channel()).unzip();
    let peers: Arc<[mpsc::UnboundedSender<PeerMsg>]> = peer_txs.into();
    let Start {
        routers,
        accounts,
        workers,
        bridge,
        metrics,
    } = start;
    routers
        .into_iter()
        .zip(rxs)
        .zip(peer_rxs)
        .enumerate()
        .map(|(i, ((router, rx), peer_rx))| {
            let shard = ShardTask {
                router,
                me: handle.shards[i].downgrade(),
                peers: peers.clone(),
                ids: handle.ids.clone(),
                accounts: accounts.clone(),
                workers: workers.clone(),
                bridge: bridge.clone(),
                metrics: metrics.clone(),
                mailboxes: HashMap::new(),
                muc_counts: (0, 0),
            };
            tokio::spawn(shard.run(rx, peer_rx))
        })
        .collect()
}

/// One shard's owner task.
struct ShardTask {
    router: Router,
    /// This shard's own command sender (for the answers of account lookups, asked of the
    /// auth plugins on their own tasks).
    me: mpsc::WeakSender<RouterCmd>,
    /// Every shard's peer channel, by index.
    peers: Arc<[mpsc::UnboundedSender<PeerMsg>]>,
    ids: Arc<AtomicU64>,
    accounts: Arc<PluginRegistry>,
    workers: Workers,
    bridge: Option<mpsc::Sender<(String, BridgeRequest)>>,
    metrics: Arc<Metrics>,
    mailboxes: HashMap<EndpointId, Mailbox>,
    /// What this shard last added to the MUC gauges.
    muc_counts: (usize, usize),
}

impl ShardTask {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<RouterCmd>,
        mut peer_rx: mpsc::UnboundedReceiver<PeerMsg>,
    ) {
        // MUC gauges are sampled, not recounted per stanza (counting walks every room).
        let mut gauges = tokio::time::interval(GAUGE_PERIOD);
        gauges.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // What other shards forwarded first: it is older than new input.
                biased;
                msg = peer_rx.recv() => match msg {
                    Some(msg) => self.peer(msg),
                    None => break,
                },
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => break,
                },
                _ = gauges.tick() => {
                    let (rooms, occupants) = self.router.muc_counts();
                    let (old_rooms, old_occupants) = self.muc_counts;
                    self.metrics.add_muc(
                        rooms as i64 - old_rooms as i64,
                        occupants as i64 - old_occupants as i64,
                    );
                    self.muc_counts = (rooms, occupants);
                }
            }
        }
        let (rooms, occupants) = self.muc_counts;
        self.metrics.add_muc(-(rooms as i64), -(occupants as i64));
    }

    /// Feed the core one input and perform every effect it has, including those of what is
    /// fed back (a bounce for a full mailbox, a refused plugin call's verdict). Each feedback
    /// is an error or a verdict that cannot cause another of its kind (errors are never
    /// answered, and a refusal's error is never hooked), so this ends.
    fn drive(&mut self, input: router::Input) {
        self.router.handle_input(unix_millis(), input);
        while let Some(out) = self.router.poll_output() {
            let feedback = match out {
                router::Output::Deliver(d) => self.deliver(d),
                router::Output::Forward { shard, forward } => {
                    if let Some(peer) = self.peers.get(shard) {
                        let _ = peer.send(PeerMsg::Forward(forward));
                    }
                    None
                }
                router::Output::Call(call) => match self.workers.dispatch(call) {
                    Ok(()) => None,
                    Err(call) => refused(call),
                },
                router::Output::Lookup(lookup) => {
                    self.check_account(lookup);
                    None
                }
                router::Output::Bridge { vhost, request } => {
                    // The bridge task owns the SFU and never waits on the router; a full
                    // queue means it is stuck, and the request is dropped rather than the
                    // router blocked.
                    match &self.bridge {
                        Some(b) if b.try_send((vhost, request)).is_err() => {
                            tracing::error!(message = "The SFU's queue is full; request dropped.");
                        }
                        Some(_) => {}
                        None => {
                            tracing::warn!(message = "A focus asked for the SFU, but none runs.");
                        }
                    }
                    None
                }
            };
            if let Some(input) = feedback {
                self.router.handle_input(unix_millis(), input);
            }
        }
    }

    /// Push one delivery into its endpoint's mailbox; a full one gives back the bounce.
    fn deliver(&self, d: Delivery) -> Option<router::Input> {
        let mailbox = self.mailboxes.get(&d.to)?;
        match mailbox.try_send(EndpointMsg::Deliver(d.stanza)) {
            Ok(()) => {
                self.metrics.stanzas_delivered(1);
                None
            }
            Err(super::mailbox::Refused::Full(EndpointMsg::Deliver(stanza))) => {
                self.metrics.stanza_bounced();
                tracing::warn!(
                    message = "Session mailbox full; stanza bounced.",
                    endpoint = d.to
                );
                let err = StanzaError::new(ErrorType::Wait, Condition::ResourceConstraint);
                stanza::error_reply(&stanza.into_element(), &err).map(router::Input::Stanza)
            }
            Err(_) => None,
        }
    }

    /// Ask the vhost's auth plugin on its own task; the answer comes back as
    /// `RouterCmd::AccountChecked` to this shard. The core bounds how many are in flight
    /// (`router::MAX_ACCOUNT_LOOKUPS`), so this never piles up calls.
    fn check_account(&self, lookup: router::AccountLookup) {
        let plugin = self.accounts.auth(&lookup.vhost);
        let me = self.me.clone();
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

    /// Tell every other shard.
    fn tell_others(&self, msg: impl Fn() -> PeerMsg) {
        let me = self.router.shard().index;
        for (i, peer) in self.peers.iter().enumerate() {
            if i != me {
                let _ = peer.send(msg());
            }
        }
    }

    fn peer(&mut self, msg: PeerMsg) {
        self.drive(match msg {
            PeerMsg::Forward(forward) => router::Input::Forwarded(forward),
            PeerMsg::Identity { full, identity } => {
                router::Input::BoundElsewhere { full, identity }
            }
            PeerMsg::SessionGone { full } => router::Input::GoneElsewhere { full },
        });
    }

    fn command(&mut self, cmd: RouterCmd) {
        let router = &mut self.router;
        router.set_clock(unix_millis());
        match cmd {
            RouterCmd::Route(stanza) => {
                self.metrics.stanza_routed();
                self.drive(router::Input::Inbound(stanza));
            }
            RouterCmd::Bind {
                jid,
                resource,
                identity,
                mailbox,
                reply,
            } => {
                let id = self.ids.fetch_add(1, Ordering::Relaxed);
                match router.bind(&jid, resource.as_deref(), id, identity.clone()) {
                    Ok((full, replaced)) => {
                        if let Some(old) = replaced.and_then(|old| self.mailboxes.remove(&old)) {
                            let _ = old.try_send(EndpointMsg::Conflict);
                        }
                        self.mailboxes.insert(id, mailbox);
                        self.tell_others(|| PeerMsg::Identity {
                            full: full.clone(),
                            identity: identity.clone(),
                        });
                        let _ = reply.send(Ok((full, id)));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            RouterCmd::Unbind { full, id } => {
                let bound_here = router.is_bound(&full, id);
                if bound_here {
                    self.tell_others(|| PeerMsg::SessionGone { full: full.clone() });
                }
                self.drive(router::Input::Unbind { full, id });
                self.mailboxes.remove(&id);
            }
            RouterCmd::EnableResumption {
                full,
                id,
                anonymous,
                reply,
            } => {
                let token = router.enable_resumption(&full, id, anonymous);
                let _ = reply.send(shard_token(router.shard().index, &token));
            }
            RouterCmd::ResumeLookup {
                token,
                bare,
                anonymous,
                reply,
            } => {
                let mailboxes = &self.mailboxes;
                let mailbox = router
                    .claim_resumption(&token, &bare, anonymous)
                    .and_then(|r| Some((mailboxes.get(&r.endpoint)?.clone(), r.keep_resumable)));
                let _ = reply.send(mailbox);
            }
            // `Routers` turns this into `ComponentUp` for each shard.
            RouterCmd::AddComponent { reply, .. } => drop(reply),
            RouterCmd::ComponentUp {
                domain,
                mailbox,
                id,
                primary,
            } => {
                if let Some(old) = router
                    .add_component(&domain, id)
                    .and_then(|old| self.mailboxes.remove(&old))
                    && primary
                {
                    let _ = old.try_send(EndpointMsg::Conflict);
                }
                self.mailboxes.insert(id, mailbox);
            }
            RouterCmd::RemoveComponent { domain, id } => {
                router.remove_component(&domain, id);
                self.mailboxes.remove(&id);
            }
            RouterCmd::SetExtensions(ext) => router.set_extensions(ext),
            RouterCmd::SetWorker {
                vhost,
                worker,
                components,
            } => self.workers.set(&vhost, worker, components),
            RouterCmd::AddVhost { domain, muc, focus } => {
                router.add_vhost(&domain, muc.map(|m| *m), focus.map(|f| *f));
            }
            RouterCmd::Allocated {
                vhost,
                conference,
                endpoint,
                transport,
            } => self.drive(router::Input::Allocated {
                vhost,
                conference,
                endpoint,
                transport: transport.map(|t| *t),
            }),
            RouterCmd::RemoveVhost { domain } => {
                for id in router.remove_vhost(&domain) {
                    if let Some(mailbox) = self.mailboxes.remove(&id) {
                        let _ = mailbox.try_send(EndpointMsg::HostGone);
                    }
                }
            }
            RouterCmd::AccountChecked { stanza, exists } => {
                self.drive(router::Input::AccountChecked { stanza, exists });
            }
            RouterCmd::Plugin { done, sent } => {
                let depth = match done {
                    PluginDone::Stanza { stanza, verdict } => {
                        self.drive(router::Input::Verdict { stanza, verdict });
                        1
                    }
                    PluginDone::Muc { ask, verdict } => {
                        self.drive(router::Input::MucVerdict { ask, verdict });
                        1
                    }
                    PluginDone::Sent { depth } => depth,
                };
                for stanza in sent {
                    self.drive(router::Input::FromPlugin { stanza, depth });
                }
            }
        }
    }
}

/// What the core is told when a vhost's plugin queue is full: the stanza or join is refused
/// (`resource-constraint`) rather than waited for or skipped.
fn refused(call: PluginCall) -> Option<router::Input> {
    let busy = || {
        StanzaError::new(ErrorType::Wait, Condition::ResourceConstraint)
            .with_text("This domain's plugins are busy; try again shortly.")
    };
    match call {
        PluginCall::Stanza { vhost, stanza, .. } => {
            tracing::warn!(message = "Plugin queue full; stanza refused.", %vhost);
            Some(router::Input::Verdict {
                stanza,
                verdict: Verdict::Reject(busy()),
            })
        }
        PluginCall::Muc {
            vhost,
            ask: Some(ask),
            ..
        } => {
            tracing::warn!(message = "Plugin queue full; join refused.", %vhost);
            Some(router::Input::MucVerdict {
                ask,
                verdict: Verdict::Reject(busy()),
            })
        }
        PluginCall::Muc {
            vhost, ask: None, ..
        } => {
            tracing::warn!(message = "Plugin queue full; room event dropped.", %vhost);
            None
        }
        PluginCall::Component { domain, stanza, .. } => {
            tracing::warn!(message = "Plugin queue full; stanza refused.", %domain);
            stanza::error_reply(&stanza, &busy()).map(router::Input::Stanza)
        }
    }
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
