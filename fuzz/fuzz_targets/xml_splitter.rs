//! libFuzzer target for the XML splitter (needs a nightly toolchain and cargo-fuzz:
//! `cargo +nightly fuzz run xml_splitter --features libfuzzer`). On stable, use the `smoke` bin.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let split = data.len().min(8);
    lilt_fuzz::check_splitter(&data[split..], &data[..split]);
});
