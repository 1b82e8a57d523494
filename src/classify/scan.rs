//! A JSON reader built for chat bodies: one forward pass, no DOM, no copies.
//!
//! Strings are scanned 64 bytes at a time: one bit mask marks the quotes, backslashes and
//! control characters; runs of backslashes pair up by mask arithmetic, after which only the
//! escapes are visited, two-byte ones in a tight loop. The text of the strings that count
//! toward the prompt is fed to the token estimator from the same vectors, with each escape
//! folded into the masks as the character it stands for, so message text is read once. Strings
//! come back as [`Str`]: the raw text between the quotes, decoded only on demand. Keys and
//! short values that the classifier compares (`"role"`, `"user"`, `"type"` ...) are read as a
//! [`Word`] straight from one vector when they are plain text, and decoded only otherwise.

use std::borrow::Cow;

use wide::u8x16;

use super::estimate::{Block, Escaped, Quad, TextCounts, below, bits, in_range, load, quad};
use crate::error::{ErrorCode, RouteError};

/// The deepest nesting of arrays and objects accepted, the top-level object included (one level
/// more than `serde_json`'s default recursion limit allows).
pub(crate) const MAX_DEPTH: u32 = 128;

/// A JSON string as it appears in the body: the text between its quotes, escapes undecoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Str<'a> {
    pub raw: &'a str,
    pub escaped: bool,
}

impl<'a> Str<'a> {
    /// The decoded characters.
    pub fn chars(self) -> Chars<'a> {
        Chars { rest: self.raw }
    }

    /// The decoded text in runs: each run of raw text comes with the character of the escape
    /// that ends it, the last one with `None`.
    pub fn runs(self) -> Runs<'a> {
        Runs {
            rest: Some(self.raw),
        }
    }

    /// The decoded text, borrowed when there is nothing to decode.
    pub fn decode(self) -> Cow<'a, str> {
        if self.escaped {
            Cow::Owned(self.chars().collect())
        } else {
            Cow::Borrowed(self.raw)
        }
    }

    /// Appends the decoded text to `out` while it stays within `limit` bytes: runs between
    /// escapes are copied whole, escapes decoded one by one. Whether all of it fitted.
    pub fn decode_into(self, out: &mut String, limit: usize) -> bool {
        for (text, c) in self.runs() {
            let room = limit.saturating_sub(out.len());
            if text.len() > room {
                let mut cut = room;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                out.push_str(text.get(..cut).unwrap_or(""));
                return false;
            }
            out.push_str(text);
            let Some(c) = c else {
                break;
            };
            if out.len() + c.len_utf8() > limit {
                return false;
            }
            out.push(c);
        }
        true
    }

    /// Appends the last `keep` bytes of the decoded text to `out` (fewer when that would
    /// start inside a character). At most `2 * keep + 4` bytes of the text are in `out` at any
    /// time, so a buffer with that much room never grows.
    pub fn decode_tail_into(self, out: &mut String, keep: usize) {
        let base = out.len();
        // Drops all but the last `keep` bytes added, starting on a character.
        let trim = |out: &mut String| {
            if out.len() - base > keep {
                let mut cut = out.len() - keep;
                while !out.is_char_boundary(cut) {
                    cut += 1;
                }
                out.drain(base..cut);
            }
        };
        for (mut text, c) in self.runs() {
            if text.len() > keep {
                // Only the end of a long run can be in the tail.
                let mut cut = text.len() - keep;
                while !text.is_char_boundary(cut) {
                    cut += 1;
                }
                text = text.get(cut..).unwrap_or("");
            }
            if out.len() - base + text.len() > 2 * keep {
                trim(out);
            }
            out.push_str(text);
            let Some(c) = c else {
                break;
            };
            if out.len() - base + c.len_utf8() > 2 * keep {
                trim(out);
            }
            out.push(c);
        }
        trim(out);
    }

    /// The decoded text as a [`Word`].
    pub fn word(self) -> Word {
        let mut buf = [0u8; 32];
        word(self.small(&mut buf))
    }

    /// The decoded text when it fits in `buf` (names, roles and types are short); longer
    /// escaped strings give `""`, which matches none of them.
    pub fn small<'b>(self, buf: &'b mut [u8; 32]) -> &'b str
    where
        'a: 'b,
    {
        if !self.escaped {
            return self.raw;
        }
        let mut len = 0;
        for c in self.chars() {
            let end = len + c.len_utf8();
            match buf.get_mut(len..end) {
                Some(dst) => {
                    c.encode_utf8(dst);
                    len = end;
                }
                None => return "",
            }
        }
        buf.get(..len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

/// The decoded characters of a [`Str`] that the cursor has already checked.
pub(crate) struct Chars<'a> {
    rest: &'a str,
}

impl Iterator for Chars<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        let bytes = self.rest.as_bytes();
        if bytes.first() == Some(&b'\\') {
            let (c, len) = escape(bytes).unwrap_or((char::REPLACEMENT_CHARACTER, bytes.len()));
            self.rest = self.rest.get(len..).unwrap_or("");
            return Some(c);
        }
        let c = self.rest.chars().next()?;
        self.rest = self.rest.get(c.len_utf8()..).unwrap_or("");
        Some(c)
    }
}

/// See [`Str::runs`].
pub(crate) struct Runs<'a> {
    /// `None` after the last run.
    rest: Option<&'a str>,
}

impl<'a> Iterator for Runs<'a> {
    type Item = (&'a str, Option<char>);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest?;
        let run = next_backslash(rest.as_bytes());
        let (text, tail) = rest.split_at(run);
        // The cursor checked every escape; an unchecked one ends the text.
        let escaped = escape(tail.as_bytes());
        self.rest = escaped.map(|(_, len)| tail.get(len..).unwrap_or(""));
        Some((text, escaped.map(|(c, _)| c)))
    }
}

/// The index of the first backslash in `b`, or its length. Escapes in chat text are often a
/// few bytes apart (`\\n`, `\\"`), so one vector is looked at before `memchr`, whose set-up
/// would dominate such short runs.
#[inline(always)]
fn next_backslash(b: &[u8]) -> usize {
    let near = load(b).simd_eq(u8x16::splat(b'\\')).to_bitmask();
    if near != 0 {
        return near.trailing_zeros() as usize;
    }
    match b.get(16..) {
        Some(far) if !far.is_empty() => memchr::memchr(b'\\', far).map_or(b.len(), |i| 16 + i),
        _ => b.len(),
    }
}

/// The byte a two-byte escape decodes to, by the byte after the backslash; 0 for `\\u` and for
/// what is no escape.
#[allow(clippy::indexing_slicing, reason = "evaluated at compile time")]
const SIMPLE_ESCAPES: [u8; 256] = {
    let mut t = [0u8; 256];
    let pairs = [
        (b'"', b'"'),
        (b'\\', b'\\'),
        (b'/', b'/'),
        (b'b', 0x08),
        (b'f', 0x0C),
        (b'n', b'\n'),
        (b'r', b'\r'),
        (b't', b'\t'),
    ];
    let mut i = 0;
    while i < pairs.len() {
        t[pairs[i].0 as usize] = pairs[i].1;
        i += 1;
    }
    t
};

/// Decodes the escape at the start of `b` (which begins with `\`): the character and the
/// escape's length. A lone surrogate decodes to U+FFFD, as lenient JSON readers do.
#[inline(always)]
fn escape(b: &[u8]) -> Option<(char, usize)> {
    let e = *b.get(1)?;
    let simple = simple_escape(e);
    if simple != 0 {
        return Some((char::from(simple), 2));
    }
    if e != b'u' {
        return None;
    }
    let hi = hex4(b.get(2..6)?)?;
    if (0xD800..0xDC00).contains(&hi)
        && let (Some(b"\\u"), Some(lo)) = (b.get(6..8), b.get(8..12).and_then(hex4))
        && (0xDC00..0xE000).contains(&lo)
    {
        let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
        return Some((char::from_u32(c)?, 12));
    }
    Some((char::from_u32(hi).unwrap_or(char::REPLACEMENT_CHARACTER), 6))
}

/// The byte a two-byte escape decodes to, by the byte after its backslash; 0 for `\\u` and
/// for what is no escape.
#[inline(always)]
fn simple_escape(e: u8) -> u8 {
    SIMPLE_ESCAPES.get(usize::from(e)).copied().unwrap_or(0)
}

/// Whether each byte of `v` ends a run of plain string text: a quote, a backslash or a
/// control character.
#[inline(always)]
fn run_end(v: u8x16) -> u8x16 {
    v.simd_eq(u8x16::splat(b'"')) | v.simd_eq(u8x16::splat(b'\\')) | in_range(v, 0, 0x20)
}

/// A short text as one number: its bytes (at most fifteen) little-endian, and its length in
/// the top byte. Keys and values the classifier knows compare as [`word`] constants.
pub(crate) type Word = u128;

/// The [`Word`] of `s`; a text longer than fifteen bytes gives [`Word::MAX`], which no text of
/// fifteen bytes or fewer gives.
pub(crate) const fn word(s: &str) -> Word {
    let b = s.as_bytes();
    if b.len() > 15 {
        return Word::MAX;
    }
    let (mut w, mut rest): (Word, &[u8]) = ((b.len() as Word) << 120, b);
    while let [init @ .., last] = rest {
        w |= (*last as Word) << (8 * init.len());
        rest = init;
    }
    w
}

/// The index of the first byte from `at` that is not JSON whitespace.
#[inline(always)]
fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(at) {
        at += 1;
    }
    at
}

/// The [`Word`] of the string whose `"` is at `at`, and the index after its closing quote,
/// when its text is at most fifteen bytes with no escapes or control characters.
#[inline(always)]
fn word_at(bytes: &[u8], at: usize) -> Option<(Word, usize)> {
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let head = load(bytes.get(at + 1..).unwrap_or_default());
    let k = run_end(head).to_bitmask().trailing_zeros();
    if k >= 16 || bytes.get(at + 1 + k as usize) != Some(&b'"') {
        return None;
    }
    let text = Word::from_le_bytes(head.to_array()) & ((1 << (8 * k)) - 1);
    Some((text | Word::from(k) << 120, at + 2 + k as usize))
}

/// The backslashes of a block that start an escape, and the bytes they escape, from the mask
/// of its backslashes; the block starts outside any escape. A run of backslashes pairs up from
/// its start, so a run of odd length escapes the byte after it. Subtracting each run from the
/// odd bits above it tells runs that start on an even bit from those that start on an odd one.
#[inline(always)]
fn escapes(backslash: u64) -> (u64, u64) {
    const ODD: u64 = 0xAAAA_AAAA_AAAA_AAAA;
    // Escape starts and escaped bytes, except escaped backslashes.
    let code = (backslash << 1 | ODD).wrapping_sub(backslash) ^ ODD;
    (code & backslash, code ^ backslash)
}

/// The value of each hex digit; 16 for every other byte.
#[allow(clippy::indexing_slicing, reason = "evaluated at compile time")]
const HEX: [u8; 256] = {
    let mut t = [16u8; 256];
    let mut d = 0;
    while d < 10 {
        t[(b'0' + d) as usize] = d;
        d += 1;
    }
    let mut d = 0;
    while d < 6 {
        t[(b'a' + d) as usize] = 10 + d;
        t[(b'A' + d) as usize] = 10 + d;
        d += 1;
    }
    t
};

/// The value of four hex digits (`b` holds exactly four bytes).
#[inline(always)]
fn hex4(b: &[u8]) -> Option<u32> {
    let digit = |d: u8| u32::from(HEX.get(usize::from(d)).copied().unwrap_or(16));
    let [d0, d1, d2, d3] = b.first_chunk::<4>()?.map(digit);
    // A byte that is no digit has bit 4 set.
    ((d0 | d1 | d2 | d3) < 16).then_some(d0 << 12 | d1 << 8 | d2 << 4 | d3)
}

/// The escapes of a block still to check, and the two-byte ones found so far.
struct Escapes {
    pending: u64,
    simple: u64,
    newlines: u32,
}

/// Any JSON value reduced to its kind (and a string's text, an integer's value).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind<'a> {
    Null,
    Bool(bool),
    UInt(u64),
    Number,
    Str(Str<'a>),
    /// Whether it had any element.
    Array(bool),
    /// Whether it had any member.
    Object(bool),
}

impl Kind<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::UInt(_) | Kind::Number => "a number",
            Kind::Str(_) => "a string",
            Kind::Array(_) => "an array",
            Kind::Object(_) => "an object",
        }
    }
}

/// A position in a body known to be UTF-8.
pub(crate) struct Cursor<'a> {
    text: &'a str,
    pos: usize,
    depth: u32,
}

impl<'a> Cursor<'a> {
    pub fn new(text: &'a str) -> Self {
        Cursor {
            text,
            pos: 0,
            depth: 0,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// An `invalid_json` error at the current position.
    #[cold]
    #[inline(never)]
    pub fn syntax(&self, what: &str) -> RouteError {
        syntax_error(self.text, self.pos, what)
    }

    /// The next byte after whitespace, not consumed.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        let b = self.bytes();
        while let Some(&c) = b.get(self.pos) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(c);
            }
            self.pos += 1;
        }
        None
    }

    #[inline(always)]
    fn eat(&mut self, c: u8, what: &str) -> Result<(), RouteError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.eof_or(what))
        }
    }

    #[cold]
    #[inline(never)]
    fn eof_or(&self, what: &str) -> RouteError {
        if self.pos >= self.text.len() {
            self.syntax("EOF while parsing")
        } else {
            self.syntax(what)
        }
    }

    fn enter(&mut self) -> Result<(), RouteError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.syntax("recursion limit exceeded"));
        }
        self.depth += 1;
        self.pos += 1;
        Ok(())
    }

    /// Consumes the `}` or `]` at `at`, which closes the innermost container.
    #[inline(always)]
    fn leave(&mut self, at: usize) {
        self.pos = at + 1;
        self.depth -= 1;
    }

    /// Consumes `{`; members follow through [`Cursor::next_key`].
    pub fn begin_object(&mut self) -> Result<(), RouteError> {
        if self.peek() != Some(b'{') {
            return Err(self.eof_or("expected `{`"));
        }
        self.enter()
    }

    /// The next member's key (its value follows), or `None` after the closing `}`.
    /// `first` starts `true` for each object.
    pub fn next_key(
        &mut self,
        first: &mut bool,
        counts: Option<&mut TextCounts>,
    ) -> Result<Option<Str<'a>>, RouteError> {
        match self.peek() {
            Some(b'}') => {}
            Some(b',') if !*first => {
                self.pos += 1;
                return self.key(counts).map(Some);
            }
            Some(b'"') if *first => {
                *first = false;
                return self.key(counts).map(Some);
            }
            _ => {
                return Err(self.eof_or(if *first {
                    "expected `\"` or `}`"
                } else {
                    "expected `,` or `}`"
                }));
            }
        }
        self.leave(self.pos);
        Ok(None)
    }

    #[inline(always)]
    fn key(&mut self, counts: Option<&mut TextCounts>) -> Result<Str<'a>, RouteError> {
        if self.peek() != Some(b'"') {
            return Err(self.eof_or("key must be a string"));
        }
        let key = self.string(counts)?;
        self.eat(b':', "expected `:`")?;
        Ok(key)
    }

    /// [`Cursor::next_key`] for keys compared as [`Word`]s. A key that is plain text of at most
    /// fifteen bytes is read straight from one vector, with the position kept in a register;
    /// anything else (escapes, longer keys, errors) goes through [`Cursor::next_key`].
    #[inline(always)]
    pub fn next_key_word(&mut self, first: &mut bool) -> Result<Option<Word>, RouteError> {
        let bytes = self.bytes();
        let at = skip_whitespace(bytes, self.pos);
        let key = match bytes.get(at) {
            Some(b'}') => {
                self.leave(at);
                return Ok(None);
            }
            Some(b',') if !*first => skip_whitespace(bytes, at + 1),
            Some(b'"') if *first => at,
            _ => return Ok(self.next_key(first, None)?.map(Str::word)),
        };
        if let Some((word, after)) = word_at(bytes, key) {
            let colon = skip_whitespace(bytes, after);
            if bytes.get(colon) == Some(&b':') {
                self.pos = colon + 1;
                *first = false;
                return Ok(Some(word));
            }
        }
        Ok(self.next_key(first, None)?.map(Str::word))
    }

    /// A string value that is plain text of at most fifteen bytes, consumed, as its [`Word`]
    /// and its text; `None`, with nothing consumed, for any other value.
    #[inline(always)]
    pub fn word_value(&mut self) -> Option<(Word, Str<'a>)> {
        let bytes = self.bytes();
        let at = skip_whitespace(bytes, self.pos);
        let (word, after) = word_at(bytes, at)?;
        self.pos = after;
        let raw = self.text.get(at + 1..after - 1).unwrap_or_default();
        Some((
            word,
            Str {
                raw,
                escaped: false,
            },
        ))
    }

    /// Consumes `[`; elements follow through [`Cursor::next_element`].
    pub fn begin_array(&mut self) -> Result<(), RouteError> {
        if self.peek() != Some(b'[') {
            return Err(self.eof_or("expected `[`"));
        }
        self.enter()
    }

    /// Whether another element follows (positioned at it), or `false` after the closing `]`.
    pub fn next_element(&mut self, first: &mut bool) -> Result<bool, RouteError> {
        match self.peek() {
            Some(b']') => {
                self.leave(self.pos);
                Ok(false)
            }
            Some(b',') if !*first => {
                self.pos += 1;
                Ok(true)
            }
            Some(_) if *first => {
                *first = false;
                Ok(true)
            }
            _ => Err(self.eof_or("expected `,` or `]`")),
        }
    }

    /// After the last value: only whitespace may follow.
    pub fn end(&mut self) -> Result<(), RouteError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.syntax("trailing characters")),
        }
    }

    /// A string at the cursor (which is at its `"`); with `counts`, its text is estimated.
    ///
    /// The text is read 64 bytes at a time: one mask marks quotes, backslashes and control
    /// characters; in a block that has any, runs of backslashes pair up by mask arithmetic, the
    /// two-byte escapes are checked in a tight loop and the others decoded one by one. A block
    /// never ends inside an escape: one that would cross the end starts the next block instead.
    #[inline(always)]
    pub fn string(&mut self, counts: Option<&mut TextCounts>) -> Result<Str<'a>, RouteError> {
        let bytes = self.bytes();
        let start = self.pos + 1;
        // Keys, roles and short values end within sixteen bytes and have no escapes.
        let head = load(bytes.get(start..).unwrap_or_default());
        let k = run_end(head).to_bitmask().trailing_zeros();
        if k < 16 && bytes.get(start + k as usize) == Some(&b'"') {
            if let Some(c) = counts {
                c.block(&Block::new(&[head]), k);
                c.end();
            }
            let end = start + k as usize;
            self.pos = end + 1;
            return Ok(Str {
                raw: self.text.get(start..end).unwrap_or_default(),
                escaped: false,
            });
        }
        self.long_string(start, counts)
    }

    /// [`Cursor::string`] past its first sixteen bytes, block by block.
    #[inline(never)]
    fn long_string(
        &mut self,
        start: usize,
        mut counts: Option<&mut TextCounts>,
    ) -> Result<Str<'a>, RouteError> {
        let bytes = self.bytes();
        let mut i = start;
        let mut escaped = false;
        loop {
            let rest = bytes.get(i..).unwrap_or_default();
            let q = quad(rest);
            let mut block = counts.is_some().then(|| Block::new(&q));
            // Quotes, backslashes and controls; zero padding reads as a control character.
            let special = bits(&q, run_end);
            let (n, done) = if special == 0 {
                (64, false)
            } else {
                let (n, done, escapes) = self.block_end(rest, &q, special, block.as_mut(), i)?;
                escaped |= escapes;
                (n, done)
            };
            if let (Some(c), Some(b)) = (counts.as_deref_mut(), &block) {
                c.block(b, n);
            }
            i += n as usize;
            if done {
                break;
            }
        }
        if let Some(c) = counts {
            c.end();
        }
        self.pos = i + 1;
        Ok(Str {
            raw: self.text.get(start..i).unwrap_or_default(),
            escaped,
        })
    }

    /// The end of a string's text in a block that holds quotes, backslashes or control
    /// characters (`special`), `rest` from index `i` of the body: the number of bytes of text
    /// before the closing quote (or before an escape that crosses the block's end), whether the
    /// quote was reached, and whether there were escapes. The escapes are checked in order and
    /// folded into `block`.
    #[inline(always)]
    fn block_end(
        &mut self,
        rest: &[u8],
        q: &Quad,
        special: u64,
        mut block: Option<&mut Block>,
        i: usize,
    ) -> Result<(u32, bool, bool), RouteError> {
        let backslash = bits(q, |v| v.simd_eq(u8x16::splat(b'\\')));
        let (starts, escaped) = escapes(backslash);
        // The text ends at the first quote or control character that is not escaped.
        let stop = (special & !(backslash | escaped)).trailing_zeros();
        let all = starts & below(stop);
        // Two-byte escapes, in a loop of their own; the first other one (`\u`, invalid, or
        // crossing the block's end) hands the rest over.
        let mut e = Escapes {
            pending: all,
            simple: 0,
            newlines: 0,
        };
        while e.pending != 0 {
            let p = e.pending.trailing_zeros();
            let decoded = rest.get(p as usize + 1).map_or(0, |&b| simple_escape(b));
            if decoded == 0 || p == 63 {
                break;
            }
            e.simple |= 1 << p;
            e.newlines += u32::from(decoded == b'\n');
            e.pending &= e.pending - 1;
        }
        let cut = if e.pending != 0 {
            self.other_escapes(rest, &mut e, block.as_deref_mut(), i)?
        } else {
            None
        };
        if let Some(b) = block {
            b.simple_escapes(e.simple, e.newlines);
        }
        let any = all != 0;
        if let Some(n) = cut {
            return Ok((n, false, any));
        }
        if stop == 64 {
            return Ok((64, false, any));
        }
        let at = stop as usize;
        match rest.get(at) {
            Some(b'"') => Ok((stop, true, any)),
            Some(_) => {
                self.pos = i + at;
                Err(self.syntax("control character (\\u0000-\\u001F) found while parsing a string"))
            }
            None => {
                self.pos = i + at;
                Err(self.syntax("EOF while parsing a string"))
            }
        }
    }

    /// [`Cursor::block_end`] from the first escape that is not a two-byte one within the block:
    /// every pending escape in order, `\u` ones folded into `block`, two-byte ones added to
    /// `e`. Returns where the block is cut when an escape crosses its end.
    #[inline(never)]
    fn other_escapes(
        &mut self,
        rest: &[u8],
        e: &mut Escapes,
        block: Option<&mut Block>,
        i: usize,
    ) -> Result<Option<u32>, RouteError> {
        let (mut cut, mut wide) = (None, Escaped::default());
        while e.pending != 0 {
            let p = e.pending.trailing_zeros();
            let at = p as usize;
            let Some((ch, len)) = escape(rest.get(at..).unwrap_or_default()) else {
                self.pos = i + at;
                return Err(self.syntax("invalid escape"));
            };
            let end = p + len as u32;
            if end > 64 {
                cut = Some(p);
                break;
            }
            if len == 2 {
                e.simple |= 1 << p;
                e.newlines += u32::from(ch == '\n');
            } else {
                wide.add(p, len as u32, ch);
            }
            // A surrogate pair is one escape of twelve bytes.
            e.pending &= !below(end);
        }
        if let Some(b) = block {
            b.escapes(&wide);
        }
        Ok(cut)
    }

    /// A number at the cursor: its value when a non-negative integer that fits `u64`.
    fn number(&mut self) -> Result<Kind<'a>, RouteError> {
        let b = self.bytes();
        let mut i = self.pos;
        let negative = b.get(i) == Some(&b'-');
        i += usize::from(negative);
        let digits = |i: &mut usize| {
            let s = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - s
        };
        let int_start = i;
        let n = digits(&mut i);
        if n == 0 || (n > 1 && b.get(int_start) == Some(&b'0')) {
            self.pos = i;
            return Err(self.syntax("invalid number"));
        }
        let mut integer = true;
        if b.get(i) == Some(&b'.') {
            i += 1;
            integer = false;
            if digits(&mut i) == 0 {
                self.pos = i;
                return Err(self.syntax("invalid number"));
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            integer = false;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                self.pos = i;
                return Err(self.syntax("invalid number"));
            }
        }
        let value = if integer && !negative {
            b.get(int_start..i)
                .unwrap_or_default()
                .iter()
                .try_fold(0u64, |v, &d| {
                    v.checked_mul(10)?.checked_add(u64::from(d - b'0'))
                })
        } else {
            None
        };
        self.pos = i;
        Ok(value.map_or(Kind::Number, Kind::UInt))
    }

    fn literal(&mut self, word: &'static [u8], kind: Kind<'a>) -> Result<Kind<'a>, RouteError> {
        let end = self.pos + word.len();
        if self.bytes().get(self.pos..end) == Some(word) {
            self.pos = end;
            Ok(kind)
        } else {
            Err(self.syntax("expected value"))
        }
    }

    /// A string, number or literal at the cursor; with `counts`, a string's text is
    /// estimated and numbers and booleans count as tokens.
    fn scalar(&mut self, counts: Option<&mut TextCounts>) -> Result<Kind<'a>, RouteError> {
        let kind = match self.peek() {
            Some(b'"') => return self.string(counts).map(Kind::Str),
            Some(b't') => self.literal(b"true", Kind::Bool(true))?,
            Some(b'f') => self.literal(b"false", Kind::Bool(false))?,
            Some(b'n') => self.literal(b"null", Kind::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            _ => return Err(self.eof_or("expected value")),
        };
        if let Some(c) = counts {
            c.add(match kind {
                Kind::Null => 0,
                Kind::Number => 2,
                _ => 1,
            });
        }
        Ok(kind)
    }

    /// Any value at the cursor, walked to its end (without recursion); with `counts`, the
    /// text of every string in it (keys too) is estimated.
    pub fn value(&mut self, mut counts: Option<&mut TextCounts>) -> Result<Kind<'a>, RouteError> {
        let top = match self.peek() {
            Some(c @ (b'{' | b'[')) => c,
            _ => return self.scalar(counts),
        };
        let base = self.depth;
        // Bit i: whether the container i levels above the innermost is an array.
        let mut arrays: u128 = 0;
        let mut nonempty = false;
        let mut want_value = true;
        loop {
            if want_value {
                match self.peek() {
                    Some(c @ (b'{' | b'[')) => {
                        self.enter()?;
                        let array = c == b'[';
                        arrays = arrays << 1 | u128::from(array);
                        let close = if array { b']' } else { b'}' };
                        if self.peek() == Some(close) {
                            self.leave(self.pos);
                            arrays >>= 1;
                            want_value = false;
                        } else {
                            if self.depth == base + 1 {
                                nonempty = true;
                            }
                            if !array {
                                self.key(counts.as_deref_mut())?;
                            }
                        }
                    }
                    _ => {
                        self.scalar(counts.as_deref_mut())?;
                        want_value = false;
                    }
                }
                continue;
            }
            if self.depth == base {
                break;
            }
            let array = arrays & 1 == 1;
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    if !array {
                        self.key(counts.as_deref_mut())?;
                    }
                    want_value = true;
                }
                Some(b']') if array => {
                    self.leave(self.pos);
                    arrays >>= 1;
                }
                Some(b'}') if !array => {
                    self.leave(self.pos);
                    arrays >>= 1;
                }
                _ => {
                    return Err(self.eof_or(if array {
                        "expected `,` or `]`"
                    } else {
                        "expected `,` or `}`"
                    }));
                }
            }
        }
        Ok(if top == b'[' {
            Kind::Array(nonempty)
        } else {
            Kind::Object(nonempty)
        })
    }
}

/// An `invalid_json` error naming the line and column of byte `pos`.
pub(crate) fn syntax_error(text: &str, pos: usize, what: &str) -> RouteError {
    let before = text.as_bytes().get(..pos).unwrap_or(text.as_bytes());
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
    let column = before.len() - line_start + usize::from(pos < text.len());
    RouteError::new(
        ErrorCode::InvalidJson,
        format!("request body is not valid JSON: {what} at line {line} column {column}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(text: &str) -> Result<(), RouteError> {
        let mut c = Cursor::new(text);
        c.value(None)?;
        c.end()
    }

    #[test]
    fn accepts_what_serde_json_accepts() {
        for text in [
            r#"{"a": [1, -2.5e3, true, false, null, "x\n\u00e9\ud83d\ude00"], "b": {}}"#,
            "[]",
            " 0 ",
            r#""\ud800""#,
            "[[[[]]]]",
        ] {
            assert!(walk(text).is_ok(), "{text}");
        }
        for text in [
            "{",
            "[1,]",
            "{\"a\" 1}",
            "01",
            "1.",
            "-",
            "tru",
            "\"\u{1}\"",
            "\"\\x\"",
            "[1 2]",
            "{\"a\":1,}",
            "{,}",
            "[,1]",
            "1 2",
            "\"abc",
        ] {
            assert!(walk(text).is_err(), "{text}");
            assert!(
                serde_json::from_str::<serde::de::IgnoredAny>(text).is_err(),
                "{text}"
            );
        }
    }

    #[test]
    fn nesting_is_limited_without_recursion() {
        let deep = "[".repeat(100_000);
        let e = walk(&deep).unwrap_err();
        assert!(e.message().contains("recursion limit"), "{}", e.message());
        let ok = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert!(walk(&ok).is_ok());
    }

    #[test]
    fn strings_decode_lazily_and_exactly() {
        let text = r#""caf\u00e9 \"q\" \ud83d\ude00 \ud800 tab\t""#;
        let mut c = Cursor::new(text);
        let s = c.string(None).unwrap();
        assert!(s.escaped);
        assert_eq!(s.decode(), "café \"q\" 😀 \u{FFFD} tab\t");
        let mut buf = [0u8; 32];
        assert_eq!(
            Str {
                raw: "mod\\u0065l",
                escaped: true
            }
            .small(&mut buf),
            "model"
        );
        let long = "\\u0065".repeat(40);
        assert_eq!(
            Str {
                raw: &long,
                escaped: true
            }
            .small(&mut buf),
            ""
        );
    }

    #[test]
    fn decoding_into_a_buffer_matches_the_characters_and_stops_at_the_limit() {
        let raw = r#"caf\u00e9 \"q\" \ud83d\ude00 tab\t end"#;
        let s = Str { raw, escaped: true };
        let all: String = s.chars().collect();
        for limit in 0..=all.len() + 2 {
            let mut out = String::new();
            s.decode_into(&mut out, limit);
            assert!(
                out.len() <= limit && all.starts_with(&out),
                "{limit}: {out:?}"
            );
            // Stops only when the next character would not fit.
            let next = all.get(out.len()..).and_then(|r| r.chars().next());
            assert!(
                next.is_none_or(|c| out.len() + c.len_utf8() > limit),
                "{limit}: {out:?}"
            );
        }
    }

    /// Every non-ASCII character and some ASCII ones as `\\u` escapes, the rest as serde_json
    /// writes them.
    fn escape_more(text: &str, every: usize) -> String {
        let mut out = String::from("\"");
        for (i, c) in text.chars().enumerate() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_control()
                    || !c.is_ascii()
                    || (every > 0 && i % every == 0 && c.is_ascii()) =>
                {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    proptest::proptest! {
        #[test]
        fn the_decoded_tail_is_the_end_of_the_decoded_text_in_bounded_room(
            text in "([a-z ]{0,30}[\n\"\\\\é日😀]){0,12}[a-z ]{0,60}",
            every in 0usize..4,
            keep in 1usize..40,
        ) {
            let json = escape_more(&text, every);
            let raw = json.get(1..json.len() - 1).unwrap();
            let s = Str { raw, escaped: true };
            let mut out = String::with_capacity(3 + 2 * keep + 4);
            out.push_str("ab\n");
            let room = out.capacity();
            s.decode_tail_into(&mut out, keep);
            let mut cut = text.len().saturating_sub(keep);
            while !text.is_char_boundary(cut) {
                cut += 1;
            }
            proptest::prop_assert_eq!(&out[3..], &text[cut..]);
            proptest::prop_assert_eq!(out.capacity(), room);
        }
    }

    /// Escapes of a mask of backslashes, pairing them up from the first one, one at a time.
    fn escapes_one_by_one(backslash: u64) -> (u64, u64) {
        let (mut starts, mut escaped, mut i) = (0u64, 0u64, 0);
        while i < 64 {
            if backslash >> i & 1 == 1 {
                starts |= 1 << i;
                escaped |= 1u64.checked_shl(i + 1).unwrap_or(0);
                i += 2;
            } else {
                i += 1;
            }
        }
        (starts, escaped)
    }

    proptest::proptest! {
        #[test]
        fn backslash_runs_pair_up_from_their_start(
            runs in proptest::collection::vec((0u32..4, 1u32..8), 0..20),
            noise in proptest::num::u64::ANY,
        ) {
            // Runs of backslashes, dense or random.
            let mut backslash = 0u64;
            let mut at = 0u32;
            for (gap, len) in runs {
                at += gap;
                backslash |= below(len).checked_shl(at).unwrap_or(0);
                at += len;
            }
            for mask in [backslash, noise, backslash ^ noise, u64::MAX] {
                proptest::prop_assert_eq!(escapes(mask), escapes_one_by_one(mask), "{:064b}", mask);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn counting_a_json_string_counts_its_decoded_text(
            text in "\\PC{0,300}|[a-z0-9 \n\t\"\\\\.,é日😀]{0,300}",
            every in 0usize..7,
        ) {
            let mut want = TextCounts::default();
            want.text(&text);
            for json in [serde_json::to_string(&text).unwrap(), escape_more(&text, every)] {
                let mut got = TextCounts::default();
                let s = Cursor::new(&json).string(Some(&mut got)).unwrap();
                proptest::prop_assert_eq!(s.decode(), text.as_str());
                proptest::prop_assert_eq!(got.totals(), want.totals(), "{}", json);
            }
        }
    }

    /// Escapes, ends and errors at every offset around the 16- and 64-byte block edges.
    #[test]
    fn block_edges_do_not_move_ends_escapes_or_errors() {
        for at in 0..140 {
            let pad = "a".repeat(at);
            for (esc, decoded) in [
                ("\\n", "\n"),
                ("\\\\", "\\"),
                ("\\\"", "\""),
                ("\\u00e9", "é"),
                ("\\u0041", "A"),
                ("\\ud83d\\ude00", "😀"),
                ("\\\\\\\"", "\\\""),
                ("\\\\\\\\\\n", "\\\\\n"),
            ] {
                let json = format!("\"{pad}{esc}b\" ");
                let mut c = Cursor::new(&json);
                let mut got = TextCounts::default();
                let s = c.string(Some(&mut got)).unwrap();
                assert_eq!(s.decode(), format!("{pad}{decoded}b"), "{at} {esc}");
                assert_eq!(c.pos, json.len() - 1, "{at} {esc}");
                let mut want = TextCounts::default();
                want.text(&format!("{pad}{decoded}b"));
                assert_eq!(got.totals(), want.totals(), "{at} {esc}");
            }
            let plain = format!("\"{pad}\"");
            let mut c = Cursor::new(&plain);
            assert!(!c.string(None).unwrap().escaped);
            assert_eq!(c.pos, plain.len());
            // The column of an error is that of the offending byte (1-based, after the quote).
            for (bad, what) in [
                ("\\x", "invalid escape"),
                ("\u{1}", "control character"),
                ("\\u12G4", "invalid escape"),
            ] {
                let e = Cursor::new(&format!("\"{pad}{bad}\""))
                    .string(None)
                    .unwrap_err();
                let col = format!("line 1 column {}", at + 2);
                assert!(
                    e.message().contains(what) && e.message().ends_with(&col),
                    "{at}: {}",
                    e.message()
                );
            }
            let e = Cursor::new(&format!("\"{pad}")).string(None).unwrap_err();
            assert!(e.message().contains("EOF"), "{at}: {}", e.message());
        }
    }

    #[test]
    fn short_plain_strings_read_as_their_word_and_others_fall_back() {
        let text = "abcdefghijklmnopq";
        for len in 0..=16 {
            let t = text.get(..len).unwrap();
            let json = format!("{{ \"{t}\" :\t\"{t}\"}}");
            let mut c = Cursor::new(&json);
            c.begin_object().unwrap();
            let mut first = true;
            let key = c.next_key_word(&mut first).unwrap();
            // Sixteen bytes take the general path and give the word of any longer text.
            assert_eq!(key, Some(word(t)), "{len}");
            let value = c.word_value();
            assert_eq!(
                value.map(|(w, s)| (w, s.raw)),
                (len < 16).then_some((word(t), t))
            );
            if value.is_none() {
                c.value(None).unwrap();
            }
            assert_eq!(c.next_key_word(&mut first).unwrap(), None);
            c.end().unwrap();
        }
        // Words differ by length, so a trailing NUL is no match.
        assert_ne!(word("role"), word("role\0"));
        assert_eq!(word("sixteen bytes ok"), Word::MAX);
        // Escapes and control characters are not words; they are decoded instead.
        for (json, key) in [(r#"{"r\u006fle":1}"#, "role"), ("{\"a\tb\":1}", "")] {
            let mut c = Cursor::new(json);
            c.begin_object().unwrap();
            let mut first = true;
            match c.next_key_word(&mut first) {
                Ok(k) => assert_eq!(k, Some(word(key))),
                Err(e) => assert!(key.is_empty() && e.message().contains("control"), "{e}"),
            }
        }
        let mut c = Cursor::new(r#"["\u0041"]"#);
        c.begin_array().unwrap();
        assert!(c.word_value().is_none());
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = walk("{\n  \"a\": tru\n}").unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidJson);
        assert!(
            e.message().ends_with("at line 2 column 8"),
            "{}",
            e.message()
        );
    }
}
