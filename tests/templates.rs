//! Differential tests of module template rendering against Go itself: tests/gotemplate is a
//! small Go program that renders with Go's own `text/template` exactly as Lilypad's Go node
//! does (inputs JSON-encoded with `encoding/json`, the `subst` function, the builtins). Every
//! template below, in the styles real modules use, is rendered by both over fixed and
//! randomly generated inputs (quotes, `<>&`, unicode, control characters, empty and missing
//! values); the outputs must be equal byte for byte, and where Go refuses, so must we.
//!
//! Needs Go (`go` on PATH); the oracle is built into a temporary directory.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use lilypad::module::render_text;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Templates in the styles of real module templates, and each builtin we claim.
const TEMPLATES: &[&str] = &[
    // A plain JSON-encoded input inside a JSON array.
    r#"["/usr/bin/cowsay", {{ .Message }}]"#,
    // Optional inputs with a default, `subst` building an environment variable.
    r#"[{{ if .A }}"{{ subst "IMAGE=%s" .A }}",{{else}}"IMAGE=lilypad",{{ end }} "X"]"#,
    // Quoting a JSON-encoded input again with %q.
    r#"[{{ if .B }}"MESSAGE={{ printf "%s" (printf "%q" .B) }}"{{ end }}]"#,
    // A whole JSON string passed through, or a default.
    r#"[{{if .A}}{{.A}}{{else}}"PROMPT=question mark floating in space"{{end}}, "OUTPUT_DIR=/outputs/"]"#,
    // Several optional subst lines.
    "[\n{{ if .A }}\"{{ subst \"PROMPT=%s\" .A }}\",{{ end }}\n{{ if .B }}\"{{ subst \"SEED=%s\" .B }}\",{{ end }}\n\"HF_HUB_OFFLINE=1\"]",
    // Builtin escapers.
    r#"{{ js .A }}|{{ html .A }}|{{ urlquery .A }}|{{ js .A .B }}"#,
    r#""{{ js .A }}""#,
    // Whitespace trimming and comments.
    "[\n  {{- .A -}}\n  ,\n  {{- /* a comment */ -}}\n  {{ .B }}  ]",
    // printf verbs, with and without enough arguments.
    r#"{{ printf "%s-%d-%v-%q-%5.2f" .A 42 .B .A 3.14159 }}"#,
    r#"{{ printf "%s %s" .A }}|{{ printf "%d" .A }}|{{ printf "x" .A }}"#,
    // subst with two arguments, too few, too many, and %q.
    r#"{{ subst "%s and %s" .A .B }}|{{ subst "%q" .A }}|{{ subst "%s %s" .A }}|{{ subst "x" .A }}"#,
    // Comparisons and logic.
    r#"{{ eq .A .B }} {{ ne .A .B }} {{ lt .A .B }} {{ le .A .B }} {{ gt .A .B }} {{ ge .A .B }}"#,
    r#"{{ and .A .B }}|{{ or .A "default" }}|{{ not .A }}|{{ if and .A (not .B) }}only A{{ end }}"#,
    r#"{{ eq .A "\"x\"" "\"y\"" }}"#,
    // len, index, print, println, variables, with, range.
    r#"{{ len .A }}|{{ index . "A" }}|{{ print .A 1 2 }}|{{ println .A .B }}"#,
    r#"{{ $x := .A }}{{ $x }}{{ with .B }}[{{ . }}]{{ else }}none{{ end }}"#,
    r#"{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ end }}"#,
    r#"{{ html .A .B }}|{{ urlquery .A 1 }}|{{ html 1 2 }}|{{ print 1 2 .A 3 }}"#,
    r#"{{ printf "%x %X %10s|%-5s|%.3s|%v" .A .A .A .A .A .B }}"#,
    r#"{{ printf "%+q|%#q|%8q|%-8q|%x" .A .A .A .A " " }}"#,
    r#"{{ printf "%[2]s %[1]s %*d" .A .B 5 42 }}"#,
    // Widths and precisions too large for Go end the format (found by fuzzing: the engine
    // tried to pad to 444 GB).
    r#"{{ .A | printf "%444444443139q" }}|{{ printf "a%5dz%12345678d|%d" 1 2 3 }}"#,
    r#"{{ printf "%.99999999f" 1.5 }}|{{ printf "%[99999999]d" 1 }}"#,
    r#"{{ index . "Missing" }}|{{ len .A }}|{{ slice .A 1 }}"#,
    r#"{{ range $i, $c := "abc" }}{{ $i }}{{ end }}|{{ range . }}{{ if eq . """" }}{{ break }}{{ end }}{{ . }}{{ end }}"#,
    // The missing-input cases Go renders rather than refuses.
    r#"{{ .Missing }}|{{ if .Missing }}yes{{ else }}no{{ end }}|{{ printf "%v" .Missing }}"#,
    // Go refuses these: a missing input where a string is needed, an unknown function,
    // bad syntax.
    r#"{{ subst "%s" .Missing }}"#,
    r#"{{ nosuchfunction .A }}"#,
    r#"{{ .A "#,
    r#"{{ if .A }}unclosed"#,
    r#"{{ end }}stray"#,
    r#"{{ else }}stray"#,
    r#"{{ printf "}}" }}{{ /* }} */ }}{{ range .A }}"#,
    r#"{{ len .Missing }}"#,
];

#[derive(Serialize)]
struct Case<'a> {
    template: &'a str,
    inputs: &'a BTreeMap<String, String>,
}

#[derive(Deserialize, Debug)]
struct GoResult {
    output: Option<String>,
    error: Option<String>,
}

/// Builds the Go oracle into a temporary directory.
fn oracle(dir: &Path) -> PathBuf {
    let binary = dir.join("gotemplate");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("go")
        .args(["build", "-buildvcs=false", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(root.join("tests/gotemplate"))
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .status()
        .expect("go is installed (the differential tests need Go's own text/template)");
    assert!(status.success(), "building the Go template oracle failed");
    binary
}

/// Renders every case with Go.
fn go_render(oracle: &Path, cases: &[Case]) -> Vec<GoResult> {
    let mut child = Command::new(oracle)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = serde_json::to_vec(cases).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the Go oracle failed");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Compares our rendering of each case with Go's; returns the number compared.
fn compare(oracle: &Path, input_sets: &[BTreeMap<String, String>]) -> usize {
    let cases: Vec<Case> = input_sets
        .iter()
        .flat_map(|inputs| {
            TEMPLATES
                .iter()
                .map(move |template| Case { template, inputs })
        })
        .collect();
    let go = go_render(oracle, &cases);
    assert_eq!(go.len(), cases.len());
    for (case, go) in cases.iter().zip(&go) {
        let ours = render_text(case.template, case.inputs);
        match (&ours, &go.output) {
            (Ok(ours), Some(theirs)) => assert_eq!(
                ours, theirs,
                "template {:?} with inputs {:?}",
                case.template, case.inputs
            ),
            (Err(_), None) => {}
            _ => panic!(
                "template {:?} with inputs {:?}: we give {ours:?}, Go gives {:?} / error {:?}",
                case.template, case.inputs, go.output, go.error
            ),
        }
    }
    cases.len()
}

fn inputs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn templates_render_exactly_as_go_renders_them() {
    let dir = tempfile::tempdir().unwrap();
    let oracle = oracle(dir.path());
    let fixed = vec![
        inputs(&[("Message", "moo"), ("A", "a"), ("B", "b")]),
        inputs(&[("Message", "say \"hi\" <to> you & me")]),
        inputs(&[("A", ""), ("B", "")]),
        inputs(&[("A", "x"), ("B", "")]),
        inputs(&[("A", "\"x\""), ("B", "\"y\"")]),
        inputs(&[
            ("A", "émoji 😀 \u{2028} line\nbreak\ttab"),
            ("B", "%s %d %%"),
        ]),
        inputs(&[("A", "{{ .B }}"), ("B", "back\\slash 'single'")]),
        inputs(&[("A", "\u{1}\u{7f}\u{8}\u{c}\r")]),
        inputs(&[]),
    ];
    let compared = compare(&oracle, &fixed);
    assert_eq!(compared, fixed.len() * TEMPLATES.len());
}

/// Random inputs drawn from the characters that matter to JSON, HTML, JavaScript, URLs and
/// printf, with keys present or missing at random (fixed seed, so a failure reproduces).
#[test]
fn random_inputs_render_exactly_as_go_renders_them() {
    const ALPHABET: &[char] = &[
        'a', 'Z', '0', ' ', '"', '\'', '\\', '/', '<', '>', '&', '%', '{', '}', '.', '=', ',',
        '\n', '\t', '\r', '\u{0}', '\u{1}', '\u{1f}', '\u{7f}', '\u{80}', 'é', 'ß', '中', '😀',
        '\u{2028}', '\u{2029}', '\u{feff}', '\u{fffd}',
    ];
    let mut rng = StdRng::seed_from_u64(0x1111_7a9d);
    let random_string = |rng: &mut StdRng| -> String {
        let len = rng.gen_range(0..12);
        (0..len)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())])
            .collect()
    };
    let mut sets = Vec::new();
    for _ in 0..150 {
        let mut set = BTreeMap::new();
        for key in ["Message", "A", "B"] {
            if rng.gen_bool(0.75) {
                set.insert(key.to_string(), random_string(&mut rng));
            }
        }
        sets.push(set);
    }
    let dir = tempfile::tempdir().unwrap();
    let oracle = oracle(dir.path());
    let compared = compare(&oracle, &sets);
    assert_eq!(compared, 150 * TEMPLATES.len());
}
