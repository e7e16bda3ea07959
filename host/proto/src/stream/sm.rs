//! XEP-0198 stream management counters and the queue of unacknowledged outbound stanzas.
//!
//! Core (pure). Invariants: `acked <= sent`; the queue holds exactly the stanzas numbered
//! `acked+1 ..= sent`, so a resume replays precisely what the peer has not confirmed; `bytes`
//! is the sum of the queued stanzas' `Outbound::cost`, and the queue is full past
//! `max_unacked` stanzas or `max_bytes` bytes (one stanza alone never is). Counters wrap at
//! 2^32 as the XEP requires. Tests: `mod tests` below; end to end in tests/all/sm.rs.

use std::collections::VecDeque;

use crate::stanza::Outbound;

/// Why an acknowledgement was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("peer acknowledged {h} stanzas but only {sent} were sent")]
pub struct AckError {
    /// The peer's `h`.
    pub h: u32,
    /// Stanzas actually sent.
    pub sent: u32,
}

/// Stream management state of one session.
#[derive(Debug)]
pub struct SmState {
    /// Stanzas handled from the peer (our `h`).
    pub inbound: u32,
    sent: u32,
    acked: u32,
    /// Each unacknowledged stanza and what it costs.
    unacked: VecDeque<(Outbound, usize)>,
    max_unacked: usize,
    bytes: usize,
    max_bytes: usize,
    /// Whether the peer asked for resumption and we granted it.
    pub resumable: bool,
    /// The resumption id we handed out.
    pub id: Option<String>,
}

impl SmState {
    /// Fresh state; `max_unacked` stanzas and `max_bytes` bytes bound the queue.
    pub fn new(max_unacked: usize, max_bytes: usize) -> Self {
        SmState {
            inbound: 0,
            sent: 0,
            acked: 0,
            unacked: VecDeque::new(),
            max_unacked,
            bytes: 0,
            max_bytes,
            resumable: false,
            id: None,
        }
    }

    /// Count one stanza received from the peer.
    pub fn count_inbound(&mut self) {
        self.inbound = self.inbound.wrapping_add(1);
    }

    /// Record an outbound stanza. Returns false when the queue is full: the session should be
    /// ended, since the peer is not acknowledging.
    pub fn push_outbound(&mut self, stanza: Outbound) -> bool {
        self.sent = self.sent.wrapping_add(1);
        let cost = stanza.cost();
        self.bytes += cost;
        self.unacked.push_back((stanza, cost));
        self.unacked.len() <= self.max_unacked
            && (self.bytes <= self.max_bytes || self.unacked.len() == 1)
    }

    /// What the unacknowledged stanzas cost, in bytes.
    pub fn unacked_bytes(&self) -> usize {
        self.bytes
    }

    /// Number of stanzas not yet acknowledged.
    pub fn unacked_len(&self) -> usize {
        self.unacked.len()
    }

    /// Apply the peer's `h`, dropping acknowledged stanzas.
    ///
    /// # Errors
    /// When `h` acknowledges more than was sent (XEP-0198 §4: `undefined-condition`).
    pub fn ack(&mut self, h: u32) -> Result<(), AckError> {
        let newly = h.wrapping_sub(self.acked);
        if newly as usize > self.unacked.len() {
            return Err(AckError { h, sent: self.sent });
        }
        let freed: usize = self.unacked.drain(..newly as usize).map(|(_, c)| c).sum();
        self.bytes -= freed;
        self.acked = h;
        Ok(())
    }

    /// The stanzas still unacknowledged, oldest first, for replay after a resume. The counters
    /// stay: replayed stanzas keep their numbers.
    pub fn unacked(&self) -> impl Iterator<Item = &Outbound> {
        self.unacked.iter().map(|(s, _)| s)
    }

    /// Take every unacknowledged stanza (the session is ending for good).
    pub fn take_unacked(&mut self) -> Vec<Outbound> {
        self.acked = self.sent;
        self.bytes = 0;
        self.unacked.drain(..).map(|(s, _)| s).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{Element, ns};

    fn msg(i: u32) -> Outbound {
        Element::builder("message", ns::CLIENT)
            .attr("id", i.to_string())
            .build()
            .into()
    }

    #[test]
    fn ack_trims_the_queue() {
        let mut sm = SmState::new(10, usize::MAX);
        for i in 0..5 {
            assert!(sm.push_outbound(msg(i)));
        }
        sm.ack(3).expect("valid ack");
        let ids: Vec<_> = sm
            .unacked()
            .map(|e| e.element().attr("id").unwrap_or("").to_owned())
            .collect();
        assert_eq!(ids, ["3", "4"]);
        sm.ack(3).expect("repeated ack is fine");
        assert_eq!(sm.ack(9), Err(AckError { h: 9, sent: 5 }));
        sm.ack(5).expect("all");
        assert_eq!(sm.unacked_len(), 0);
    }

    #[test]
    fn bytes_bound_the_queue_and_acks_release_them() {
        let big = |i: u32| -> Outbound {
            let mut body = Element::new("body", ns::CLIENT);
            body.append_text(&"x".repeat(1000));
            Element::builder("message", ns::CLIENT)
                .attr("id", i.to_string())
                .append(body)
                .build()
                .into()
        };
        let mut sm = SmState::new(100, 3000);
        // One stanza alone never fills it, whatever it costs.
        assert!(sm.push_outbound(big(0)));
        assert!(sm.push_outbound(big(1)));
        assert!(sm.unacked_bytes() > 2000);
        assert!(!sm.push_outbound(big(2)), "past 3000 bytes");
        sm.ack(3).expect("all three");
        assert_eq!(sm.unacked_bytes(), 0);
        assert!(sm.push_outbound(big(3)));
        assert_eq!(sm.take_unacked().len(), 1);
        assert_eq!(sm.unacked_bytes(), 0);
    }

    #[test]
    fn counters_wrap() {
        let mut sm = SmState::new(10, usize::MAX);
        sm.sent = u32::MAX;
        sm.acked = u32::MAX;
        assert!(sm.push_outbound(msg(0)));
        assert!(sm.push_outbound(msg(1)));
        assert_eq!(sm.sent, 1);
        sm.ack(0).expect("wrapped ack");
        assert_eq!(sm.unacked_len(), 1);
    }

    #[test]
    fn queue_bound_reported() {
        let mut sm = SmState::new(2, usize::MAX);
        assert!(sm.push_outbound(msg(0)));
        assert!(sm.push_outbound(msg(1)));
        assert!(!sm.push_outbound(msg(2)));
    }
}
