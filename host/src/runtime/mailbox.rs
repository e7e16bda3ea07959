//! Owns a session's (or component's) mailbox: the queue from the router to its task, bounded
//! in stanzas (`limits.session_queue_stanzas`) and in bytes (`limits.session_queue_bytes`,
//! charged by `Outbound::cost`, what a queued stanza keeps alive), so that a peer that stops
//! reading, or a paused BOSH client, pins a bounded amount of memory however large the
//! stanzas sent to it.
//!
//! Shell. The queue is allocated lazily: an idle mailbox holds no block of slots (a
//! `VecDeque` that is empty has no allocation, and the queue gives its memory back whenever
//! the task empties it), so ten thousand idle sessions pay only for the shared header.
//! Invariants: the byte count is charged before a delivery is queued and released when the
//! task takes it out (or when the receiver is dropped with it inside); control messages
//! (conflict, host gone, takeover) cost nothing and are refused only when the stanza count is
//! full; `recv` is cancel-safe (a message leaves the queue only in a poll that returns it).
//! Tests: `mod tests` below; bounces end to end in tests/all/routing.rs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
use tokio::sync::mpsc::error::TryRecvError;

use super::router_task::EndpointMsg;

/// What both ends share.
struct Shared {
    state: Mutex<State>,
    /// Bytes of deliveries queued now.
    queued: AtomicUsize,
    max_stanzas: usize,
    max_bytes: usize,
    /// Wakes the task (one receiver: `notify_one` keeps a permit when it is not waiting).
    to_rx: Notify,
    /// Wakes senders waiting for room (`send`) when a message leaves or the task ends.
    to_tx: Notify,
}

struct State {
    /// Messages and what each was charged.
    queue: VecDeque<(EndpointMsg, usize)>,
    /// Live `MailboxTx` handles; the task sees the end when none is left.
    senders: usize,
    /// The task refuses further messages (closed or dropped).
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent; a panic elsewhere cannot break it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Take the next message out, releasing its charge; the queue's block goes back to the
    /// allocator once empty.
    fn pop(&self) -> Result<EndpointMsg, TryRecvError> {
        let mut st = self.lock();
        let Some((msg, cost)) = st.queue.pop_front() else {
            return Err(if st.senders == 0 {
                TryRecvError::Disconnected
            } else {
                TryRecvError::Empty
            });
        };
        if st.queue.is_empty() {
            st.queue = VecDeque::new();
        }
        drop(st);
        self.queued.fetch_sub(cost, Ordering::Relaxed);
        self.to_tx.notify_waiters();
        Ok(msg)
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("Mailbox")
            .field("queued", &st.queue.len())
            .field("queued_bytes", &self.queued.load(Ordering::Relaxed))
            .field("closed", &st.closed)
            .finish()
    }
}

/// The router's end.
#[derive(Debug)]
pub struct MailboxTx {
    shared: Arc<Shared>,
}

/// The task's end.
#[derive(Debug)]
pub struct MailboxRx {
    shared: Arc<Shared>,
}

/// Why a message was not queued; it comes back.
#[derive(Debug)]
pub enum Refused {
    /// The stanza or byte budget is used up.
    Full(EndpointMsg),
    /// The task has ended.
    Closed(EndpointMsg),
}

/// A mailbox of at most `stanzas` messages and `max_bytes` bytes of deliveries.
pub fn mailbox(stanzas: usize, max_bytes: usize) -> (MailboxTx, MailboxRx) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            senders: 1,
            closed: false,
        }),
        queued: AtomicUsize::new(0),
        max_stanzas: stanzas.max(1),
        max_bytes,
        to_rx: Notify::new(),
        to_tx: Notify::new(),
    });
    (
        MailboxTx {
            shared: shared.clone(),
        },
        MailboxRx { shared },
    )
}

impl Clone for MailboxTx {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        MailboxTx {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for MailboxTx {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.senders -= 1;
        let last = st.senders == 0;
        drop(st);
        if last {
            self.shared.to_rx.notify_one();
        }
    }
}

impl MailboxTx {
    /// Queue `msg` unless the mailbox is full (in stanzas, or in bytes for a delivery).
    ///
    /// # Errors
    /// `Full` or `Closed`, with the message.
    pub fn try_send(&self, msg: EndpointMsg) -> Result<(), Refused> {
        let cost = match &msg {
            EndpointMsg::Deliver(s) => s.cost(),
            _ => 0,
        };
        let shared = &*self.shared;
        let mut st = shared.lock();
        if st.closed {
            return Err(Refused::Closed(msg));
        }
        if st.queue.len() >= shared.max_stanzas {
            return Err(Refused::Full(msg));
        }
        if cost > 0 {
            // A lone stanza larger than the whole budget still goes to an empty queue (the
            // parser's own limits bound it).
            let before = shared.queued.load(Ordering::Relaxed);
            if before > 0 && before + cost > shared.max_bytes {
                return Err(Refused::Full(msg));
            }
            shared.queued.fetch_add(cost, Ordering::Relaxed);
        }
        st.queue.push_back((msg, cost));
        drop(st);
        shared.to_rx.notify_one();
        Ok(())
    }

    /// Queue a control message (a takeover), waiting for room in the stanza count.
    ///
    /// # Errors
    /// The task has ended: the message comes back.
    pub async fn send(&self, mut msg: EndpointMsg) -> Result<(), EndpointMsg> {
        loop {
            let room = self.shared.to_tx.notified();
            tokio::pin!(room);
            // Registered before looking, so a message leaving meanwhile still wakes us.
            room.as_mut().enable();
            match self.try_send(msg) {
                Ok(()) => return Ok(()),
                Err(Refused::Closed(m)) => return Err(m),
                Err(Refused::Full(m)) => msg = m,
            }
            room.await;
        }
    }

    /// Bytes queued now.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued.load(Ordering::Relaxed)
    }
}

impl MailboxRx {
    /// The next message; `None` when every sender is gone.
    pub async fn recv(&mut self) -> Option<EndpointMsg> {
        loop {
            match self.shared.pop() {
                Ok(msg) => return Some(msg),
                Err(TryRecvError::Disconnected) => return None,
                // A message queued after the look leaves a permit: no wake-up is lost.
                Err(TryRecvError::Empty) => self.shared.to_rx.notified().await,
            }
        }
    }

    /// Refuse further messages (those queued can still be taken out).
    pub fn close(&mut self) {
        self.shared.lock().closed = true;
        self.shared.to_tx.notify_waiters();
    }

    /// The next message if one is queued.
    ///
    /// # Errors
    /// When none is (`Disconnected` once every sender is gone).
    pub fn try_recv(&mut self) -> Result<EndpointMsg, TryRecvError> {
        self.shared.pop()
    }
}

impl Drop for MailboxRx {
    fn drop(&mut self) {
        let queue = {
            let mut st = self.shared.lock();
            st.closed = true;
            std::mem::take(&mut st.queue)
        };
        let charged: usize = queue.iter().map(|(_, c)| c).sum();
        self.shared.queued.fetch_sub(charged, Ordering::Relaxed);
        self.shared.to_tx.notify_waiters();
        // The messages (and any transport inside a takeover) drop here, outside the lock.
        drop(queue);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stanza::Outbound;
    use crate::xml::Element;

    fn message(body_bytes: usize) -> EndpointMsg {
        let mut body = Element::new("body", "jabber:client");
        body.append_text(&"x".repeat(body_bytes));
        let el = Element::builder("message", "jabber:client")
            .append(body)
            .build();
        EndpointMsg::Deliver(Outbound::from(el))
    }

    #[tokio::test]
    async fn bytes_are_bounded_and_released_when_taken_out() {
        let (tx, mut rx) = mailbox(100, 10_000);
        for _ in 0..3 {
            tx.try_send(message(3000)).expect("fits");
        }
        assert!(tx.queued_bytes() > 9000);
        assert!(matches!(tx.try_send(message(3000)), Err(Refused::Full(_))));
        // Control messages cost nothing and still go in.
        tx.try_send(EndpointMsg::HostGone).expect("control");
        assert!(rx.recv().await.is_some());
        assert!(tx.queued_bytes() < 7000);
        tx.try_send(message(3000)).expect("room again");
        while rx.try_recv().is_ok() {}
        assert_eq!(tx.queued_bytes(), 0);
        // One stanza larger than the budget still reaches an empty queue.
        tx.try_send(message(50_000)).expect("alone");
        assert!(matches!(tx.try_send(message(10)), Err(Refused::Full(_))));
        // Dropping the receiver with messages inside releases their charge.
        drop(rx);
        assert_eq!(tx.queued_bytes(), 0);
        assert!(matches!(tx.try_send(message(10)), Err(Refused::Closed(_))));
    }

    #[tokio::test]
    async fn the_stanza_count_still_applies() {
        let (tx, _rx) = mailbox(2, usize::MAX);
        tx.try_send(message(1)).expect("one");
        tx.try_send(message(1)).expect("two");
        assert!(matches!(tx.try_send(message(1)), Err(Refused::Full(_))));
    }
}
