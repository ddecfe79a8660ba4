//! Signed request headers and their verification. Input: the address, timestamp and
//! signature header values, the path and the body, one per line (the body is the rest).
//! A signature that reads must read back the same from its canonical form (so replays are
//! decided on one value whatever its encoding), and nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lilypad::data::signing;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(5, |&b| b == b'\n');
    let mut text = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let (address, timestamp, signature, path) = (text(), text(), text(), text());
    let body = parts.next().unwrap_or_default();
    if let Ok(canonical) = signing::normalize(&signature) {
        let again = signing::normalize(&hex::encode(canonical.to_vec()))
            .expect("a normalised signature reads back");
        assert_eq!(again, canonical);
    }
    if let Ok(headers) =
        signing::parse_headers(Some(&address), Some(&timestamp), Some(&signature))
    {
        let _ = signing::verify(&headers, "POST", &path, body, headers.timestamp);
    }
});
