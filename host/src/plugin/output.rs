//! Where a guest's stdout and stderr go: into the host log, line by line, tagged with plugin
//! and vhost, bounded and rate-limited; the last stderr lines are kept so that a trap (a Rust
//! `panic!` prints its message, then aborts) is logged with the message that explains it.
//!
//! Shell (called from wasmtime's WASI streams inside a plugin call, on a blocking thread).
//! Invariants: writing never blocks, never fails and never reaches the process's own stdio; a
//! line is at most `MAX_LINE` bytes (longer ones are cut and marked); at most `BURST` lines
//! are logged at once per (vhost, plugin), refilled at `LINES_PER_SEC`, and what is dropped is
//! counted and reported when logging resumes or when the call ends, at most once per
//! `REPORT_EVERY` at a call's end. Tests: `mod tests` below, tests/all/isolation.rs.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line logged; the rest of a longer line is dropped.
const MAX_LINE: usize = 1024;
/// Lines logged at once before the rate limit applies.
const BURST: f64 = 50.0;
/// Lines per second once the burst is spent.
const LINES_PER_SEC: f64 = 10.0;
/// Bytes of the latest stderr lines kept for the trap message.
const TAIL: usize = 2048;
/// Least time between two suppression reports made at the end of a call (a plugin that
/// prints on every call must not turn its suppressed lines into a warning per call).
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Which stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stream {
    Stdout,
    Stderr,
}

/// The log of one plugin on one vhost, shared by all its stores.
#[derive(Debug)]
pub(super) struct GuestLog {
    vhost: Arc<str>,
    plugin: Arc<str>,
    inner: Mutex<LogState>,
}

#[derive(Debug)]
struct LogState {
    tokens: f64,
    refilled: Instant,
    suppressed: u64,
    /// When suppressed lines were last reported.
    reported: Option<Instant>,
    /// Latest stderr text, for the next trap's message.
    tail: String,
}

impl LogState {
    /// The count of dropped lines, now to be reported (and when it was).
    fn take_suppressed(&mut self, now: Instant) -> u64 {
        let lines = std::mem::take(&mut self.suppressed);
        if lines > 0 {
            self.reported = Some(now);
        }
        lines
    }
}

impl GuestLog {
    pub(super) fn new(vhost: Arc<str>, plugin: Arc<str>) -> Arc<GuestLog> {
        Arc::new(GuestLog {
            vhost,
            plugin,
            inner: Mutex::new(LogState {
                tokens: BURST,
                refilled: Instant::now(),
                suppressed: 0,
                reported: None,
                tail: String::new(),
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// At the end of a call, under one lock: the stderr text written since the last call (for
    /// a trap's log line; a successful call drops it), and a report of the lines the rate limit
    /// dropped, so that a burst is accounted for even when the plugin prints nothing
    /// afterwards (at most once per `REPORT_EVERY`).
    pub(super) fn end_call(&self) -> String {
        let mut st = self.state();
        let now = Instant::now();
        let due = st
            .reported
            .is_none_or(|at| now.duration_since(at) >= REPORT_EVERY);
        let lines = if due { st.take_suppressed(now) } else { 0 };
        let tail = std::mem::take(&mut st.tail);
        drop(st);
        if lines > 0 {
            self.warn_suppressed(lines);
        }
        tail
    }

    fn warn_suppressed(&self, lines: u64) {
        tracing::warn!(
            message = "Plugin output suppressed (rate limit).",
            plugin = &*self.plugin,
            vhost = &*self.vhost,
            lines
        );
    }

    fn line(&self, stream: Stream, line: &str) {
        let mut st = self.state();
        if stream == Stream::Stderr {
            if st.tail.len() + line.len() + 1 > TAIL {
                let cut = (st.tail.len() + line.len() + 1).saturating_sub(TAIL);
                let cut = (cut..=st.tail.len())
                    .find(|&i| st.tail.is_char_boundary(i))
                    .unwrap_or(st.tail.len());
                st.tail.drain(..cut);
            }
            if !st.tail.is_empty() {
                st.tail.push('\n');
            }
            st.tail
                .push_str(line.get(..TAIL.min(line.len())).unwrap_or(line));
        }
        let now = Instant::now();
        let elapsed = now.duration_since(st.refilled).as_secs_f64();
        st.refilled = now;
        st.tokens = (st.tokens + elapsed * LINES_PER_SEC).min(BURST);
        if st.tokens < 1.0 {
            st.suppressed += 1;
            return;
        }
        st.tokens -= 1.0;
        let suppressed = st.take_suppressed(now);
        drop(st);
        let (vhost, plugin) = (&*self.vhost, &*self.plugin);
        let stream = match stream {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        };
        if suppressed > 0 {
            self.warn_suppressed(suppressed);
        }
        tracing::info!(message = "Plugin output.", plugin, vhost, stream, line);
    }
}

/// One store's view of a guest stream: it splits bytes into lines for `GuestLog`.
#[derive(Debug, Clone)]
pub(super) struct GuestOutput {
    log: Arc<GuestLog>,
    stream: Stream,
    partial: Arc<Mutex<Vec<u8>>>,
}

impl GuestOutput {
    pub(super) fn new(log: Arc<GuestLog>, stream: Stream) -> GuestOutput {
        GuestOutput {
            log,
            stream,
            partial: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn write_bytes(&self, mut bytes: &[u8]) {
        let mut partial = self.partial.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
            if partial.len() < MAX_LINE + 1 {
                let room = MAX_LINE + 1 - partial.len();
                partial.extend_from_slice(&bytes[..nl.min(room)]);
            }
            self.emit(&mut partial);
            bytes = &bytes[nl + 1..];
        }
        if partial.len() < MAX_LINE + 1 {
            let room = MAX_LINE + 1 - partial.len();
            partial.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    }

    fn emit(&self, partial: &mut Vec<u8>) {
        let cut = partial.len() > MAX_LINE;
        partial.truncate(MAX_LINE);
        let text = String::from_utf8_lossy(partial);
        let text = text.trim_end_matches('\r');
        if text.is_empty() {
            partial.clear();
            return;
        }
        if cut {
            self.log.line(self.stream, &format!("{text} [line cut]"));
        } else {
            self.log.line(self.stream, text);
        }
        partial.clear();
    }

    /// Log what is left without a newline (at the end of a call).
    pub(super) fn flush_partial(&self) {
        let mut partial = self.partial.lock().unwrap_or_else(PoisonError::into_inner);
        if !partial.is_empty() {
            self.emit(&mut partial);
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_tail_keeps_the_latest_lines_within_bounds() {
        let log = GuestLog::new("v".into(), "p".into());
        let out = GuestOutput::new(log.clone(), Stream::Stderr);
        out.write_bytes(b"thread '<unnamed>' panicked at src/lib.rs:3:5:\nboom");
        out.flush_partial();
        assert_eq!(
            log.end_call(),
            "thread '<unnamed>' panicked at src/lib.rs:3:5:\nboom"
        );
        assert_eq!(log.end_call(), "", "taken once");
        for i in 0..1000 {
            out.write_bytes(format!("line {i}\n").as_bytes());
        }
        let tail = log.end_call();
        assert!(tail.len() <= TAIL, "{}", tail.len());
        assert!(tail.ends_with("line 999"), "{tail}");
    }

    #[test]
    fn long_lines_are_cut_and_stdout_is_not_kept() {
        let log = GuestLog::new("v".into(), "p".into());
        let out = GuestOutput::new(log.clone(), Stream::Stdout);
        out.write_bytes(&vec![b'x'; 10 * MAX_LINE]);
        out.write_bytes(b"\n");
        assert!(out.partial.lock().expect("lock").is_empty());
        assert_eq!(log.end_call(), "");
        let err = GuestOutput::new(log.clone(), Stream::Stderr);
        err.write_bytes(&vec![b'y'; 10 * MAX_LINE]);
        err.write_bytes(b"\n");
        let tail = log.end_call();
        assert!(tail.len() <= MAX_LINE + 16, "{}", tail.len());
        assert!(tail.ends_with("[line cut]"));
    }

    #[test]
    fn rate_limit_counts_what_it_drops() {
        let log = GuestLog::new("v".into(), "p".into());
        let out = GuestOutput::new(log.clone(), Stream::Stdout);
        for _ in 0..500 {
            out.write_bytes(b"spam\n");
        }
        let dropped = log.state().suppressed;
        assert!(dropped >= 400, "{dropped}");
        // The call's end reports them once, and not again within REPORT_EVERY.
        log.end_call();
        assert_eq!(log.state().suppressed, 0);
        assert!(log.state().reported.is_some());
        for _ in 0..100 {
            out.write_bytes(b"spam\n");
        }
        log.end_call();
        assert!(log.state().suppressed > 0, "reported again too soon");
    }
}
