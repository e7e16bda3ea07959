//! Owns who may open a connection: three permit pools (client sessions: c2s over TCP,
//! WebSocket and BOSH; HTTP connections; components, apart so that a client flood cannot lock
//! the focus's peers or a bridge out) and a count of unauthenticated sessions per address,
//! capped at `limits.max_unauthenticated_per_address` (loopback exempt unless
//! `limits.limit_loopback`).
//!
//! Shell. Invariants: a session's address slot is released exactly once, when it
//! authenticates or when it ends (whichever is first: `Unauthenticated` is a guard); the
//! per-address map holds only addresses with a slot taken. Tests: `mod tests` below and
//! tests/all/admission.rs against the real binary.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Limits;

/// The pools and the per-address counts.
#[derive(Debug)]
pub struct Admission {
    sessions: Arc<Semaphore>,
    http: Arc<Semaphore>,
    components: Arc<Semaphore>,
    unauthenticated: Mutex<HashMap<IpAddr, usize>>,
    per_address: usize,
    limit_loopback: bool,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The pool is empty.
    Full,
    /// The address holds its share of unauthenticated sessions.
    AddressFull,
}

impl Refusal {
    /// For logs and HTTP bodies.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Full => "connection limit reached",
            Refusal::AddressFull => "too many unauthenticated sessions from this address",
        }
    }
}

/// A session's place: its permit, and its address slot until it authenticates.
#[derive(Debug)]
pub struct SessionTicket {
    _permit: OwnedSemaphorePermit,
    /// Dropped at authentication (`authenticated`) or with the ticket.
    unauthenticated: Option<Unauthenticated>,
}

impl SessionTicket {
    /// The session authenticated: its address slot is free for another.
    pub fn authenticated(&mut self) {
        self.unauthenticated = None;
    }
}

/// One unauthenticated session of an address; released on drop.
#[derive(Debug)]
struct Unauthenticated {
    admission: Arc<Admission>,
    addr: IpAddr,
}

impl Drop for Unauthenticated {
    fn drop(&mut self) {
        let mut map = self
            .admission
            .unauthenticated
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.addr);
            }
        }
    }
}

impl Admission {
    /// Pools sized by `limits`.
    pub fn new(limits: &Limits) -> Arc<Admission> {
        Arc::new(Admission {
            sessions: Arc::new(Semaphore::new(limits.max_connections)),
            http: Arc::new(Semaphore::new(limits.max_http_connections)),
            components: Arc::new(Semaphore::new(limits.max_component_connections)),
            unauthenticated: Mutex::new(HashMap::new()),
            per_address: limits.max_unauthenticated_per_address,
            limit_loopback: limits.limit_loopback,
        })
    }

    /// A client session from `addr` (the client's address: behind a trusted proxy, the
    /// forwarded one).
    ///
    /// # Errors
    /// The sessions pool is empty, or `addr` holds its share of unauthenticated sessions.
    pub fn session(self: &Arc<Self>, addr: IpAddr) -> Result<SessionTicket, Refusal> {
        let addr = canonical(addr);
        let counted = self.limit_loopback || !addr.is_loopback();
        let unauthenticated = if counted {
            let mut map = self
                .unauthenticated
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let n = map.entry(addr).or_insert(0);
            if *n >= self.per_address {
                if *n == 0 {
                    map.remove(&addr);
                }
                return Err(Refusal::AddressFull);
            }
            *n += 1;
            Some(Unauthenticated {
                admission: self.clone(),
                addr,
            })
        } else {
            None
        };
        // On failure the slot is released by the guard's drop.
        let permit = self
            .sessions
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Full)?;
        Ok(SessionTicket {
            _permit: permit,
            unauthenticated,
        })
    }

    /// An HTTP connection.
    ///
    /// # Errors
    /// The HTTP pool is empty.
    pub fn http(&self) -> Result<OwnedSemaphorePermit, Refusal> {
        self.http
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Full)
    }

    /// A component connection.
    ///
    /// # Errors
    /// The components pool is empty.
    pub fn component(&self) -> Result<OwnedSemaphorePermit, Refusal> {
        self.components
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Full)
    }

    /// Whether no client session could start now (for health).
    pub fn sessions_full(&self) -> bool {
        self.sessions.available_permits() == 0
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is (one client, one count).
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_address: usize, sessions: usize, limit_loopback: bool) -> Limits {
        let mut l = crate::config::Config::parse(
            crate::config::EMBEDDED_DEFAULTS,
            std::path::Path::new("/base"),
        )
        .expect("the embedded defaults parse")
        .limits;
        l.max_unauthenticated_per_address = per_address;
        l.max_connections = sessions;
        l.limit_loopback = limit_loopback;
        l
    }

    #[test]
    fn an_address_holds_its_share_until_its_sessions_authenticate() {
        let a = Admission::new(&limits(2, 100, false));
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        let other: IpAddr = "192.0.2.8".parse().expect("ip");
        let mut first = a.session(ip).expect("first");
        let second = a.session(ip).expect("second");
        assert_eq!(a.session(ip).err(), Some(Refusal::AddressFull));
        // The same client over IPv4-mapped IPv6 is the same address.
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(a.session(mapped).err(), Some(Refusal::AddressFull));
        assert!(a.session(other).is_ok());
        // Authenticating frees the slot, and a later drop does not free it twice.
        first.authenticated();
        let third = a.session(ip).expect("after authentication");
        drop(first);
        assert_eq!(a.session(ip).err(), Some(Refusal::AddressFull));
        drop((second, third));
        assert!(a.unauthenticated.lock().expect("map").is_empty());
        // Loopback is not counted unless asked.
        let lo: IpAddr = "127.0.0.1".parse().expect("ip");
        let held: Vec<_> = (0..5).map(|_| a.session(lo).expect("loopback")).collect();
        assert_eq!(held.len(), 5);
        let strict = Admission::new(&limits(1, 100, true));
        let _one = strict.session(lo).expect("one");
        assert_eq!(strict.session(lo).err(), Some(Refusal::AddressFull));
    }

    #[test]
    fn pools_are_separate() {
        let a = Admission::new(&limits(10, 1, false));
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        let _s = a.session(ip).expect("the one session");
        assert_eq!(a.session(ip).err(), Some(Refusal::Full));
        assert!(a.sessions_full());
        // Refused for the pool: its address slot was given back.
        assert_eq!(a.unauthenticated.lock().expect("map").get(&ip), Some(&1));
        assert!(a.component().is_ok(), "components have their own permits");
        assert!(a.http().is_ok());
    }
}
