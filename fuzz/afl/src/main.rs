//! The AFL++ harness: one binary for the three targets of `percore::fuzz`
//! (`parse_head`, `body`, `connection`), chosen by `FUZZ_TARGET`, so that
//! every invariant lives in one place and `tests/fuzz.rs` checks the same.
//! A panic is a finding: AFL++ keeps the input under `crashes/`.

use percore::fuzz;

fn main() {
    let target = std::env::var("FUZZ_TARGET").unwrap_or_else(|_| "connection".into());
    let run: fn(&[u8]) = match target.as_str() {
        "parse_head" => fuzz::parse_head,
        "body" => fuzz::body,
        "connection" => fuzz::connection,
        other => panic!("FUZZ_TARGET={other}: one of parse_head, body, connection"),
    };
    afl::fuzz!(|data: &[u8]| run(data));
}
