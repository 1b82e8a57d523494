//! What the scorer reads of the last user message: one scalar pass over at most
//! [`HEAD`] + [`TAIL`] bytes of its text (and [`CONTEXT`] bytes of the user turn before it,
//! [`scan_turns`]), giving structural counts ([`Stats`]) and hashed n-grams (given to a
//! [`Grams`] sink). Nothing is allocated.
//!
//! Words are runs of letters and digits, lower-cased and ASCII-folded (Latin-1 accents
//! dropped); a run of digits is the one word `#`, so numbers generalise. Each CJK ideograph,
//! kana or hangul syllable is a word of its own, so consecutive ones make character bigrams.
//! The n-grams are word unigrams, word bigrams, and for words of six characters or more their
//! first and last four bytes (characters, in ASCII).

/// Bytes read from the start of the text.
pub(crate) const HEAD: usize = 256;
/// Bytes read from the end of a longer text.
pub(crate) const TAIL: usize = 128;

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

    /// The n-grams that follow are the context's (see [`scan_turns`]).
    fn context(&mut self) {}
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

/// Mixes a gram's kind into its hash (one multiply; the bucket mixes again with the seed),
/// kept to 32 bits so that a message's n-grams fit a small buffer.
#[inline(always)]
pub(crate) fn mix(h: u64, kind: Gram) -> u64 {
    (h ^ (kind as u64) << 59).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32
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

/// What an ASCII byte is to the scan, by bit.
const LETTER: u16 = 1;
const DIGIT: u16 = 2;
const QUESTION: u16 = 4;
const CLAUSE: u16 = 8;
const MATH: u16 = 16;
const CODE: u16 = 32;
const END: u16 = 64;
const SPACE: u16 = 128;
const NEWLINE: u16 = 256;
const TICK: u16 = 512;

/// [`LETTER`], [`DIGIT`] ... for each ASCII byte.
#[allow(clippy::indexing_slicing, reason = "evaluated at compile time")]
const ASCII: [u16; 128] = {
    let mut t = [0u16; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = match c {
            b'a'..=b'z' | b'A'..=b'Z' => LETTER,
            b'0'..=b'9' => DIGIT,
            b'?' => QUESTION | END,
            b',' => CLAUSE,
            b';' => CLAUSE | CODE,
            b'=' | b'+' | b'*' | b'/' | b'^' | b'%' | b'<' | b'>' => MATH,
            b'{' | b'}' | b'[' | b']' | b'_' | b'\\' => CODE,
            b'.' | b'!' => END,
            b'\n' => SPACE | NEWLINE,
            b' ' | b'\t' | b'\r' | 0x0B | 0x0C => SPACE,
            b'`' => TICK,
            _ => 0,
        };
        b += 1;
    }
    t
};

/// A word being read: its hash, its first and last four bytes (folded), its length in
/// characters, and whether it is a number.
#[derive(Clone, Copy)]
struct Word {
    start: usize,
    hash: u64,
    head: u32,
    tail: u32,
    chars: u32,
    digits: bool,
}

impl Word {
    fn new(start: usize, digits: bool) -> Word {
        Word {
            start,
            hash: FNV,
            head: 0,
            tail: 0,
            chars: 0,
            digits,
        }
    }

    #[inline(always)]
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.hash = step(self.hash, b);
            self.tail = self.tail << 8 | u32::from(b);
        }
        if self.chars < 4 {
            self.head = self.tail;
        }
        self.chars += 1;
    }
}

/// Ends words and gives their n-grams.
struct Words<'g, G> {
    grams: &'g mut G,
    base: usize,
    prev: Option<(u64, (usize, usize))>,
}

impl<G: Grams> Words<'_, G> {
    #[inline]
    fn end(&mut self, w: Word, at: usize, s: &mut Stats) {
        let span = (self.base + w.start, self.base + at);
        s.words += 1;
        if w.chars >= 9 {
            s.long_words += 1;
        }
        if w.digits {
            s.numbers += 1;
        }
        self.grams
            .gram(Gram::Word, mix(w.hash, Gram::Word), span, None);
        if let Some((h, p)) = self.prev {
            let pair = h.wrapping_mul(PRIME).rotate_left(17) ^ w.hash;
            self.grams
                .gram(Gram::Pair, mix(pair, Gram::Pair), p, Some(span));
        }
        if w.chars >= 6 {
            self.grams.gram(
                Gram::Prefix,
                mix(u64::from(w.head), Gram::Prefix),
                span,
                None,
            );
            self.grams.gram(
                Gram::Suffix,
                mix(u64::from(w.tail), Gram::Suffix),
                span,
                None,
            );
        }
        self.prev = Some((w.hash, span));
    }
}

/// Bytes read of the user message before the last, as context.
pub(crate) const CONTEXT: usize = 128;

impl Stats {
    fn add(&mut self, o: &Stats) {
        macro_rules! sum {
            ($($f:ident),*) => { $(self.$f += o.$f;)* };
        }
        sum!(
            bytes, words, long_words, numbers, digits, letters, questions, fences, list_items,
            clauses, sentences, math, code, lines, non_ascii, cjk
        );
    }
}

/// Scans the last user message `text`, then `context` (the head of the user message before
/// it, empty in a conversation of one), into one set of counts and n-grams: a short follow-up
/// is read with the request it follows. `grams` hears [`Grams::context`] between the two.
pub(crate) fn scan_turns(text: &str, context: &str, grams: &mut impl Grams) -> Stats {
    let mut stats = scan(text, grams);
    if !context.is_empty() {
        grams.context();
        stats.add(&scan(context, grams));
    }
    stats
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
    let bytes = text.as_bytes();
    let mut words = Words {
        grams,
        base,
        prev: None,
    };
    // The word being read lives in locals, so the loop keeps it in registers.
    let mut w = Word::new(0, false);
    let mut open = false;
    let (mut letters, mut digits) = (0u32, 0u32);
    let (mut line_start, mut ticks, mut after_end) = (false, 0u32, false);
    let mut at = 0;
    s.list_items += u32::from(list_item(bytes));
    while let Some(&b) = bytes.get(at) {
        if b < 0x80 {
            let f = ASCII.get(usize::from(b)).copied().unwrap_or(0);
            if f & (LETTER | DIGIT) != 0 {
                let digit = f & DIGIT != 0;
                // A run of digits is one word, `#`; letters after digits start another.
                if open && w.digits != digit {
                    words.end(w, at, s);
                    open = false;
                }
                if !open {
                    w = Word::new(at, digit);
                    open = true;
                    if digit {
                        w.push(b"#");
                    }
                }
                if digit {
                    digits += 1;
                } else {
                    letters += 1;
                    w.push(&[b | 0x20]);
                }
                at += 1;
                continue;
            }
            if open {
                words.end(w, at, s);
                open = false;
            }
            if f & (QUESTION | CLAUSE | MATH | CODE) != 0 {
                s.questions += u32::from(f & QUESTION != 0);
                s.clauses += u32::from(f & CLAUSE != 0);
                s.math += u32::from(f & MATH != 0);
                s.code += u32::from(f & CODE != 0);
            }
            if f & SPACE != 0 && after_end {
                s.sentences += 1;
            }
            ticks = if f & TICK != 0 { ticks + 1 } else { 0 };
            if ticks == 3 {
                s.fences += 1;
            }
            after_end = f & END != 0;
            if f & NEWLINE != 0 {
                s.lines += 1;
                line_start = true;
            }
            at += 1;
            if line_start {
                // The next line: a list item if it starts like one after its indent.
                line_start = false;
                s.list_items += u32::from(list_item(bytes.get(at..).unwrap_or_default()));
            }
            continue;
        }
        let Some(c) = text.get(at..).and_then(|t| t.chars().next()) else {
            break;
        };
        let next = at + c.len_utf8();
        s.non_ascii += 1;
        after_end = matches!(c, '。' | '！' | '？');
        if after_end {
            s.sentences += 1;
        }
        ticks = 0;
        match c {
            '？' => s.questions += 1,
            '，' | '、' | '；' => s.clauses += 1,
            '√' | 'π' | '\u{2200}'..='\u{22FF}' => s.math += 1,
            _ => {}
        }
        let mut buf = [0u8; 4];
        if is_cjk(c) {
            s.cjk += 1;
            if open {
                words.end(w, at, s);
                open = false;
            }
            // Each CJK character is a word of its own.
            let mut one = Word::new(at, false);
            one.push(c.encode_utf8(&mut buf).as_bytes());
            words.end(one, next, s);
        } else if let Some(f) = fold(c) {
            letters += 1;
            if open && w.digits {
                words.end(w, at, s);
                open = false;
            }
            if !open {
                w = Word::new(at, false);
                open = true;
            }
            w.push(f.encode_utf8(&mut buf).as_bytes());
        } else if open {
            words.end(w, at, s);
            open = false;
        }
        at = next;
    }
    if open {
        words.end(w, text.len(), s);
    }
    if after_end {
        s.sentences += 1;
    }
    s.letters += letters;
    s.digits += digits;
}

/// Whether a line starts a list item after its indent (spaces and tabs): `- `, `* `, or up to
/// three digits and `. ` or `) `.
fn list_item(line: &[u8]) -> bool {
    let indent = line
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count();
    let line = line.get(indent..).unwrap_or_default();
    match line.first() {
        Some(b'-' | b'*') => line.get(1) == Some(&b' '),
        Some(b'0'..=b'9') => {
            let digits = line.iter().take_while(|b| b.is_ascii_digit()).count();
            digits <= 3
                && matches!(line.get(digits), Some(b'.' | b')'))
                && line.get(digits + 1) == Some(&b' ')
        }
        _ => line.starts_with("• ".as_bytes()),
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
