//! libFuzzer target for MUC owner requests (needs nightly and cargo-fuzz:
//! `cargo +nightly fuzz run muc_owner_form --features libfuzzer`). The input is the
//! `<query xmlns='http://jabber.org/protocol/muc#owner'/>` the room's owner sends.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lilt_fuzz::check_muc_owner(data);
});
