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

#[cfg(test)]
mod tests {
    use super::*;

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
