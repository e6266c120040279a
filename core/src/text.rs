//! Text from outside the daemon (process names, command lines, what clients stored before
//! control characters were refused) made safe to print: control characters, and the Unicode
//! format characters that reorder a line on a terminal, are shown escaped (`\u{1b}`), so no
//! string can forge a log line or drive the operator's terminal.

use std::borrow::Cow;

/// Characters that must not reach a log line or a terminal as they are.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        // Bidirectional overrides and isolates, and the zero-width format characters.
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// `s` on one line, at most `max_bytes` long: unsafe characters (which the free-text rule
/// refuses) become spaces, and the cut falls on a character boundary.
pub fn single_line(s: &str, max_bytes: usize) -> String {
    let clean = s
        .chars()
        .map(|c| if is_unsafe(c) { ' ' } else { c })
        .collect();
    truncate_on_char(clean, max_bytes)
}

/// `s` cut to at most `max_bytes`, on a character boundary.
pub fn truncate_on_char(mut s: String, max_bytes: usize) -> String {
    if s.len() > max_bytes {
        let mut cut = max_bytes;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// `s` with every unsafe character escaped; borrowed when there is none.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if is_unsafe(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_reordering_characters_are_escaped() {
        assert_eq!(printable("web api"), "web api");
        assert!(matches!(printable("plain"), Cow::Borrowed(_)));
        assert_eq!(printable("a\nb"), "a\\u{a}b");
        assert_eq!(printable("\u{1b}[2J"), "\\u{1b}[2J");
        assert_eq!(printable("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(printable("\u{85}"), "\\u{85}");
        assert_eq!(printable("naïve ✓"), "naïve ✓");
    }
}
