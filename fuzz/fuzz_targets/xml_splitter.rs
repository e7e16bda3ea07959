//! libFuzzer target for the XML splitter: the first bytes choose the piece sizes, the rest is
//! the stream; `lilt_fuzz::check_splitter` holds the invariants.
//!
//! Fuzz harness (needs nightly and cargo-fuzz: `cargo +nightly fuzz run xml_splitter
//! --features libfuzzer`). On stable, use the `smoke` binary instead (fuzz/README.md).
//! Tests: this is one.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let split = data.len().min(8);
    lilt_fuzz::check_splitter(&data[split..], &data[..split]);
});
