//! libFuzzer target for the BOSH body parser and session (needs nightly and cargo-fuzz:
//! `cargo +nightly fuzz run bosh_body --features libfuzzer`). Each line is one request body.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lilt_fuzz::check_bosh(data);
});
