//! Bridge channels (colibri WebSocket, as Jitsi Videobridge serves them): one per SFU
//! endpoint, opened by the browser at the URL the focus signalled in `<web-socket url=…/>`.
//! It carries JSON messages with a `colibriClass`: the server says `ServerHello` and announces
//! the dominant speaker; endpoint messages and stats are relayed between the participants of
//! one conference; receiver video constraints are accepted.
//!
//! Shell state (one registry, behind a mutex held only for map updates; sends are
//! `try_send`, so a channel that stops reading drops its own messages and slows nobody).
//! Invariants: a channel opens only for an allocated endpoint with its password; an endpoint
//! has at most one open channel (a new one replaces the old); releasing the endpoint closes it.
//! Tests: tests/all/meeting.rs (browsers) and `mod tests` below.

use std::collections::HashMap;
use std::sync::Mutex;

use lilt_sfu::ReceiverConstraints;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// The server id in the channel URL path (`/colibri-ws/<server-id>/<conference>/<endpoint>`).
pub const SERVER_ID: &str = "lilt";
/// Messages queued to one browser before further ones are dropped.
const QUEUE: usize = 256;
/// The largest message a browser may send.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

#[derive(Debug)]
struct Channel {
    pwd: String,
    /// The open WebSocket's queue, with the attach number that owns it.
    tx: Option<(u64, mpsc::Sender<String>)>,
}

/// Why a channel cannot be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such conference or endpoint (HTTP 404 as JVB answers).
    Unknown,
    /// Wrong password (HTTP 403).
    Forbidden,
}

/// Every endpoint's bridge channel.
#[derive(Debug, Default)]
pub struct Channels {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    conferences: HashMap<String, HashMap<String, Channel>>,
    next_attach: u64,
}

/// An open channel as its WebSocket task holds it.
#[derive(Debug)]
pub struct Attached {
    /// What to send to the browser.
    pub rx: mpsc::Receiver<String>,
    /// Which attach this is (a later one replaces it).
    pub id: u64,
}

impl Channels {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An endpoint was allocated: its channel may be opened with `pwd`.
    pub fn allow(&self, conference: &str, endpoint: &str, pwd: &str) {
        self.lock()
            .conferences
            .entry(conference.to_owned())
            .or_default()
            .insert(
                endpoint.to_owned(),
                Channel {
                    pwd: pwd.to_owned(),
                    tx: None,
                },
            );
    }

    /// The endpoint is gone: its channel closes.
    pub fn remove(&self, conference: &str, endpoint: &str) {
        let mut inner = self.lock();
        if let Some(c) = inner.conferences.get_mut(conference) {
            c.remove(endpoint);
            if c.is_empty() {
                inner.conferences.remove(conference);
            }
        }
    }

    /// The conference is over: every channel of it closes.
    pub fn remove_conference(&self, conference: &str) {
        self.lock().conferences.remove(conference);
    }

    /// Open the channel of `endpoint` (replacing an open one).
    ///
    /// # Errors
    /// `Unknown` for an endpoint that is not allocated, `Forbidden` for a wrong password.
    pub fn attach(&self, conference: &str, endpoint: &str, pwd: &str) -> Result<Attached, Refusal> {
        let mut inner = self.lock();
        inner.next_attach += 1;
        let id = inner.next_attach;
        let channel = inner
            .conferences
            .get_mut(conference)
            .and_then(|c| c.get_mut(endpoint))
            .ok_or(Refusal::Unknown)?;
        let right = bool::from(subtle::ConstantTimeEq::ct_eq(
            channel.pwd.as_bytes(),
            pwd.as_bytes(),
        ));
        if !right {
            return Err(Refusal::Forbidden);
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let _ = tx.try_send(server_hello());
        channel.tx = Some((id, tx));
        Ok(Attached { rx, id })
    }

    /// The WebSocket of attach `id` closed.
    pub fn detach(&self, conference: &str, endpoint: &str, id: u64) {
        let mut inner = self.lock();
        if let Some(ch) = inner
            .conferences
            .get_mut(conference)
            .and_then(|c| c.get_mut(endpoint))
            && ch.tx.as_ref().is_some_and(|(i, _)| *i == id)
        {
            ch.tx = None;
        }
    }

    /// Send `text` to `endpoint`'s browser, if its channel is open.
    fn send(inner: &Inner, conference: &str, endpoint: &str, text: &str) {
        if let Some((_, tx)) = inner
            .conferences
            .get(conference)
            .and_then(|c| c.get(endpoint))
            .and_then(|ch| ch.tx.as_ref())
        {
            // A browser that does not read loses its own messages, nobody else's.
            let _ = tx.try_send(text.to_owned());
        }
    }

    /// Send `text` to every endpoint of `conference` but `except`.
    fn broadcast(inner: &Inner, conference: &str, except: Option<&str>, text: &str) {
        if let Some(c) = inner.conferences.get(conference) {
            for (ep, ch) in c {
                if Some(ep.as_str()) != except
                    && let Some((_, tx)) = &ch.tx
                {
                    let _ = tx.try_send(text.to_owned());
                }
            }
        }
    }

    /// The SFU found a new dominant speaker in `conference`.
    /// Tell `endpoint` which video sources it gets now (last-N).
    pub fn forwarded_sources(&self, conference: &str, endpoint: &str, sources: &[String]) {
        let msg = json!({"colibriClass": "ForwardedSources", "forwardedSources": sources});
        Channels::send(&self.lock(), conference, endpoint, &msg.to_string());
    }

    pub fn dominant_speaker(&self, conference: &str, endpoint: &str, previous: &[String]) {
        let msg = json!({
            "colibriClass": "DominantSpeakerEndpointChangeEvent",
            "dominantSpeakerEndpoint": endpoint,
            "previousSpeakers": previous,
            "silence": false,
        })
        .to_string();
        Channels::broadcast(&self.lock(), conference, None, &msg);
    }

    /// A message `endpoint`'s browser sent. Returns the receiver video constraints when that
    /// is what it was (for the SFU), and `Err` with a reason for a message that is not JSON
    /// with a `colibriClass`.
    ///
    /// # Errors
    /// The message is not a JSON object with a string `colibriClass`.
    pub fn received(
        &self,
        conference: &str,
        endpoint: &str,
        text: &str,
    ) -> Result<Option<Value>, &'static str> {
        let mut msg: Value = serde_json::from_str(text).map_err(|_| "not JSON")?;
        let class = msg
            .get("colibriClass")
            .and_then(Value::as_str)
            .ok_or("no colibriClass")?
            .to_owned();
        let inner = self.lock();
        match class.as_str() {
            "EndpointMessage" | "EndpointStats" => {
                let to = msg
                    .get("to")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if let Some(o) = msg.as_object_mut() {
                    o.insert("from".to_owned(), Value::String(endpoint.to_owned()));
                }
                let out = msg.to_string();
                if to.is_empty() || class == "EndpointStats" {
                    Channels::broadcast(&inner, conference, Some(endpoint), &out);
                } else if to != endpoint {
                    Channels::send(&inner, conference, &to, &out);
                }
                Ok(None)
            }
            "ClientHello" => {
                Channels::send(&inner, conference, endpoint, &server_hello());
                Ok(None)
            }
            "ReceiverVideoConstraints"
            | "LastNChangedEvent"
            | "SelectedEndpointsChangedEvent"
            | "ReceiverVideoConstraint" => Ok(Some(msg)),
            // Video types, audio subscriptions and the like: accepted, nothing to do yet.
            _ => Ok(None),
        }
    }
}

/// Fold a receiver-constraints message (`ReceiverVideoConstraints`, or the legacy
/// `ReceiverVideoConstraint` and `LastNChangedEvent`) into what the endpoint asked before.
/// Constraints are keyed by endpoint id or by source name (`<endpoint>-v0`); both name the
/// sending endpoint.
pub fn fold_constraints(msg: &Value, into: &mut ReceiverConstraints) {
    let height = |v: &Value| {
        v.get("maxHeight")
            .and_then(Value::as_i64)
            .map(|h| u32::try_from(h.max(0)).unwrap_or(u32::MAX))
    };
    match msg.get("colibriClass").and_then(Value::as_str) {
        Some("ReceiverVideoConstraints") => {
            // The full set: what it does not say is back to the default.
            let names = |key: &str| -> Vec<String> {
                msg.get(key)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|k| sender_of(k).to_owned())
                    .collect()
            };
            let mut prioritized: Vec<String> = Vec::new();
            for key in [
                "onStageSources",
                "onStageEndpoints",
                "selectedSources",
                "selectedEndpoints",
            ] {
                for ep in names(key) {
                    if !prioritized.contains(&ep) {
                        prioritized.push(ep);
                    }
                }
            }
            *into = ReceiverConstraints {
                prioritized,
                last_n: msg.get("lastN").and_then(Value::as_i64),
                default_max_height: msg.get("defaultConstraints").and_then(height),
                max_height: msg
                    .get("constraints")
                    .and_then(Value::as_object)
                    .map(|o| {
                        o.iter()
                            .filter_map(|(k, v)| Some((sender_of(k).to_owned(), height(v)?)))
                            .collect()
                    })
                    .unwrap_or_default(),
            };
        }
        Some("ReceiverVideoConstraint") => {
            into.default_max_height = msg
                .get("maxFrameHeight")
                .and_then(Value::as_i64)
                .map(|h| u32::try_from(h.max(0)).unwrap_or(u32::MAX));
        }
        Some("LastNChangedEvent") => into.last_n = msg.get("lastN").and_then(Value::as_i64),
        _ => {}
    }
}

/// The endpoint a constraint key names: a source name `<endpoint>-v<n>` or the endpoint id.
fn sender_of(key: &str) -> &str {
    match key.rsplit_once("-v") {
        Some((ep, n))
            if !ep.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            ep
        }
        _ => key,
    }
}

fn server_hello() -> String {
    json!({"colibriClass": "ServerHello", "version": env!("CARGO_PKG_VERSION")}).to_string()
}

/// The channel URL path after `/colibri-ws/`: `(conference, endpoint)` when the server id is
/// ours.
pub fn parse_path(rest: &str) -> Option<(&str, &str)> {
    let mut parts = rest.split('/');
    let (server, conference, endpoint) = (parts.next()?, parts.next()?, parts.next()?);
    if server != SERVER_ID || parts.next().is_some() || conference.is_empty() || endpoint.is_empty()
    {
        return None;
    }
    Some((conference, endpoint))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(a: &mut Attached) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(m) = a.rx.try_recv() {
            out.push(serde_json::from_str(&m).expect("json"));
        }
        out
    }

    #[test]
    fn attach_checks_the_password_and_says_hello() {
        let c = Channels::default();
        c.allow("c1", "aaaa", "secret");
        assert_eq!(
            c.attach("c1", "bbbb", "secret").err(),
            Some(Refusal::Unknown)
        );
        assert_eq!(
            c.attach("c1", "aaaa", "wrong").err(),
            Some(Refusal::Forbidden)
        );
        let mut a = c.attach("c1", "aaaa", "secret").expect("attach");
        assert_eq!(drain(&mut a)[0]["colibriClass"], "ServerHello");
    }

    #[test]
    fn endpoint_messages_are_relayed_with_their_sender() {
        let c = Channels::default();
        for ep in ["aaaa", "bbbb", "cccc"] {
            c.allow("c1", ep, "p");
        }
        c.allow("c2", "dddd", "p");
        let mut a = c.attach("c1", "aaaa", "p").expect("a");
        let mut b = c.attach("c1", "bbbb", "p").expect("b");
        let mut cc = c.attach("c1", "cccc", "p").expect("c");
        let mut d = c.attach("c2", "dddd", "p").expect("d");
        for x in [&mut a, &mut b, &mut cc, &mut d] {
            drain(x);
        }
        let msg = r#"{"colibriClass":"EndpointMessage","to":"","msgPayload":{"x":1}}"#;
        assert_eq!(c.received("c1", "aaaa", msg), Ok(None));
        let got = drain(&mut b);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["from"], "aaaa");
        assert_eq!(got[0]["msgPayload"]["x"], 1);
        assert_eq!(drain(&mut cc).len(), 1);
        assert!(drain(&mut a).is_empty(), "no echo to the sender");
        assert!(drain(&mut d).is_empty(), "no leak to another conference");
        let direct = r#"{"colibriClass":"EndpointMessage","to":"cccc","msgPayload":{}}"#;
        c.received("c1", "bbbb", direct).expect("relay");
        assert_eq!(drain(&mut cc).len(), 1);
        assert!(drain(&mut a).is_empty());
        assert!(c.received("c1", "aaaa", "{").is_err());
        assert!(c.received("c1", "aaaa", "{}").is_err());
        let constraints = r#"{"colibriClass":"ReceiverVideoConstraints","lastN":2}"#;
        assert!(c.received("c1", "aaaa", constraints).expect("ok").is_some());
    }

    #[test]
    fn dominant_speaker_reaches_the_conference_and_removal_closes() {
        let c = Channels::default();
        c.allow("c1", "aaaa", "p");
        let mut a = c.attach("c1", "aaaa", "p").expect("a");
        drain(&mut a);
        c.dominant_speaker("c1", "aaaa", &[]);
        let got = drain(&mut a);
        assert_eq!(got[0]["dominantSpeakerEndpoint"], "aaaa");
        c.remove("c1", "aaaa");
        assert_eq!(c.attach("c1", "aaaa", "p").err(), Some(Refusal::Unknown));
    }

    #[test]
    fn paths() {
        assert_eq!(parse_path("lilt/c1/aaaa"), Some(("c1", "aaaa")));
        assert_eq!(parse_path("other/c1/aaaa"), None);
        assert_eq!(parse_path("lilt/c1"), None);
        assert_eq!(parse_path("lilt/c1/aaaa/x"), None);
    }
}

#[cfg(test)]
mod constraint_tests {
    use super::*;

    #[test]
    fn constraints_by_source_name_or_endpoint_and_legacy_messages() {
        let mut c = ReceiverConstraints::default();
        let msg: Value = serde_json::from_str(
            r#"{"colibriClass":"ReceiverVideoConstraints","lastN":-1,
                "defaultConstraints":{"maxHeight":180},
                "constraints":{"e1c2a3b4-v0":{"maxHeight":720},"f00d":{"maxHeight":0},"x-v":{"maxHeight":360}}}"#,
        )
        .expect("json");
        fold_constraints(&msg, &mut c);
        assert_eq!(c.last_n, Some(-1));
        assert_eq!(c.default_max_height, Some(180));
        assert_eq!(c.max_height_for("e1c2a3b4"), 720);
        assert_eq!(c.max_height_for("f00d"), 0);
        assert_eq!(c.max_height_for("x-v"), 360);
        assert_eq!(c.max_height_for("someone"), 180);
        assert!(c.prioritized.is_empty());
        // On-stage, then selected sources (by source name or endpoint), each sender once.
        let staged: Value = serde_json::from_str(
            r#"{"colibriClass":"ReceiverVideoConstraints",
                "onStageSources":["bbbb-v0"],"selectedSources":["cccc-v0","bbbb-v0"],
                "selectedEndpoints":["dddd"]}"#,
        )
        .expect("json");
        fold_constraints(&staged, &mut c);
        assert_eq!(c.prioritized, ["bbbb", "cccc", "dddd"]);
        fold_constraints(&msg, &mut c);
        let legacy: Value = serde_json::from_str(
            r#"{"colibriClass":"ReceiverVideoConstraint","maxFrameHeight":360}"#,
        )
        .expect("json");
        fold_constraints(&legacy, &mut c);
        assert_eq!(c.max_height_for("someone"), 360);
        let last_n: Value =
            serde_json::from_str(r#"{"colibriClass":"LastNChangedEvent","lastN":0}"#)
                .expect("json");
        fold_constraints(&last_n, &mut c);
        assert_eq!(c.max_height_for("e1c2a3b4"), 0);
        // A new full set replaces everything.
        let reset: Value =
            serde_json::from_str(r#"{"colibriClass":"ReceiverVideoConstraints"}"#).expect("json");
        fold_constraints(&reset, &mut c);
        assert_eq!(c, ReceiverConstraints::default());
    }
}
