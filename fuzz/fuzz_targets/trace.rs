//! Arbitrary bytes through the trace reader: `Trace::decode` never panics, and a trace it
//! accepts encodes back to bytes that decode to the same trace.
#![no_main]

use hotbreaker::recording::Trace;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    // Half the inputs behind the magic and version, so that the fuzzer spends its time on
    // the fields.
    let mut bytes = Vec::with_capacity(input.len() + 8);
    if input.first().is_some_and(|b| b & 1 == 1) {
        bytes.extend_from_slice(b"hbtrace\x01");
        bytes.extend_from_slice(&input[1..]);
    } else {
        bytes.extend_from_slice(input);
    }
    if let Ok(trace) = Trace::decode(&bytes) {
        let again = Trace::decode(&trace.encode()).expect("an encoded trace decodes");
        assert_eq!(again, trace);
    }
});
