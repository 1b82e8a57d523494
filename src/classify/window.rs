//! What the policy's patterns see of the last user message: all of its decoded text when it
//! is short, else a window of its head and tail, decoded into one buffer.

use super::estimate::Counts;
use super::scan::Str;
use crate::patterns::{Matches, PATTERN_WINDOW, Patterns};

/// The last user message: its token counts and the pieces of text patterns look at.
#[derive(Clone, Copy)]
pub(super) struct UserMessage<'a> {
    pub counts: Counts,
    pub first: Option<Str<'a>>,
    pub last: Option<Str<'a>>,
}

/// A position at or before `at` in a raw JSON string where a character outside any escape
/// starts (escapes use only backslash, quote, slash, `bfnrtu` and hex digits, so a byte outside
/// those is in none); 0 when there is none.
fn literal_before(raw: &str, at: usize) -> usize {
    let bytes = raw.as_bytes();
    let found = bytes.get(..at).and_then(|b| {
        b.iter().rposition(|&b| {
            !matches!(b, b'\\' | b'"' | b'/' | b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' | b'n' | b'r' | b't' | b'u')
        })
    });
    // Escapes are ASCII, so the character holding a non-ASCII byte lies outside them.
    found
        .and_then(|i| (0..=i).rev().find(|&p| raw.is_char_boundary(p)))
        .unwrap_or(0)
}

/// A position in `s.raw` outside any escape from which its decoded text holds at least `keep`
/// bytes; 0 when all of it holds fewer. Found backward in steps as long as the bytes still
/// missing: a raw byte decodes to at most one byte, so no step overshoots by more than one
/// escape, and about `keep` raw bytes are read when the text is mostly literal (an escape is up
/// to six raw bytes per decoded one, so at most six times that).
fn tail_start(s: Str<'_>, keep: usize) -> usize {
    let raw = s.raw;
    let (mut from, mut have) = (raw.len(), 0);
    while have < keep && from > 0 {
        let next = literal_before(raw, from - (keep - have).min(from));
        let piece = Str {
            raw: raw.get(next..from).unwrap_or(""),
            escaped: s.escaped,
        };
        have += piece
            .runs()
            .map(|(text, c)| text.len() + c.map_or(0, char::len_utf8))
            .sum::<usize>();
        from = next;
    }
    from
}

/// The patterns matched by the last user message. They see its decoded text when it is
/// one part of at most [`PATTERN_WINDOW`] bytes (in place when it has no escapes), else
/// the first half window of its first text part and the last half window of its last,
/// decoded into one buffer. Windows count decoded bytes, so escaping text differently
/// never changes what the patterns see.
pub(super) fn last_user_matches(patterns: &Patterns, u: &UserMessage<'_>) -> Matches {
    if patterns.is_empty() && u.first.is_some() {
        return Matches::default();
    }
    last_user_text(u, |text| patterns.find(text))
}

/// Calls `f` with the text of the last user message that patterns see (and the scorer
/// reads): see [`last_user_matches`].
pub(super) fn last_user_text<R>(u: &UserMessage<'_>, f: impl FnOnce(&str) -> R) -> R {
    let (Some(first), Some(last)) = (u.first, u.last) else {
        return f("");
    };
    let one = std::ptr::eq(first.raw, last.raw);
    if one && !first.escaped && first.raw.len() <= PATTERN_WINDOW {
        return f(first.raw);
    }
    let half = PATTERN_WINDOW / 2;
    // The one allocation: the head, a line feed, and room to decode the tail.
    let mut text = String::with_capacity(PATTERN_WINDOW.max(3 * half + 5));
    if one {
        if first.decode_into(&mut text, PATTERN_WINDOW) {
            return f(&text);
        }
        let mut cut = half;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    } else {
        first.decode_into(&mut text, half);
    }
    text.push('\n');
    let from = tail_start(last, half);
    let tail = Str {
        raw: last.raw.get(from..).unwrap_or(""),
        escaped: last.escaped,
    };
    tail.decode_tail_into(&mut text, half);
    f(&text)
}
