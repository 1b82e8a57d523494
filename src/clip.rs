//! Untrusted text in messages, bounded: a request or policy may carry names of any length,
//! and an error or diagnostic quotes at most the start of one.

use std::borrow::Cow;

/// The most bytes of one quoted name a message shows.
pub(crate) const NAME: usize = 256;

/// The most bytes a whole message (or key path) may hold.
pub(crate) const MESSAGE: usize = 2048;

/// `text` when it holds at most `max` bytes, else its first `max` bytes (to a character
/// boundary) followed by a marker with its full length.
pub(crate) fn clip(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = text.get(..end).unwrap_or("");
    Cow::Owned(format!("{head}…[{} bytes in all]", text.len()))
}

/// A quoted name: [`clip`] at [`NAME`] bytes.
pub(crate) fn name(text: &str) -> Cow<'_, str> {
    clip(text, NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_and_long_text_is_cut_on_a_character_boundary() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "abc…[4 bytes in all]");
        // `é` is two bytes: a cut inside it falls back to before it.
        assert_eq!(clip("aéb", 2), "a…[4 bytes in all]");
        assert!(name(&"x".repeat(8 << 20)).len() < NAME + 32);
    }
}
