//! A rendered module (the job JSON a template produced): read and checked, it is a job we
//! can run or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = lilypad::module::read_rendered("fuzz", text);
    }
});
