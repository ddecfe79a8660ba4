//! Rendering a module's `lilypad_module.json.tmpl` exactly as Lilypad's Go node does: Go
//! `text/template` semantics (through `gotmpl`, a port of it), with the data a map from each
//! input's name to the input encoded as Go's `json.Marshal` encodes a string, plus Lilypad's
//! `subst` function. So a missing input renders `<no value>` and is false in `{{if}}`, and the
//! builtins (`printf`, `js`, `html`, `urlquery`, `eq`, `and`, `len`, `index`…) behave as in Go.
//! Tests compare this renderer with Go's own, byte for byte (tests/templates.rs).

use std::collections::BTreeMap;

use gotmpl::{Template, TemplateError, Value};

/// Renders `template` with `inputs`; the error is the engine's message.
pub fn render_text(template: &str, inputs: &BTreeMap<String, String>) -> Result<String, String> {
    check_blocks(template)?;
    let parsed = Template::new("module")
        .func("subst", subst)
        .func("printf", |args: &[Value]| match args.split_first() {
            Some((Value::String(format), rest)) => go_printf(format, rest),
            _ => go_printf_raw(args),
        })
        .func("index", go_index)
        .func("js", |args: &[Value]| {
            Ok(Value::from(go_js_escape(&sprint(args))))
        })
        .func("html", |args: &[Value]| {
            Ok(Value::from(gotmpl::html_escape(&sprint(args))))
        })
        .func("urlquery", |args: &[Value]| {
            Ok(Value::from(gotmpl::url_encode(&sprint(args))))
        })
        .parse(template)
        .map_err(|error| error.to_string())?;
    let data: BTreeMap<String, Value> = inputs
        .iter()
        .map(|(name, value)| (name.clone(), Value::from(go_json_string(value))))
        .collect();
    parsed
        .execute_to_string(&Value::from(data))
        .map_err(|error| error.to_string())
}

/// Refuses a template whose `if`/`range`/`with`/`define`/`block` actions are not closed
/// by `end` (or an `end` or `else` with nothing to close), as Go's parser does ("unexpected
/// EOF"); the engine alone would render such a template up to where it stops.
fn check_blocks(template: &str) -> Result<(), String> {
    let mut open: Vec<String> = Vec::new();
    let mut line = 1;
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        line += rest[..start].matches('\n').count();
        let action = &rest[start + 2..];
        let end = action_end(action)
            .ok_or_else(|| format!("template: module:{line}: unclosed action"))?;
        let body = action[..end].trim_start_matches('-').trim();
        let keyword: String = body
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        match keyword.as_str() {
            "if" | "range" | "with" | "define" | "block" => open.push(keyword),
            "end" if open.pop().is_none() => {
                return Err(format!("template: module:{line}: unexpected {{{{end}}}}"));
            }
            "else"
                if !open
                    .last()
                    .is_some_and(|k| matches!(k.as_str(), "if" | "range" | "with")) =>
            {
                return Err(format!("template: module:{line}: unexpected {{{{else}}}}"));
            }
            _ => {}
        }
        line += action[..end].matches('\n').count();
        rest = &action[end + 2..];
    }
    match open.last() {
        Some(keyword) => Err(format!(
            "template: module:{line}: unexpected EOF (a {{{{{keyword}}}}} is never closed by {{{{end}}}})"
        )),
        None => Ok(()),
    }
}

/// Where the action starting `text` (just after `{{`) ends: the index of its `}}`, skipping
/// comments and quoted strings, which may contain braces.
fn action_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'}' if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2 + text[i + 2..].find("*/")? + 2;
                continue;
            }
            quote @ (b'"' | b'\'' | b'`') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    if bytes[i] == b'\\' && quote != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// What Go's escaping builtins (`js`, `html`, `urlquery`) escape: their arguments printed
/// as `fmt.Sprint` prints them (a space between two operands when neither is a string; a
/// missing input, which reaches a function as nil, is the string `<no value>`).
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        let stringish = |v: &Value| matches!(v, Value::String(_) | Value::Nil);
        if i > 0 && !stringish(&args[i - 1]) && !stringish(arg) {
            out.push(' ');
        }
        match arg {
            Value::Nil => out.push_str("<no value>"),
            other => out.push_str(&other.to_string()),
        }
    }
    out
}

/// Lilypad's `subst FORMAT ARGS...`: each argument is a JSON-encoded string (an input); it
/// is decoded, then all are formatted with `FORMAT` as Go's `fmt.Sprintf` does (by the
/// engine's own `printf`).
fn subst(args: &[Value]) -> gotmpl::Result<Value> {
    let Some((format, encoded)) = args.split_first() else {
        return Err(TemplateError::Exec(
            "subst: needs a format and arguments".into(),
        ));
    };
    let mut decoded = Vec::with_capacity(encoded.len());
    for arg in encoded {
        let Value::String(text) = arg else {
            return Err(TemplateError::Exec(format!(
                "subst: argument {arg} is not a string"
            )));
        };
        let value: String = serde_json::from_str(text)
            .map_err(|_| TemplateError::Exec("subst: invalid input".into()))?;
        decoded.push(Value::from(value));
    }
    match format {
        Value::String(format) => go_printf(format, &decoded),
        other => {
            let mut all = vec![other.clone()];
            all.extend(decoded);
            go_printf_raw(&all)
        }
    }
}

/// Go's `fmt.Sprintf(format, args...)`: the engine's `printf`, except that a plain `%q` of a
/// string quotes it as Go's `strconv.Quote` does (the engine keeps some characters Go
/// escapes, such as U+0080 or U+2028, unescaped).
fn go_printf(format: &str, args: &[Value]) -> gotmpl::Result<Value> {
    // A width or precision too large for Go ends the format there, as Go's fmt ends it
    // ("%!(NOVERB)", then the unused arguments); the engine would try to pad to it.
    let (format, tail) = match go_oversized_verb(format) {
        Some(at) => (&format[..at], "%%!(NOVERB)"),
        None => (format, ""),
    };
    if format.contains('*')
        && args
            .iter()
            .any(|arg| matches!(arg, Value::Int(n) if n.unsigned_abs() > GO_MAX_WIDTH))
    {
        // Go prints %!(BADWIDTH) where the argument lands on a star; the engine would pad.
        return Err(TemplateError::Exec(format!(
            "printf: a width or precision taken from an argument is over {GO_MAX_WIDTH}"
        )));
    }
    let mut args = args.to_vec();
    let mut fixed = String::with_capacity(format.len());
    let mut next_arg = 0;
    let mut chars = format.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        fixed.push(c);
        if c != '%' {
            continue;
        }
        // The verb's flags, width and precision, then the verb itself.
        let mut spec = String::new();
        let mut verb = None;
        for (_, c) in chars.by_ref() {
            if c.is_ascii_digit() || "+-# 0.*[]".contains(c) {
                spec.push(c);
                continue;
            }
            verb = Some(c);
            break;
        }
        let Some(verb) = verb else {
            fixed.push_str(&spec);
            break;
        };
        if verb == '%' && spec.is_empty() {
            fixed.push('%');
            continue;
        }
        if spec.contains(['*', '[']) {
            // Argument indexes and star widths move the argument cursor: leave the whole
            // format to the engine.
            let mut all = vec![Value::from(format!("{format}{tail}"))];
            all.extend(args.iter().cloned());
            return go_printf_raw(&all);
        }
        match (verb, args.get(next_arg)) {
            ('q', Some(Value::String(text))) if !spec.contains('0') => {
                args[next_arg] = Value::from(quote_verb(text, &spec));
                fixed.push('s');
            }
            _ => {
                fixed.push_str(&spec);
                fixed.push(verb);
            }
        }
        next_arg += 1;
    }
    fixed.push_str(tail);
    let mut all = vec![Value::from(fixed)];
    all.extend(args);
    go_printf_raw(&all)
}

/// The largest width or precision Go's fmt reads digit by digit: it stops at a number
/// already above this before its next digit (its `tooLarge`).
const GO_MAX_WIDTH: u64 = 1_000_000;

/// Where the `%` of the first verb whose width or precision Go's fmt finds too large is.
fn go_oversized_verb(format: &str) -> Option<usize> {
    let bytes = format.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        // Flags, then width, then precision; digit runs are what Go parses as numbers.
        while i < bytes.len() && b"+-# 0".contains(&bytes[i]) {
            i += 1;
        }
        loop {
            let mut number: u64 = 0;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                if number > GO_MAX_WIDTH {
                    return Some(start);
                }
                number = number * 10 + u64::from(bytes[i] - b'0');
                i += 1;
            }
            match bytes.get(i) {
                // An argument index: Go reads it whole (a bad one is BADINDEX, for the
                // engine to say); it allocates nothing.
                Some(b'[') => {
                    while i < bytes.len() && bytes[i] != b']' {
                        i += 1;
                    }
                    i += 1;
                }
                // Precision or a star: numbers may follow.
                Some(b'.' | b'*') => i += 1,
                _ => break,
            }
        }
        // The verb (a `%%` included) ends the spec.
        i += 1;
    }
    None
}

/// `%q` of `text` with the flags, width and precision in `spec`, as Go's fmt does it:
/// precision cuts the text (in characters), `+` quotes with ASCII only, `#` uses backquotes
/// where Go can, width pads with spaces (on the right with `-`).
fn quote_verb(text: &str, spec: &str) -> String {
    let (flags_and_width, precision) = match spec.split_once('.') {
        Some((before, after)) => (before, Some(after.parse::<usize>().unwrap_or(0))),
        None => (spec, None),
    };
    let flags: String = flags_and_width
        .chars()
        .take_while(|c| "+-# ".contains(*c))
        .collect();
    let width: usize = flags_and_width[flags.len()..].parse().unwrap_or(0);
    let text: String = match precision {
        Some(n) => text.chars().take(n).collect(),
        None => text.to_string(),
    };
    let quoted = if flags.contains('#') && can_backquote(&text) {
        format!("`{text}`")
    } else if flags.contains('+') {
        go_quote_ascii(&text)
    } else {
        go_quote(&text)
    };
    let len = quoted.chars().count();
    if len >= width {
        quoted
    } else if flags.contains('-') {
        format!("{quoted}{}", " ".repeat(width - len))
    } else {
        format!("{}{quoted}", " ".repeat(width - len))
    }
}

/// Go's `strconv.CanBackquote`.
fn can_backquote(s: &str) -> bool {
    s.chars()
        .all(|c| c != '`' && c != '\u{feff}' && c != '\u{7f}' && (c >= ' ' || c == '\t'))
}

/// Go's `strconv.QuoteToASCII`: as [`go_quote`], with every non-ASCII character escaped.
fn go_quote_ascii(s: &str) -> String {
    let quoted = go_quote(s);
    let mut out = String::with_capacity(quoted.len());
    for c in quoted.chars() {
        match c as u32 {
            0..=0x7f => out.push(c),
            n if n < 0x10000 => out.push_str(&format!("\\u{n:04x}")),
            n => out.push_str(&format!("\\U{n:08x}")),
        }
    }
    out
}

/// Go's `index ITEM KEYS...` over what templates here can hold (the inputs map and
/// strings): a key missing from the map gives the map's zero value, the empty string (the
/// engine would give `<no value>`); a string indexed by a number gives that byte.
fn go_index(args: &[Value]) -> gotmpl::Result<Value> {
    let Some((item, keys)) = args.split_first() else {
        return Err(TemplateError::Exec("index: needs an item".into()));
    };
    let mut item = item.clone();
    for key in keys {
        item = match (&item, key) {
            (Value::Map(map), Value::String(key)) => map
                .get(key.as_ref())
                .cloned()
                .unwrap_or_else(|| Value::from("")),
            (Value::String(text), Value::Int(at)) => {
                let byte = usize::try_from(*at)
                    .ok()
                    .and_then(|at| text.as_bytes().get(at))
                    .ok_or_else(|| {
                        TemplateError::Exec(format!(
                            "error calling index: index out of range: {at}"
                        ))
                    })?;
                Value::Int(i64::from(*byte))
            }
            (item, key) => {
                return Err(TemplateError::Exec(format!(
                    "error calling index: cannot index {item} with {key}"
                )))
            }
        };
    }
    Ok(item)
}

/// The engine's own `printf` over `args` (format first).
fn go_printf_raw(args: &[Value]) -> gotmpl::Result<Value> {
    let mut call = String::from("{{printf");
    for index in 0..args.len() {
        call.push_str(&format!(" (index .A {index})"));
    }
    call.push_str("}}");
    let data = BTreeMap::from([("A".to_string(), Value::from(args.to_vec()))]);
    let text = Template::new("printf")
        .parse(&call)?
        .execute_to_string(&Value::from(data))?;
    Ok(Value::from(text))
}

/// `s` quoted as Go's `strconv.Quote` quotes it: printable characters (Go's
/// `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space) as
/// they are, the rest escaped.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if go_is_print(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// `s` escaped as Go's `template.JSEscapeString` escapes it: `\\`, quotes, `<>&=` and control
/// characters as escapes, other ASCII as is, and non-ASCII kept only where printable.
fn go_js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' | '>' | '&' | '=' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if c.is_ascii() || go_is_print(c) => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    out
}

/// Go's `unicode.IsPrint`.
fn go_is_print(c: char) -> bool {
    use unicode_general_category::{get_general_category, GeneralCategory as G};
    if c == ' ' {
        return true;
    }
    !matches!(
        get_general_category(c),
        G::Control
            | G::Format
            | G::Surrogate
            | G::PrivateUse
            | G::Unassigned
            | G::SpaceSeparator
            | G::LineSeparator
            | G::ParagraphSeparator
    )
}

/// `s` as Go's `json.Marshal` encodes a string: like JSON, plus `<`, `>` and `&` escaped as
/// `\u003c`, `\u003e`, `\u0026` and U+2028, U+2029 as `\u2028`, `\u2029` (so the text is
/// safe inside HTML and JavaScript).
pub fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Names the template reads from its data (`.Name`) that `inputs` lacks: for error messages
/// when a missing input (rendered `<no value>`) broke the spec.
pub fn missing_inputs(template: &str, inputs: &BTreeMap<String, String>) -> Vec<String> {
    let mut missing = Vec::new();
    for action in template.split("{{").skip(1) {
        let action = action.split("}}").next().unwrap_or("");
        let mut rest = action;
        while let Some(at) = rest.find('.') {
            let after = &rest[at + 1..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let starts_a_name = name.chars().next().is_some_and(|c| !c.is_ascii_digit());
            let preceded_by_word = rest[..at]
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ')');
            if starts_a_name
                && !preceded_by_word
                && !inputs.contains_key(&name)
                && !missing.contains(&name)
            {
                missing.push(name.clone());
            }
            rest = &after[name.len()..];
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn widths_too_large_for_go_end_the_format_instead_of_filling_memory() {
        let inputs = BTreeMap::from([("A".to_string(), "abc".to_string())]);
        // The fuzzer's find: a 444 GB pad.
        let text = render_text(r#"{{ .A | printf "%444444443139q" }}"#, &inputs).unwrap();
        assert_eq!(text, r#"%!(NOVERB)%!(EXTRA string="abc")"#);
        let error = render_text(r#"{{ printf "%*d" 4444444444444 1 }}"#, &inputs).unwrap_err();
        assert!(error.contains("over 1000000"), "{error}");
        // Go pads to a million; the engine renders it without running away.
        assert!(render_text(r#"{{ printf "%1000000q" .A | len }}"#, &inputs).is_ok());
    }

    #[test]
    fn inputs_are_json_encoded_as_go_does() {
        assert_eq!(
            go_json_string("a<b>&\"c\u{2028}\u{8}\u{c}\u{1}é\n"),
            r#""a\u003cb\u003e\u0026\"c\u2028\b\f\u0001é\n""#
        );
        let out = render_text("{{.M}}", &inputs(&[("M", "<moo>")])).unwrap();
        assert_eq!(out, r#""\u003cmoo\u003e""#);
    }

    #[test]
    fn a_missing_input_renders_no_value_and_is_false() {
        let out = render_text(
            "{{.Missing}}|{{if .Missing}}yes{{else}}no{{end}}",
            &inputs(&[]),
        )
        .unwrap();
        assert_eq!(out, "<no value>|no");
    }

    #[test]
    fn subst_decodes_its_arguments_then_formats() {
        let out = render_text(
            r#"{{ if .P }}"{{ subst "PROMPT=%s" .P }}",{{ end }}"#,
            &inputs(&[("P", "a \"cat\"")]),
        )
        .unwrap();
        assert_eq!(out, "\"PROMPT=a \"cat\"\",");
        assert!(render_text(r#"{{ subst "%s" "not json" }}"#, &inputs(&[])).is_err());
    }

    #[test]
    fn missing_inputs_are_named_for_errors() {
        let given = inputs(&[("Given", "x")]);
        assert_eq!(
            missing_inputs(
                "{{ .Message }} {{ if .Given }}{{ subst \"%s\" .Seed }}{{ end }} {{ .Message }}",
                &given
            ),
            vec!["Message".to_string(), "Seed".to_string()]
        );
        assert!(missing_inputs("{{ printf \"%.2f\" 1.5 }}", &given).is_empty());
    }
}
