//! What the scorer reads of the last user message: one scalar pass over at most
//! [`HEAD`] + [`TAIL`] bytes of its text, giving structural counts ([`Stats`]) and hashed
//! n-grams (given to a [`Grams`] sink). Nothing is allocated.
//!
//! Words are runs of letters and digits, lower-cased and ASCII-folded (Latin-1 accents
//! dropped); a run of digits is the one word `#`, so numbers generalise. Each CJK ideograph,
//! kana or hangul syllable is a word of its own, so consecutive ones make character bigrams.
//! The n-grams are word unigrams, word bigrams, and for words of six characters or more their
//! first and last four characters.

/// Bytes read from the start of the text.
pub(crate) const HEAD: usize = 768;
/// Bytes read from the end of a longer text.
pub(crate) const TAIL: usize = 256;

/// The kinds of hashed n-grams, mixed into their hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gram {
    Word = 1,
    Pair = 2,
    Prefix = 3,
    Suffix = 4,
}

/// Receives each n-gram: its kind, its hash, and where its text lies (byte ranges of the
/// scanned text: the word, or the two words of a pair).
pub(crate) trait Grams {
    fn gram(&mut self, kind: Gram, hash: u64, at: (usize, usize), pair: Option<(usize, usize)>);
}

/// Structural counts over the bytes read.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Stats {
    pub bytes: u32,
    pub words: u32,
    /// Words of nine characters or more.
    pub long_words: u32,
    pub numbers: u32,
    pub digits: u32,
    pub letters: u32,
    pub questions: u32,
    /// Code fences (three backticks).
    pub fences: u32,
    /// Lines that start with `-`, `*`, `•` or a number and `.` or `)`.
    pub list_items: u32,
    /// Commas and semicolons (CJK ones too).
    pub clauses: u32,
    /// Sentence ends: `.`, `!`, `?` (and CJK ones) before a space, a line end or the end.
    pub sentences: u32,
    /// `= + * / ^ % < >` and mathematical operators (U+2200–U+22FF), `√ π`.
    pub math: u32,
    /// `{ } [ ] ; _ \`: what code has and prose rarely does.
    pub code: u32,
    pub lines: u32,
    pub non_ascii: u32,
    /// CJK ideographs, kana and hangul.
    pub cjk: u32,
}

/// The pieces of `text` the scorer reads: all of it when short, else its head and tail, each
/// cut at a character boundary.
pub(crate) fn pieces(text: &str) -> [&str; 2] {
    if text.len() <= HEAD + TAIL {
        return [text, ""];
    }
    let mut head = HEAD;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - TAIL;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    [
        text.get(..head).unwrap_or(""),
        text.get(tail..).unwrap_or(""),
    ]
}

const FNV: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0100_0000_01b3;

fn step(h: u64, b: u8) -> u64 {
    (h ^ u64::from(b)).wrapping_mul(PRIME)
}

/// Mixes a gram's kind into its hash (a SplitMix64 finaliser), kept to 32 bits so that a
/// message's n-grams fit a small buffer.
pub(crate) fn mix(h: u64, kind: Gram) -> u64 {
    let mut z = h ^ (kind as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) >> 32
}

/// Latin-1 letters folded to ASCII (U+00C0–U+00FF), lower case; 0 for the two signs there.
const FOLD: &[u8; 64] = b"aaaaaaaceeeeiiiidnooooo\0ouuuuyts\
aaaaaaaceeeeiiiidnooooo\0ouuuuyty";

/// A character as a word character: its folded lower-case form, or `None` when it separates
/// words. CJK characters are reported apart by [`is_cjk`].
fn fold(c: char) -> Option<char> {
    match c {
        'a'..='z' | '0'..='9' => Some(c),
        'A'..='Z' => Some(c.to_ascii_lowercase()),
        '\u{C0}'..='\u{FF}' => {
            let i = u32::from(c) as usize - 0xC0;
            FOLD.get(i).copied().filter(|&b| b != 0).map(char::from)
        }
        c if !c.is_ascii() && c.is_alphabetic() => c.to_lowercase().next(),
        _ => None,
    }
}

fn is_cjk(c: char) -> bool {
    matches!(u32::from(c), 0x3040..=0x30FF | 0x3400..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF)
}

/// A word being read.
#[derive(Clone, Copy)]
struct Word {
    start: usize,
    hash: u64,
    chars: u32,
    digits: bool,
    prefix: u64,
    /// The last four characters' bytes, hashed when the word ends.
    last: [char; 4],
}

/// Scans `text` (see the module's documentation), giving every n-gram to `grams`.
pub(crate) fn scan(text: &str, grams: &mut impl Grams) -> Stats {
    let mut stats = Stats::default();
    for (i, piece) in pieces(text).into_iter().enumerate() {
        let base = if i == 0 { 0 } else { text.len() - piece.len() };
        scan_piece(piece, base, &mut stats, grams);
    }
    stats
}

fn scan_piece(text: &str, base: usize, s: &mut Stats, grams: &mut impl Grams) {
    s.bytes += text.len() as u32;
    let mut word: Option<Word> = None;
    let mut prev: Option<(u64, (usize, usize))> = None;
    let mut line_start = true;
    let (mut ticks, mut prev_char) = (0u32, ' ');
    let mut end_word = |word: &mut Option<Word>, at: usize, s: &mut Stats| {
        let Some(w) = word.take() else { return };
        let span = (base + w.start, base + at);
        s.words += 1;
        if w.chars >= 9 {
            s.long_words += 1;
        }
        if w.digits {
            s.numbers += 1;
        }
        grams.gram(Gram::Word, mix(w.hash, Gram::Word), span, None);
        if let Some((h, p)) = prev {
            let pair = h.wrapping_mul(PRIME).rotate_left(17) ^ w.hash;
            grams.gram(Gram::Pair, mix(pair, Gram::Pair), p, Some(span));
        }
        if w.chars >= 6 {
            grams.gram(Gram::Prefix, mix(w.prefix, Gram::Prefix), span, None);
            let mut h = FNV;
            for c in w.last {
                let mut buf = [0u8; 4];
                for &b in c.encode_utf8(&mut buf).as_bytes() {
                    h = step(h, b);
                }
            }
            grams.gram(Gram::Suffix, mix(h, Gram::Suffix), span, None);
        }
        prev = Some((w.hash, span));
    };
    for (at, c) in text.char_indices() {
        if c == '`' {
            ticks += 1;
            if ticks == 3 {
                s.fences += 1;
            }
        } else {
            ticks = 0;
        }
        if !c.is_ascii() {
            s.non_ascii += 1;
        }
        let cjk = is_cjk(c);
        let folded = if cjk { None } else { fold(c) };
        match folded {
            Some(f) => {
                let digit = f.is_ascii_digit();
                if digit {
                    s.digits += 1;
                } else {
                    s.letters += 1;
                }
                // A run of digits is one word, `#`; letters after digits start another.
                if word.is_some_and(|w| w.digits != digit) {
                    end_word(&mut word, at, s);
                }
                let w = word.get_or_insert(Word {
                    start: at,
                    hash: FNV,
                    chars: 0,
                    digits: digit,
                    prefix: FNV,
                    last: [' '; 4],
                });
                if digit {
                    if w.chars == 0 {
                        w.hash = step(FNV, b'#');
                    }
                } else {
                    let mut buf = [0u8; 4];
                    for &b in f.encode_utf8(&mut buf).as_bytes() {
                        w.hash = step(w.hash, b);
                        if w.chars < 4 {
                            w.prefix = step(w.prefix, b);
                        }
                    }
                    w.last = [w.last[1], w.last[2], w.last[3], f];
                }
                w.chars += 1;
            }
            None => {
                end_word(&mut word, at, s);
                if cjk {
                    s.cjk += 1;
                    let mut h = FNV;
                    let mut buf = [0u8; 4];
                    for &b in c.encode_utf8(&mut buf).as_bytes() {
                        h = step(h, b);
                    }
                    word = Some(Word {
                        start: at,
                        hash: h,
                        chars: 1,
                        digits: false,
                        prefix: h,
                        last: [' '; 4],
                    });
                    end_word(&mut word, at + c.len_utf8(), s);
                }
            }
        }
        match c {
            '?' | '？' => s.questions += 1,
            ',' | ';' | '，' | '、' | '；' => s.clauses += 1,
            '=' | '+' | '*' | '/' | '^' | '%' | '<' | '>' | '√' | 'π' | '\u{2200}'..='\u{22FF}' => {
                s.math += 1
            }
            '{' | '}' | '[' | ']' | '_' | '\\' => s.code += 1,
            _ => {}
        }
        if c == ';' {
            s.code += 1;
        }
        // A sentence ends at `.`, `!` or `?` before whitespace; CJK ends anywhere.
        if matches!(prev_char, '.' | '!' | '?') && c.is_whitespace()
            || matches!(c, '。' | '！' | '？')
        {
            s.sentences += 1;
        }
        if c == '\n' {
            s.lines += 1;
            line_start = true;
        } else if line_start && !c.is_whitespace() {
            line_start = false;
            let rest = text.get(at..).unwrap_or("");
            if list_item(rest) {
                s.list_items += 1;
            }
        }
        prev_char = c;
    }
    end_word(&mut word, text.len(), s);
    if matches!(prev_char, '.' | '!' | '?') {
        s.sentences += 1;
    }
}

/// Whether a line (from its first non-blank character) starts a list item.
fn list_item(line: &str) -> bool {
    let b = line.as_bytes();
    match b.first() {
        Some(b'-' | b'*') => b.get(1) == Some(&b' '),
        Some(b'0'..=b'9') => {
            let digits = b.iter().take_while(|b| b.is_ascii_digit()).count();
            digits <= 3
                && matches!(b.get(digits), Some(b'.' | b')'))
                && b.get(digits + 1) == Some(&b' ')
        }
        _ => line.starts_with("• "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Vec<(Gram, String)>);

    impl Grams for Collect {
        fn gram(&mut self, kind: Gram, _: u64, at: (usize, usize), pair: Option<(usize, usize)>) {
            let end = pair.map_or(at.1, |p| p.1);
            self.0.push((kind, format!("{}..{}", at.0, end)));
        }
    }

    struct Hashes(Vec<u64>);

    impl Grams for Hashes {
        fn gram(&mut self, _: Gram, hash: u64, _: (usize, usize), _: Option<(usize, usize)>) {
            self.0.push(hash);
        }
    }

    fn hashes(text: &str) -> Vec<u64> {
        let mut h = Hashes(Vec::new());
        scan(text, &mut h);
        h.0
    }

    #[test]
    fn words_are_folded_and_numbers_are_one_word() {
        assert_eq!(hashes("Café au LAIT"), hashes("cafe au lait"));
        assert_eq!(hashes("add 12 and 3456"), hashes("add 7 and 8"));
        assert_ne!(hashes("add 12 and 3456"), hashes("add x and y"));
        let s = scan(
            "Prove it, then compute 3+4=7? Yes.",
            &mut Collect::default(),
        );
        assert_eq!((s.words, s.numbers, s.questions, s.clauses), (8, 3, 1, 1));
        assert_eq!((s.math, s.sentences), (2, 2));
    }

    #[test]
    fn cjk_characters_make_bigrams() {
        let mut c = Collect::default();
        let s = scan("日本語", &mut c);
        assert_eq!(s.cjk, 3);
        let pairs = c.0.iter().filter(|(k, _)| *k == Gram::Pair).count();
        assert_eq!((s.words, pairs), (3, 2));
    }

    #[test]
    fn structure_is_counted() {
        let text = "Steps:\n- one\n- two\n1. three\n```rust\nfn main() { let x = a[0]; }\n```\n";
        let s = scan(text, &mut Collect::default());
        assert_eq!((s.list_items, s.fences, s.lines), (3, 2, 7));
        assert!(s.code >= 4);
    }

    #[test]
    fn long_text_is_read_at_its_head_and_tail() {
        let text = format!(
            "{}{}{}",
            "head ".repeat(200),
            "middle ".repeat(500),
            "tail ".repeat(100)
        );
        let s = scan(&text, &mut Collect::default());
        assert_eq!(s.bytes as usize, HEAD + TAIL);
        let [h, t] = pieces(&text);
        assert!(h.starts_with("head") && t.ends_with("tail "));
        // Cuts fall on character boundaries.
        let text = "é".repeat(1000);
        let [h, t] = pieces(&text);
        assert!(h.len() <= HEAD && t.len() <= TAIL + 1 && !h.is_empty() && !t.is_empty());
    }
}
