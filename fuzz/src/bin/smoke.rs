//! The fuzz smoke run by hand: `smoke [COUNT]` (default 20000) runs COUNT inputs per target
//! (`lilt_fuzz::smoke`). A failing input is printed, escaped, and the run exits non-zero.

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    if let Err(failed) = lilt_fuzz::smoke::run_all(count) {
        eprintln!("{failed}");
        std::process::exit(1);
    }
}
