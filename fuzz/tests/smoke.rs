//! The fuzz smoke run as part of the workspace's tests (`cargo nextest run --release`): 20000
//! inputs per target, with Lilt's debug assertions and overflow checks on (the release
//! profile keeps them for the workspace's own crates, lilt-proto included).

#[test]
fn twenty_thousand_inputs_per_target_pass() {
    match lilt_fuzz::smoke::run_all(20_000) {
        Ok(total) => assert_eq!(total, 4 * 20_000),
        Err(failed) => panic!("{failed}"),
    }
}
