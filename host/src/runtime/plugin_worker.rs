//! One worker task per vhost with hook or component plugins: it owns that vhost's plugin
//! queue and timers, runs each call on the blocking pool, and hands verdicts and the stanzas
//! plugins sent back to the router as commands.
//!
//! Shell (tokio). Invariants: calls of one vhost run one at a time and in the order the router
//! handed them out, so a sender's stanzas keep their order through the hooks; a call never
//! runs on the router's task or an async worker thread, so a plugin that loops, prints, panics
//! or exhausts its memory delays only its own vhost (and only until the sandbox's deadline or
//! trap limit); the router never waits on a worker (`Workers::dispatch` uses `try_send`, and a
//! full queue is refused with `resource-constraint` by the router task); at most
//! `MAX_PENDING_TIMERS` timers per plugin. Tests: tests/all/hooks.rs, tests/all/isolation.rs.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::router_task::{PluginDone, RouterCmd, Routers};
use crate::hooks::PluginCall;
use crate::plugin::{Outcome, PluginSet, VhostHooks};

/// Calls one vhost may have queued before new ones are refused.
const QUEUE: usize = 1024;
/// Timers one plugin may have pending.
const MAX_PENDING_TIMERS: usize = 1024;

/// What a worker is told, in order.
#[derive(Debug)]
pub enum WorkerMsg {
    /// Make this call.
    Call(PluginCall),
    /// From now on, run calls on this generation of the vhost's plugins (calls queued before
    /// finish on the old one; pending timers carry over by plugin position).
    Swap(Arc<VhostHooks>),
}

/// The workers of every vhost that has plugins.
#[derive(Debug, Default, Clone)]
pub struct Workers {
    by_vhost: HashMap<String, mpsc::Sender<WorkerMsg>>,
    /// Component domain to its plugin's vhost.
    components: HashMap<String, String>,
}

impl Workers {
    /// Start a worker for every vhost of `set` that has plugins.
    pub fn start(set: &PluginSet, router: &Routers) -> Workers {
        let mut workers = Workers::default();
        for hooks in set.vhosts() {
            if let Some(tx) = spawn(hooks, router) {
                workers.by_vhost.insert(hooks.vhost().to_owned(), tx);
            }
        }
        workers.components = set
            .components()
            .map(|(domain, vhost)| (domain.to_owned(), vhost.to_owned()))
            .collect();
        workers
    }

    /// Give `vhost` this worker (or none), owning these plugin component domains (a
    /// configuration reload). A replaced worker ends once its queue is drained.
    pub fn set(
        &mut self,
        vhost: &str,
        worker: Option<mpsc::Sender<WorkerMsg>>,
        components: Vec<String>,
    ) {
        self.components.retain(|_, v| v != vhost);
        match worker {
            Some(tx) => {
                self.by_vhost.insert(vhost.to_owned(), tx);
                for d in components {
                    self.components.insert(d, vhost.to_owned());
                }
            }
            None => {
                self.by_vhost.remove(vhost);
            }
        }
    }

    /// Queue a call on its vhost's worker. Gives the call back when that worker's queue is
    /// full or the vhost has no worker.
    // The call comes back by value so that the router can refuse it without a clone.
    #[allow(clippy::result_large_err)]
    pub fn dispatch(&self, call: PluginCall) -> Result<(), PluginCall> {
        let vhost = match &call {
            PluginCall::Stanza { vhost, .. } | PluginCall::Muc { vhost, .. } => Some(vhost),
            PluginCall::Component { domain, .. } => self.components.get(domain),
        };
        match vhost.and_then(|v| self.by_vhost.get(v)) {
            Some(tx) => tx.try_send(WorkerMsg::Call(call)).map_err(|e| match e {
                mpsc::error::TrySendError::Full(WorkerMsg::Call(c))
                | mpsc::error::TrySendError::Closed(WorkerMsg::Call(c)) => c,
                _ => unreachable!("only a call was sent"),
            }),
            None => Err(call),
        }
    }

    /// The sender of `vhost`'s worker, for swapping in a new generation.
    pub fn sender(&self, vhost: &str) -> Option<mpsc::Sender<WorkerMsg>> {
        self.by_vhost.get(vhost).cloned()
    }
}

/// Start the worker of one vhost's plugins (none when it has none). The task ends when every
/// sender is dropped; it is not supervised (a vhost removed by a reload retires its worker),
/// but a panic in it is logged, and that vhost's calls are then refused, nobody else's.
pub fn spawn(hooks: &Arc<VhostHooks>, router: &Routers) -> Option<mpsc::Sender<WorkerMsg>> {
    if hooks.plugins().is_empty() {
        return None;
    }
    let (tx, rx) = mpsc::channel(QUEUE);
    let vhost = hooks.vhost().to_owned();
    let task = tokio::spawn(run(hooks.clone(), rx, router.clone()));
    tokio::spawn(async move {
        if let Err(e) = task.await {
            tracing::error!(
                message = "A vhost's plugin worker failed; its plugin calls are refused.",
                %vhost,
                error = %e
            );
        }
    });
    Some(tx)
}

type TimerQueue = BinaryHeap<Reverse<(Instant, u64, usize, String)>>;

/// Run one vhost's plugin calls until the router goes away.
async fn run(mut hooks: Arc<VhostHooks>, mut rx: mpsc::Receiver<WorkerMsg>, router: Routers) {
    let mut timers: TimerQueue = BinaryHeap::new();
    let mut pending = vec![0usize; hooks.plugins().len()];
    let mut seq = 0u64;
    loop {
        let next = timers.peek().map(|Reverse((at, ..))| *at);
        let done = tokio::select! {
            msg = rx.recv() => match msg {
                Some(WorkerMsg::Call(call)) => call_blocking(&hooks, call).await,
                Some(WorkerMsg::Swap(new)) => {
                    pending.resize(new.plugins().len(), 0);
                    hooks = new;
                    continue;
                }
                None => return,
            },
            () = sleep_until(next) => {
                let Some(Reverse((_, _, i, tag))) = timers.pop() else { continue };
                pending[i] = pending[i].saturating_sub(1);
                let h = hooks.clone();
                blocking(move || (PluginDone::Sent { depth: 1 }, h.run_timer(i, &tag))).await
            }
        };
        // Only a host bug (not a guest failure) leaves nothing to report.
        let Some((done, outcome)) = done else {
            continue;
        };
        let now = Instant::now();
        for (i, delay, tag) in outcome.timers {
            if pending[i] >= MAX_PENDING_TIMERS {
                tracing::warn!(
                    message = "Plugin timer refused: too many pending.",
                    plugin = hooks.plugins()[i].name(),
                    vhost = hooks.vhost()
                );
                continue;
            }
            pending[i] += 1;
            seq += 1;
            timers.push(Reverse((now + delay, seq, i, tag)));
        }
        let cmd = RouterCmd::Plugin {
            done,
            sent: outcome.sent,
        };
        if router.send(cmd).await.is_err() {
            return;
        }
    }
}

/// Make one call on the blocking pool.
async fn call_blocking(hooks: &Arc<VhostHooks>, call: PluginCall) -> Option<(PluginDone, Outcome)> {
    let h = hooks.clone();
    blocking(move || match call {
        PluginCall::Stanza { kind, stanza, .. } => {
            let (verdict, outcome) = h.run_stanza(kind, stanza.element());
            (PluginDone::Stanza { stanza, verdict }, outcome)
        }
        PluginCall::Muc { event, ask, .. } => {
            let (verdict, outcome) = h.run_muc(&event);
            match ask {
                Some(ask) => (PluginDone::Muc { ask, verdict }, outcome),
                None => (PluginDone::Sent { depth: 1 }, outcome),
            }
        }
        PluginCall::Component {
            domain,
            stanza,
            depth,
        } => (
            PluginDone::Sent { depth },
            h.run_component(&domain, &stanza),
        ),
    })
    .await
}

/// Run `f` on the blocking pool. Guest failures are traps inside `f`, never panics; a panic
/// here is a host bug, logged, and what the call carried is lost.
async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!(message = "Plugin call failed in the host.", error = %e);
            None
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
