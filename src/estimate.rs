//! Prompt-token estimation without a tokenizer.
//!
//! A byte-pair encoder such as `o200k_base` first splits text into words, numbers (at most three
//! digits each), punctuation runs and whitespace, then merges bytes inside each piece. The
//! estimate counts those pieces and their lengths, sixteen bytes at a time with SIMD compares
//! ([`wide`], portable and safe), and weighs the counts with a linear model fitted against
//! exact `o200k_base` counts (`examples/fit_estimator.rs`).

use wide::u8x16;

/// Counts over text: the estimate is a weighted sum of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// ASCII letters.
    pub letters: u32,
    /// Runs of ASCII letters.
    pub words: u32,
    /// ASCII digits.
    pub digits: u32,
    /// Runs of ASCII digits.
    pub numbers: u32,
    /// ASCII punctuation and symbols.
    pub punct: u32,
    /// Runs of ASCII punctuation.
    pub punct_runs: u32,
    /// Line feeds.
    pub newlines: u32,
    /// Spaces or controls right after another one (indentation, alignment).
    pub indent: u32,
    /// Non-ASCII characters other than the next two kinds (accented Latin, Cyrillic, symbols).
    pub wide: u32,
    /// CJK ideographs, kana, hangul and CJK punctuation (UTF-8 lead bytes E3–ED).
    pub cjk: u32,
    /// Four-byte characters: emoji, rare ideographs.
    pub astral: u32,
    /// Tokens added outright: message framing, numbers and literals in schemas, media parts.
    pub fixed: u32,
}

/// The fitted weights, in the order of [`Counts::features`]; see `examples/fit_estimator.rs`.
pub(crate) const WEIGHTS: [f32; 11] = [
    0.0604, // letters
    0.7661, // words
    0.0000, // digits
    1.6715, // digit groups of up to three
    0.0277, // punct
    0.6853, // punct_runs
    0.8845, // newlines
    0.0542, // indent
    0.3733, // wide
    0.8022, // cjk
    1.5000, // astral: not in the corpus; emoji take one to three tokens
];

impl Counts {
    /// The counts a weight applies to, in the order of [`WEIGHTS`]. Digit groups are
    /// `ceil(run / 3)` on average: `(digits + 2 * numbers) / 3`.
    pub fn features(&self) -> [f32; 11] {
        let f = |x: u32| x as f32;
        [
            f(self.letters),
            f(self.words),
            f(self.digits),
            (f(self.digits) + 2.0 * f(self.numbers)) / 3.0,
            f(self.punct),
            f(self.punct_runs),
            f(self.newlines),
            f(self.indent),
            f(self.wide),
            f(self.cjk),
            f(self.astral),
        ]
    }

    /// The estimate: the weighted counts plus the fixed tokens, saturating at `u32::MAX`.
    pub fn tokens(&self) -> u32 {
        let text: f32 = self
            .features()
            .iter()
            .zip(WEIGHTS.iter())
            .map(|(x, w)| x * w)
            .sum();
        // `as` saturates; the sum of non-negative terms is never NaN.
        (text.round() as u32).saturating_add(self.fixed)
    }

    fn add_all(&mut self, other: &Counts) {
        macro_rules! sum {
            ($($f:ident),*) => { $(self.$f = self.$f.saturating_add(other.$f);)* };
        }
        sum!(
            letters, words, digits, numbers, punct, punct_runs, newlines, indent, wide, cjk,
            astral, fixed
        );
    }
}

/// Per-lane counters, one byte per lane and feature (as in [`Counts`]), emptied into
/// [`Counts`] before a lane can overflow.
#[derive(Debug, Clone, Copy, Default)]
struct Lanes {
    letters: u8x16,
    words: u8x16,
    digits: u8x16,
    numbers: u8x16,
    punct: u8x16,
    punct_runs: u8x16,
    newlines: u8x16,
    indent: u8x16,
    wide: u8x16,
    cjk: u8x16,
    astral: u8x16,
}

/// A byte of no class: what precedes the first byte of a string.
const NO_CLASS: u8 = 0x80;

const IOTA: u8x16 = u8x16::new([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);

/// A running count over any number of strings; cheap to copy and to merge.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TextCounts {
    totals: Counts,
    lanes: Lanes,
    /// Chunks added to `lanes` since they were last emptied.
    pending: u8,
    /// The byte before the next one, within the current string.
    carry: u8,
}

impl Default for TextCounts {
    fn default() -> Self {
        TextCounts {
            totals: Counts::default(),
            lanes: Lanes::default(),
            pending: 0,
            carry: NO_CLASS,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Digit,
    Punct,
    Space,
    None,
}

/// The class of one byte, as [`classes`] gives it lane by lane.
fn class_of(b: u8) -> Class {
    match b {
        b'a'..=b'z' | b'A'..=b'Z' => Class::Letter,
        b'0'..=b'9' => Class::Digit,
        0..=0x20 => Class::Space,
        0x21..=0x7F => Class::Punct,
        _ => Class::None,
    }
}

/// Letters, digits, whitespace-or-control and non-ASCII lanes of `v`.
#[inline(always)]
fn classes(v: u8x16) -> [u8x16; 4] {
    let letter = ((v | u8x16::splat(0x20)) - u8x16::splat(b'a')).simd_lt(u8x16::splat(26));
    let digit = (v - u8x16::splat(b'0')).simd_lt(u8x16::splat(10));
    let space = v.simd_lt(u8x16::splat(0x21));
    let high = v.simd_gt(u8x16::splat(0x7F));
    [letter, digit, space, high]
}

impl TextCounts {
    /// Everything counted so far.
    pub fn totals(&self) -> Counts {
        if self.pending == 0 {
            return self.totals;
        }
        let mut t = self.totals;
        t.add_all(&self.lanes_total());
        t
    }

    fn lanes_total(&self) -> Counts {
        let sum = |v: u8x16| v.to_array().iter().map(|&x| u32::from(x)).sum();
        let l = &self.lanes;
        Counts {
            letters: sum(l.letters),
            words: sum(l.words),
            digits: sum(l.digits),
            numbers: sum(l.numbers),
            punct: sum(l.punct),
            punct_runs: sum(l.punct_runs),
            newlines: sum(l.newlines),
            indent: sum(l.indent),
            wide: sum(l.wide),
            cjk: sum(l.cjk),
            astral: sum(l.astral),
            fixed: 0,
        }
    }

    fn flush(&mut self) {
        let lanes = self.lanes_total();
        self.totals.add_all(&lanes);
        self.lanes = Lanes::default();
        self.pending = 0;
    }

    /// The estimate so far.
    pub fn tokens(&self) -> u32 {
        self.totals().tokens()
    }

    /// Adds a fixed number of tokens.
    pub fn add(&mut self, tokens: u32) {
        self.totals.fixed = self.totals.fixed.saturating_add(tokens);
    }

    /// Adds everything `other` counted without summing its lanes: they are added lane by lane
    /// (emptying this count's lanes first when the two could overflow a lane).
    pub fn absorb(&mut self, other: &TextCounts) {
        if u16::from(self.pending) + u16::from(other.pending) >= u16::from(u8::MAX) {
            self.flush();
        }
        macro_rules! add {
            ($($f:ident),*) => { $(self.lanes.$f += other.lanes.$f;)* };
        }
        add!(
            letters, words, digits, numbers, punct, punct_runs, newlines, indent, wide, cjk, astral
        );
        self.pending += other.pending;
        self.totals.add_all(&other.totals);
    }

    /// Adds counts taken from another [`TextCounts`].
    pub fn add_counts(&mut self, counts: &Counts) {
        self.totals.add_all(counts);
    }

    /// Ends a string: the next text starts new runs.
    pub fn end(&mut self) {
        self.carry = NO_CLASS;
    }

    /// Counts the first `n` (at most 16) lanes of `v`, which continue the current string;
    /// lane `i` of `prev` holds the byte before lane `i` of `v` (lane 0 is replaced by the
    /// carried byte).
    #[inline(always)]
    fn chunk(&mut self, v: u8x16, prev: u8x16, n: u32) {
        let valid = IOTA.simd_lt(u8x16::splat(n.min(16) as u8));
        let mut first = [0u8; 16];
        if let Some(b) = first.first_mut() {
            *b = self.carry;
        }
        let prev = (prev & !IOTA.simd_eq(u8x16::splat(0))) | u8x16::new(first);
        let [l, d, s, h] = classes(v);
        let [lp, dp, sp, hp] = classes(prev);
        let p = !(l | d | s | h) & valid;
        let pp = !(lp | dp | sp | hp);
        let (l, d, s, h) = (l & valid, d & valid, s & valid, h & valid);
        let Lanes {
            letters,
            words,
            digits,
            numbers,
            punct,
            punct_runs,
            newlines,
            indent,
            wide,
            cjk,
            astral,
        } = &mut self.lanes;
        // A true lane is 0xFF, so subtracting it adds one.
        *letters -= l;
        *words -= l & !lp;
        *digits -= d;
        *numbers -= d & !dp;
        *punct -= p;
        *punct_runs -= p & !pp;
        *indent -= s & sp;
        *newlines -= v.simd_eq(u8x16::splat(b'\n')) & valid;
        if h.any() {
            // Lead bytes are 11xxxxxx; 10xxxxxx continue a character.
            let lead = h & v.simd_gt(u8x16::splat(0xBF));
            let c = (v - u8x16::splat(0xE3)).simd_lt(u8x16::splat(11)) & valid;
            let a = v.simd_gt(u8x16::splat(0xEF)) & valid;
            *wide -= lead & !(c | a);
            *cjk -= c;
            *astral -= a;
        }
        self.pending += 1;
        if self.pending == u8::MAX {
            self.flush();
        }
    }

    /// Counts `bytes[at..at + n]` (`n` at most 16), which continue the current string, with
    /// `v` holding `bytes[at..]` (padded as needed). The bytes are text of a JSON string, so
    /// `bytes[at - 1]` exists.
    #[inline(always)]
    pub fn span(&mut self, bytes: &[u8], at: usize, v: u8x16, n: u32) {
        if n == 0 {
            return;
        }
        let prev = match bytes
            .get(at.wrapping_sub(1)..at + 15)
            .and_then(|c| <[u8; 16]>::try_from(c).ok())
        {
            Some(a) => u8x16::new(a),
            None => load(bytes.get(at.saturating_sub(1)..).unwrap_or_default()),
        };
        self.chunk(v, prev, n);
        self.carry = bytes.get(at + n as usize - 1).copied().unwrap_or(NO_CLASS);
    }

    /// Counts `bytes`, which continue the current string.
    pub fn bytes(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(16) {
            let mut prev = [0u8; 16];
            if let (Some(dst), Some(src)) = (prev.get_mut(1..c.len()), c.get(..c.len() - 1)) {
                dst.copy_from_slice(src);
            }
            self.chunk(load(c), u8x16::new(prev), c.len() as u32);
            self.carry = c.last().copied().unwrap_or(NO_CLASS);
        }
    }

    /// Counts one character, which continues the current string (a decoded escape).
    #[inline]
    pub fn char(&mut self, c: char) {
        let b = match u8::try_from(c) {
            Ok(b) if b < 0x80 => b,
            _ => {
                // A non-ASCII character: its lead byte decides the kind; it ends any run and
                // its last byte (a continuation) has no class.
                let mut buf = [0u8; 4];
                match c.encode_utf8(&mut buf).as_bytes().first() {
                    Some(0xE3..=0xED) => self.totals.cjk += 1,
                    Some(0xF0..=0xFF) => self.totals.astral += 1,
                    _ => self.totals.wide += 1,
                }
                self.carry = NO_CLASS;
                return;
            }
        };
        // An ASCII escape (`\n`, `\"`, `\\` ...): counted directly.
        let (class, prev) = (class_of(b), class_of(self.carry));
        let t = &mut self.totals;
        let new_run = u32::from(class != prev);
        match class {
            Class::Letter => {
                t.letters += 1;
                t.words += new_run;
            }
            Class::Digit => {
                t.digits += 1;
                t.numbers += new_run;
            }
            Class::Punct => {
                t.punct += 1;
                t.punct_runs += new_run;
            }
            Class::Space => t.indent += u32::from(prev == Class::Space),
            Class::None => {}
        }
        t.newlines += u32::from(b == b'\n');
        self.carry = b;
    }

    /// Counts a whole string.
    pub fn text(&mut self, text: &str) {
        self.bytes(text.as_bytes());
        self.end();
    }
}

/// Up to 16 bytes as a vector, zero-padded.
#[inline]
pub(crate) fn load(bytes: &[u8]) -> u8x16 {
    let mut a = [0u8; 16];
    let n = bytes.len().min(16);
    if let (Some(dst), Some(src)) = (a.get_mut(..n), bytes.get(..n)) {
        dst.copy_from_slice(src);
    }
    u8x16::new(a)
}

/// Estimates the tokens of one piece of text.
///
/// ```
/// assert_eq!(fluxroute::estimate_tokens(""), 0);
/// let n = fluxroute::estimate_tokens("The quick brown fox jumps over the lazy dog.");
/// assert!((9..=12).contains(&n));
/// ```
pub fn estimate_tokens(text: &str) -> u32 {
    let mut c = TextCounts::default();
    c.text(text);
    c.tokens()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LETTER: u8 = 1;
    const DIGIT: u8 = 2;
    const PUNCT: u8 = 4;
    const SPACE: u8 = 8;

    /// The counts written plainly, a byte at a time: the oracle for the SIMD ones.
    fn reference(text: &str) -> Counts {
        let mut c = Counts::default();
        let mut prev = 0u8;
        for &b in text.as_bytes() {
            let class = if b.is_ascii_alphabetic() {
                c.letters += 1;
                LETTER
            } else if b.is_ascii_digit() {
                c.digits += 1;
                DIGIT
            } else if b <= 0x20 {
                SPACE
            } else if b.is_ascii() {
                c.punct += 1;
                PUNCT
            } else {
                match b {
                    0xE3..=0xED => c.cjk += 1,
                    0xF0..=0xFF => c.astral += 1,
                    0xC0..=0xEF => c.wide += 1,
                    _ => {}
                }
                0
            };
            if class != prev {
                match class {
                    LETTER => c.words += 1,
                    DIGIT => c.numbers += 1,
                    PUNCT => c.punct_runs += 1,
                    _ => {}
                }
            }
            if class == SPACE && prev == SPACE {
                c.indent += 1;
            }
            if b == b'\n' {
                c.newlines += 1;
            }
            prev = class;
        }
        c
    }

    proptest! {
        #[test]
        fn simd_counts_match_the_reference(text in "\\PC{0,200}|[a-z0-9 \n\t.,;(){}éü日本\u{000B}\u{00A0}\u{2003}٣😀]{0,200}") {
            let mut fast = TextCounts::default();
            fast.text(&text);
            prop_assert_eq!(fast.totals(), reference(&text));
        }

        #[test]
        fn split_points_do_not_matter_inside_a_string(text in "[a-z0-9 \n.,é日]{0,100}", cut in 0usize..100) {
            let mut at = cut.min(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let (a, b) = text.split_at(at);
            let mut split = TextCounts::default();
            split.bytes(a.as_bytes());
            split.bytes(b.as_bytes());
            split.end();
            prop_assert_eq!(split.totals(), reference(&text));
        }
    }

    #[allow(clippy::unwrap_used, clippy::string_slice, clippy::indexing_slicing)]
    mod corpus {
        include!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/corpus.rs"
        ));
    }

    /// Fits [`WEIGHTS`]: least squares on relative error against exact `o200k_base` counts
    /// over the corpus (bodies of 512 B to 8 KB, other cuts than the accuracy test's), keeping
    /// weights non-negative by dropping the most negative feature and solving again.
    /// `cargo test --lib fit_weights -- --ignored --nocapture` prints the table.
    #[test]
    #[ignore = "prints fitted weights; run on demand"]
    #[allow(clippy::indexing_slicing, clippy::needless_range_loop)]
    fn fit_weights() {
        let bpe = tiktoken_rs::o200k_base_singleton();
        let rows: Vec<([f32; 11], f64)> =
            corpus::bodies(&[512, 1_000, 2_000, 3_000, 5_000, 8_000], 9)
                .into_iter()
                .map(|(_, text)| {
                    let mut c = TextCounts::default();
                    c.text(&text);
                    (
                        c.totals().features(),
                        bpe.encode_ordinary(&text).len() as f64,
                    )
                })
                .collect();
        const N: usize = 11;
        let mut active = [true; N];
        let w = loop {
            // Normal equations of: minimise sum over rows of (w . f / y - 1)^2.
            let idx: Vec<usize> = (0..N).filter(|&j| active[j]).collect();
            let m = idx.len();
            let mut a = vec![vec![0.0f64; m + 1]; m];
            for (f, y) in &rows {
                let x: Vec<f64> = idx.iter().map(|&j| f64::from(f[j]) / y).collect();
                for r in 0..m {
                    for c in 0..m {
                        a[r][c] += x[r] * x[c];
                    }
                    a[r][m] += x[r];
                }
            }
            for r in 0..m {
                a[r][r] += 1e-9;
            }
            // Gauss-Jordan with partial pivoting.
            for col in 0..m {
                let p = (col..m)
                    .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
                    .unwrap();
                a.swap(col, p);
                let d = a[col][col];
                for c in col..=m {
                    a[col][c] /= d;
                }
                for r in 0..m {
                    if r != col {
                        let k = a[r][col];
                        for c in col..=m {
                            a[r][c] -= k * a[col][c];
                        }
                    }
                }
            }
            let mut w = [0.0f64; N];
            for (r, &j) in idx.iter().enumerate() {
                w[j] = a[r][m];
            }
            match (0..N)
                .filter(|&j| active[j] && w[j] < 0.0)
                .min_by(|&i, &j| w[i].total_cmp(&w[j]))
            {
                Some(j) => active[j] = false,
                None => break w,
            }
        };
        let names = [
            "letters",
            "words",
            "digits",
            "digit groups",
            "punct",
            "punct_runs",
            "newlines",
            "indent",
            "wide",
            "cjk",
            "astral",
        ];
        println!("pub(crate) const WEIGHTS: [f32; 11] = [");
        for (w, n) in w.iter().zip(names) {
            println!("    {w:.4}, // {n}");
        }
        println!("];");
    }

    #[test]
    fn estimates_grow_with_text() {
        assert_eq!(estimate_tokens("hello"), 1);
        let long = "word ".repeat(1000);
        assert!((900..=1100).contains(&estimate_tokens(&long)));
        assert!(estimate_tokens("你好世界你好世界你好") >= 7);
    }
}
