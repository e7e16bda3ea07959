//! What every phase of a c2s stream shares: the transport's framing, the input parser (or the
//! queue of framed events), and the outputs with the byte buffer they are batched from. Knows
//! how to write elements, our stream header, features and stream errors in each framing;
//! knows nothing of phases.

use std::collections::VecDeque;

use super::{Output, PendingInput};
use crate::entropy::{self, Entropy};
use crate::stanza::{self, Outbound};
use crate::stream::error::StreamCondition;
use crate::stream::framing::{self, Framing};
use crate::xml::{self, Element, Event, StreamParser, XmlError, ns};

/// The stream's input and output, across phases.
#[derive(Debug)]
pub(super) struct Io {
    pub(super) framing: Framing,
    pub(super) parser: StreamParser,
    /// Framed input waiting to be processed (framed modes only).
    pub(super) frames: VecDeque<Event>,
    pub(super) out: VecDeque<Output>,
    /// Bytes not yet handed out as one `Output::Write` (`Framing::Stream`).
    write_buf: Vec<u8>,
}

impl Io {
    pub(super) fn new(framing: Framing, parser: StreamParser) -> Self {
        Io {
            framing,
            parser,
            frames: VecDeque::new(),
            out: VecDeque::new(),
            write_buf: Vec::new(),
        }
    }

    pub(super) fn poll_output(&mut self) -> Option<Output> {
        self.flush_writes();
        self.out.pop_front()
    }

    /// The next input event: from the parser, or the frame queue in framed modes.
    pub(super) fn next_event(&mut self) -> Result<Option<Event>, XmlError> {
        if self.framing.is_framed() {
            Ok(self.frames.pop_front())
        } else {
            self.parser.next_event()
        }
    }

    pub(super) fn take_input(&mut self, limits: &xml::Limits) -> PendingInput {
        PendingInput {
            framing: self.framing,
            parser: std::mem::replace(&mut self.parser, StreamParser::new(limits.clone())),
            frames: std::mem::take(&mut self.frames),
        }
    }

    pub(super) fn restore_input(&mut self, input: PendingInput) {
        self.parser = input.parser;
        self.frames = input.frames;
    }

    /// Continue on another transport's input; what was queued for the old one is dropped.
    pub(super) fn replace_transport(&mut self, input: PendingInput) {
        self.framing = input.framing;
        self.parser = input.parser;
        self.frames = input.frames;
        self.write_buf.clear();
        self.out.clear();
    }

    /// Drop bytes not yet handed out (the transport is gone).
    pub(super) fn discard_writes(&mut self) {
        self.write_buf.clear();
    }

    /// Our stream header, `from` the vhost if known (none for BOSH: its `<body/>` is that).
    pub(super) fn header(&mut self, from: Option<&str>, entropy: &dyn Entropy) {
        match self.framing {
            Framing::Stream => {}
            Framing::WebSocket => {
                let open = framing::ws_open(from, &entropy::uuid(entropy).to_string());
                self.out.push_back(Output::Frame(open));
                return;
            }
            Framing::Bosh => return,
        }
        let mut header = String::from("<?xml version='1.0'?><stream:stream xmlns='jabber:client' ");
        header.push_str(
            "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en' id='",
        );
        header.push_str(&entropy::uuid(entropy).to_string());
        header.push('\'');
        if let Some(from) = from {
            header.push_str(" from='");
            let mut esc = Vec::new();
            xml::escape_attr(from, &mut esc);
            header.push_str(&String::from_utf8_lossy(&esc));
            header.push('\'');
        }
        header.push('>');
        self.write_raw(header.as_bytes());
    }

    /// `<stream:features/>` with these children.
    pub(super) fn features(&mut self, features: &[Element]) {
        if self.framing.is_framed() {
            self.out
                .push_back(Output::Frame(framing::features_frame(features)));
        } else {
            self.write_raw(b"<stream:features>");
            for f in features {
                f.write_to(&mut self.write_buf, "");
            }
            self.write_raw(b"</stream:features>");
        }
    }

    /// `<stream:error/>` and our end of the stream (the header must be written already).
    pub(super) fn stream_error(&mut self, condition: StreamCondition, text: Option<&str>) {
        let err = stanza::stream_error(condition.name(), text);
        if self.framing.is_framed() {
            self.out
                .push_back(Output::Frame(framing::error_frame(&err)));
        } else {
            self.write_raw(b"<stream:error>");
            for child in err.children() {
                child.write_to(&mut self.write_buf, ns::STREAMS);
            }
            self.write_raw(b"</stream:error>");
        }
        self.write_close();
    }

    /// Send one top-level element.
    pub(super) fn write(&mut self, el: &Element) {
        if self.framing.is_framed() {
            self.out
                .push_back(Output::Frame(framing::element_frame(el)));
        } else {
            el.write_to(&mut self.write_buf, ns::CLIENT);
        }
    }

    pub(super) fn write_outbound(&mut self, stanza: &Outbound) {
        if self.framing.is_framed() {
            let mut frame = Vec::with_capacity(256);
            stanza.write_to(&mut frame, true);
            self.out.push_back(Output::Frame(frame));
        } else {
            stanza.write_to(&mut self.write_buf, false);
        }
    }

    /// Our side of the stream's end.
    pub(super) fn write_close(&mut self) {
        match self.framing {
            Framing::Stream => self.write_raw(b"</stream:stream>"),
            Framing::WebSocket => self
                .out
                .push_back(Output::Frame(framing::WS_CLOSE.to_vec())),
            Framing::Bosh => {}
        }
    }

    fn write_raw(&mut self, bytes: &[u8]) {
        self.write_buf.extend_from_slice(bytes);
    }

    /// Hand buffered bytes out as one `Output::Write`, keeping the order with other outputs.
    pub(super) fn flush_writes(&mut self) {
        if !self.write_buf.is_empty() {
            let bytes = std::mem::take(&mut self.write_buf);
            self.out.push_back(Output::Write(bytes));
        }
    }
}
