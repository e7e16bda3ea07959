//! Shared checks for the fuzz targets, each run by its libFuzzer target and by the stable
//! `smoke` run: the XML splitter (here: whatever bytes arrive, in whatever pieces, it must not
//! panic, must stop growing at its limits, and every stanza it yields must serialize to bytes
//! that parse back to the same element), the c2s stream core (`c2s`), the BOSH body parser and
//! session (`bosh`) and MUC owner requests (`muc`); plus the seeded mutator (`mutate`) and the
//! stable smoke run (`smoke`).

use lilt_proto::xml::{Event, StreamParser, parse_element};

mod bosh;
mod c2s;
mod muc;
pub mod mutate;
pub mod smoke;

pub use bosh::check_bosh;
pub use c2s::check_c2s;
pub use muc::check_muc_owner;

/// Feed `data` to a parser in pieces whose sizes come from `cuts`, checking invariants.
pub fn check_splitter(data: &[u8], cuts: &[u8]) {
    let limits = c2s::limits();
    let mut parser = StreamParser::new(limits.clone());
    let mut rest = data;
    let mut cut_iter = cuts.iter().cycle();
    while !rest.is_empty() {
        let n = (*cut_iter.next().unwrap_or(&255) as usize).clamp(1, rest.len());
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        if parser.feed(piece).is_err() {
            return;
        }
        assert!(
            parser.buffered_len() <= 2 * limits.max_stanza_bytes + 256,
            "buffer grew past the limit"
        );
        loop {
            match parser.next_event() {
                Ok(Some(Event::Stanza(el))) => {
                    let bytes = el.to_bytes("");
                    let again = parse_element(&bytes, &crate::c2s::unlimited())
                        .unwrap_or_else(|e| panic!("re-parse of {el} failed: {e}"));
                    assert_eq!(again, el, "round trip changed the element");
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}
