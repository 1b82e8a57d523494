//! Prompt-token estimation without a tokenizer: one pass over the text, counting the pieces a
//! byte-pair encoder like `o200k_base` typically makes of each run of characters.

/// A running token estimate over any number of text pieces.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TokenEstimator {
    tokens: u64,
    /// CJK ideographs, kana and hangul: counted apart, as `o200k_base` spends a little under
    /// one token on each.
    cjk: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Run {
    None,
    Letters,
    Digits,
    Punct,
    Space,
}

impl TokenEstimator {
    /// Adds one piece of text. ASCII is classified a byte at a time through a table; other
    /// characters are decoded.
    pub fn feed(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mut run = Run::None;
        let mut len: u64 = 0;
        let mut newline = false;
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            let (kind, weight, step) = if b.is_ascii() {
                (
                    ASCII_RUNS
                        .get(usize::from(b))
                        .copied()
                        .unwrap_or(Run::Punct),
                    1,
                    1,
                )
            } else {
                let c = text
                    .get(i..)
                    .and_then(|s| s.chars().next())
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                if is_cjk(c) {
                    self.close(run, len, newline);
                    run = Run::None;
                    len = 0;
                    self.cjk += 1;
                    i += c.len_utf8();
                    continue;
                }
                let kind = if c.is_alphabetic() {
                    Run::Letters
                } else if c.is_whitespace() {
                    Run::Space
                } else {
                    Run::Punct
                };
                // Non-ASCII letters cost more: they are split into smaller pieces.
                (kind, 2, c.len_utf8())
            };
            if kind != run {
                self.close(run, len, newline);
                run = kind;
                len = 0;
                newline = false;
            }
            len += weight;
            newline |= b == b'\n';
            i += step;
        }
        self.close(run, len, newline);
    }

    fn close(&mut self, run: Run, len: u64, newline: bool) {
        self.tokens += match run {
            Run::None => 0,
            Run::Letters => len.div_ceil(6),
            Run::Digits => len.div_ceil(3),
            Run::Punct => len.div_ceil(2),
            // A single space joins the next word; longer runs and line breaks are tokens.
            Run::Space => u64::from(newline || len > 1),
        };
    }

    /// Adds a fixed number of tokens (message framing, media parts).
    pub fn add(&mut self, tokens: u64) {
        self.tokens = self.tokens.saturating_add(tokens);
    }

    /// The estimate so far, saturating at `u32::MAX`.
    pub fn total(&self) -> u32 {
        let cjk = self.cjk - self.cjk / 10;
        u32::try_from(self.tokens.saturating_add(cjk)).unwrap_or(u32::MAX)
    }
}

/// The run each ASCII byte belongs to.
// PANIC SAFETY: the index runs over 0..128, the table's length, in a const context.
#[allow(clippy::indexing_slicing)]
const ASCII_RUNS: [Run; 128] = {
    let mut table = [Run::Punct; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        table[b] = if c.is_ascii_alphabetic() {
            Run::Letters
        } else if c.is_ascii_digit() {
            Run::Digits
        } else if matches!(c, b' ' | b'\t'..=b'\r') {
            Run::Space
        } else {
            Run::Punct
        };
        b += 1;
    }
    table
};

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // hiragana, katakana
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xAC00..=0xD7AF    // hangul syllables
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0x20000..=0x2FFFF) // CJK extensions B and later
}

/// Estimates the tokens of one piece of text.
///
/// ```
/// assert_eq!(fluxroute::estimate_tokens(""), 0);
/// let n = fluxroute::estimate_tokens("The quick brown fox jumps over the lazy dog.");
/// assert!((9..=12).contains(&n));
/// ```
pub fn estimate_tokens(text: &str) -> u32 {
    let mut e = TokenEstimator::default();
    e.feed(text);
    e.total()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The estimator written plainly, a character at a time: the oracle for the fast one.
    fn reference(text: &str) -> u32 {
        let mut e = TokenEstimator::default();
        let (mut run, mut len, mut newline) = (Run::None, 0u64, false);
        for c in text.chars() {
            if is_cjk(c) {
                e.close(run, len, newline);
                (run, len) = (Run::None, 0);
                e.cjk += 1;
                continue;
            }
            let kind = if c.is_alphabetic() && (c.is_ascii() || !c.is_ascii_digit()) {
                Run::Letters
            } else if c.is_ascii_digit() {
                Run::Digits
            } else if c.is_whitespace() {
                Run::Space
            } else {
                Run::Punct
            };
            if kind != run {
                e.close(run, len, newline);
                (run, len, newline) = (kind, 0, false);
            }
            len += if c.is_ascii() { 1 } else { 2 };
            newline |= c == '\n';
        }
        e.close(run, len, newline);
        e.total()
    }

    proptest! {
        #[test]
        fn the_fast_path_counts_like_the_reference(text in "\\PC{0,200}|[a-z0-9 \n\t.,;(){}éü日本\u{000B}\u{00A0}\u{2003}٣]{0,200}") {
            prop_assert_eq!(estimate_tokens(&text), reference(&text));
        }
    }

    #[test]
    fn estimates_grow_with_text_and_count_cjk_per_character() {
        assert_eq!(estimate_tokens("hello"), 1);
        assert_eq!(estimate_tokens("hello world"), 2);
        assert_eq!(estimate_tokens("12345678"), 3);
        assert_eq!(estimate_tokens("你好世界你好世界你好"), 9);
        let long = "word ".repeat(1000);
        assert_eq!(estimate_tokens(&long), 1000);
    }
}
