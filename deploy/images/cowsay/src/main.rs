//! `cowsay MESSAGE...`: prints the message in a speech bubble above a cow, like the classic
//! program, and writes the same text to /outputs/cow.txt when that directory exists.
//! Deterministic: the same message always gives the same bytes.

use std::io::Write;

const WIDTH: usize = 40;

fn main() {
    let message = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let text = render(&message);
    let mut stdout = std::io::stdout();
    if stdout.write_all(text.as_bytes()).is_err() {
        std::process::exit(1);
    }
    let outputs = std::path::Path::new("/outputs");
    if outputs.is_dir() && std::fs::write(outputs.join("cow.txt"), &text).is_err() {
        eprintln!("cowsay: cannot write /outputs/cow.txt");
        std::process::exit(1);
    }
}

/// Wraps `message` into lines of at most WIDTH characters.
fn wrap(message: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in message.split_whitespace() {
        let mut word = word.to_string();
        while word.chars().count() > WIDTH {
            let head: String = word.chars().take(WIDTH).collect();
            word = word.chars().skip(WIDTH).collect();
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            lines.push(head);
        }
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > WIDTH {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

fn render(message: &str) -> String {
    let lines = wrap(message);
    let width = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    out.push_str(&format!(" {}\n", "_".repeat(width + 2)));
    for (index, line) in lines.iter().enumerate() {
        let (open, close) = match (lines.len(), index) {
            (1, _) => ('<', '>'),
            (_, 0) => ('/', '\\'),
            (n, i) if i == n - 1 => ('\\', '/'),
            _ => ('|', '|'),
        };
        let pad = width - line.chars().count();
        out.push_str(&format!("{open} {line}{} {close}\n", " ".repeat(pad)));
    }
    out.push_str(&format!(" {}\n", "-".repeat(width + 2)));
    out.push_str("        \\   ^__^\n");
    out.push_str("         \\  (oo)\\_______\n");
    out.push_str("            (__)\\       )\\/\\\n");
    out.push_str("                ||----w |\n");
    out.push_str("                ||     ||\n");
    out
}
