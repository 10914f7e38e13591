//! Text from the wire is untrusted. Before anything of it reaches a
//! terminal, control characters, escape sequences, bidirectional overrides
//! and zero-width characters become visible, inert placeholders: the
//! operator sees that something odd was sent, and the terminal is never
//! told to do anything.

use std::fmt::Write;

/// Whether `c` must not reach a terminal as itself.
fn is_hostile(c: char) -> bool {
    c.is_control()
        || matches!(c,
            // bidirectional embeddings, overrides and isolates, and marks
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
            // zero-width and invisible formatting characters
            | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}' | '\u{180E}'
            // line and paragraph separators
            | '\u{2028}' | '\u{2029}')
}

fn placeholder(out: &mut String, c: char) {
    match c {
        // C0 controls and DEL have their own visible pictures: ESC is ␛.
        '\u{00}'..='\u{1F}' => out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{FFFD}')),
        '\u{7F}' => out.push('\u{2421}'),
        _ => {
            let _ = write!(out, "⟨U+{:04X}⟩", c as u32);
        }
    }
}

/// One line of untrusted text, safe to print. Newlines and tabs become
/// placeholders too.
pub fn inert(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_hostile(c) {
            placeholder(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// Multi-line untrusted text as safe lines: newlines split lines, a tab
/// becomes spaces, everything else hostile becomes a placeholder.
pub fn inert_lines(text: &str) -> Vec<String> {
    text.split('\n')
        .map(|line| inert(&line.trim_end_matches('\r').replace('\t', "    ")))
        .collect()
}

/// The longest file name [`file_name`] makes, in bytes.
pub const MAX_FILE_NAME: usize = 200;

/// An untrusted name (an attachment's, from the wire) as a harmless file
/// name in one directory: directories are stripped (`/` and `\\` both
/// count), hostile characters become `_`, a leading dot becomes `_` (so no
/// `..` and no hidden files), and nothing empty is left.
pub fn file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut out = String::with_capacity(last.len());
    for c in last.chars() {
        let c = if is_hostile(c) || c == ':' { '_' } else { c };
        if out.len() + c.len_utf8() > MAX_FILE_NAME {
            break;
        }
        out.push(c);
    }
    let trimmed = out.trim();
    let mut out = match trimmed.strip_prefix('.') {
        Some(rest) => format!("_{rest}"),
        None => trimmed.to_string(),
    };
    if out.is_empty() || out.chars().all(|c| c == '.' || c == '_') && out.contains('.') {
        out = "attachment".to_string();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_stay_in_their_directory() {
        assert_eq!(file_name("../../etc/passwd"), "passwd");
        assert_eq!(file_name("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(file_name(".."), "attachment");
        assert_eq!(file_name("a/.."), "attachment");
        assert_eq!(file_name("/"), "attachment");
        assert_eq!(file_name(""), "attachment");
        assert_eq!(file_name(".bashrc"), "_bashrc");
        assert_eq!(file_name("map\u{1b}[2J.png"), "map_[2J.png");
        assert_eq!(file_name("evil\u{202E}gnp.exe"), "evil_gnp.exe");
        assert_eq!(file_name("C:report.pdf"), "C_report.pdf");
        assert_eq!(file_name("Карта района.png"), "Карта района.png");
        assert!(file_name(&"x".repeat(1000)).len() <= MAX_FILE_NAME);
        for evil in ["../../etc/passwd", "..", "a/../../b", "\u{0}", "./.", "..."] {
            let n = file_name(evil);
            assert!(
                !n.contains('/') && !n.starts_with('.') && !n.is_empty(),
                "{evil:?} -> {n:?}"
            );
        }
    }

    #[test]
    fn escapes_become_visible() {
        let evil = "a\u{1b}[2Jb\u{1b}]0;pwned\u{07}c\u{1b}]52;c;SGVsbG8=\u{07}";
        let safe = inert(evil);
        assert!(!safe.chars().any(|c| c.is_control()), "{safe:?}");
        assert!(safe.contains("␛[2J"), "{safe}");
        assert!(safe.contains("␇"), "{safe}");
    }

    #[test]
    fn bidi_and_zero_width_become_visible() {
        let safe = inert("abc\u{202E}fed\u{200B}x\u{2066}y\u{FEFF}");
        assert_eq!(safe, "abc⟨U+202E⟩fed⟨U+200B⟩x⟨U+2066⟩y⟨U+FEFF⟩");
    }

    #[test]
    fn ordinary_text_is_untouched() {
        for t in [
            "Hello",
            "Уведомление о пуске",
            "45.9200N 063.3400E",
            "261415Z NOV 26",
        ] {
            assert_eq!(inert(t), t);
        }
        assert_eq!(
            inert_lines("a\tb\r\nc"),
            vec!["a    b".to_string(), "c".to_string()]
        );
        assert_eq!(inert("\u{9b}"), "⟨U+009B⟩");
    }
}
