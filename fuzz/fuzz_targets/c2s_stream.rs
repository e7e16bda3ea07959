//! libFuzzer target for the c2s stream core (needs nightly and cargo-fuzz:
//! `cargo +nightly fuzz run c2s_stream --features libfuzzer`). The first byte picks the framing
//! (even: byte stream, odd: WebSocket, one message per line), the next four size the pieces.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let split = rest.len().min(4);
    lilt_fuzz::check_c2s(mode, &rest[split..], &rest[..split]);
});
