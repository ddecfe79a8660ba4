//! Module templates (Go text/template) with the user's inputs: rendering and reading the
//! job must end with a job or an error, never a panic or a runaway. Input: the template,
//! then NUL-separated KEY=VALUE inputs.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let template = parts.next().unwrap_or_default();
    let inputs: BTreeMap<String, String> = parts
        .take(8)
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    let _ = lilypad::module::render_text(template, &inputs);
    let _ = lilypad::module::render("fuzz", template, &inputs);
});
