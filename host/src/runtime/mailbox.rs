//! Owns a session's (or component's) mailbox: the queue from the router to its task, bounded
//! in stanzas (`limits.session_queue_stanzas`) and in bytes (`limits.session_queue_bytes`,
//! charged by `Outbound::cost`, what a queued stanza keeps alive), so that a peer that stops
//! reading, or a paused BOSH client, pins a bounded amount of memory however large the
//! stanzas sent to it.
//!
//! Shell. Invariants: the byte count is charged before a delivery is queued and released when
//! the task takes it out (or when the queue is dropped with it inside); control messages
//! (conflict, host gone, takeover) cost nothing and are refused only when the stanza count is
//! full. Tests: `mod tests` below; bounces end to end in tests/all/routing.rs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

use super::router_task::EndpointMsg;

/// The router's end.
#[derive(Debug, Clone)]
pub struct MailboxTx {
    tx: mpsc::Sender<Charged>,
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// The task's end.
#[derive(Debug)]
pub struct MailboxRx {
    rx: mpsc::Receiver<Charged>,
}

/// A message and what it was charged.
#[derive(Debug)]
struct Charged {
    msg: EndpointMsg,
    cost: usize,
    queued: Arc<AtomicUsize>,
}

impl Drop for Charged {
    fn drop(&mut self) {
        self.queued.fetch_sub(self.cost, Ordering::Relaxed);
    }
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
    let (tx, rx) = mpsc::channel(stanzas);
    (
        MailboxTx {
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
            max_bytes,
        },
        MailboxRx { rx },
    )
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
        if cost > 0 {
            // Charge first; undo when over the budget. A lone stanza larger than the whole
            // budget still goes to an empty queue (the parser's own limits bound it).
            let before = self.queued.fetch_add(cost, Ordering::Relaxed);
            if before > 0 && before + cost > self.max_bytes {
                self.queued.fetch_sub(cost, Ordering::Relaxed);
                return Err(Refused::Full(msg));
            }
        }
        let charged = Charged {
            msg,
            cost,
            queued: self.queued.clone(),
        };
        match self.tx.try_send(charged) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(c)) => Err(Refused::Full(c.take())),
            Err(mpsc::error::TrySendError::Closed(c)) => Err(Refused::Closed(c.take())),
        }
    }

    /// Queue a control message (a takeover), waiting for room in the stanza count.
    ///
    /// # Errors
    /// The task has ended: the message comes back.
    pub async fn send(&self, msg: EndpointMsg) -> Result<(), EndpointMsg> {
        let charged = Charged {
            msg,
            cost: 0,
            queued: self.queued.clone(),
        };
        self.tx.send(charged).await.map_err(|e| e.0.take())
    }

    /// Bytes queued now.
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

impl Charged {
    /// The message, its charge released.
    fn take(mut self) -> EndpointMsg {
        let msg = std::mem::replace(&mut self.msg, EndpointMsg::Conflict);
        drop(self);
        msg
    }
}

impl MailboxRx {
    /// The next message; `None` when every sender is gone.
    pub async fn recv(&mut self) -> Option<EndpointMsg> {
        self.rx.recv().await.map(Charged::take)
    }

    /// Refuse further messages (those queued can still be taken out).
    pub fn close(&mut self) {
        self.rx.close();
    }

    /// The next message if one is queued.
    ///
    /// # Errors
    /// When none is.
    pub fn try_recv(&mut self) -> Result<EndpointMsg, mpsc::error::TryRecvError> {
        self.rx.try_recv().map(Charged::take)
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
