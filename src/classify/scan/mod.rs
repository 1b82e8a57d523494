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

use wide::u8x16;

use super::estimate::{Block, Escaped, Quad, TextCounts, below, bits, in_range, load, quad};
pub(crate) use super::text::{Str, Word, word};
use super::text::{escape, simple_escape};
use crate::error::{ErrorCode, RouteError};

/// The deepest nesting of arrays and objects accepted, the top-level object included (one level
/// more than `serde_json`'s default recursion limit allows).
pub(crate) const MAX_DEPTH: u32 = 128;

/// Whether each byte of `v` ends a run of plain string text: a quote, a backslash or a
/// control character.
#[inline(always)]
fn run_end(v: u8x16) -> u8x16 {
    v.simd_eq(u8x16::splat(b'"')) | v.simd_eq(u8x16::splat(b'\\')) | in_range(v, 0, 0x20)
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

/// The escapes of a block still to check, and the two-byte ones found so far.
struct Escapes {
    pending: u64,
    simple: u64,
    newlines: u32,
    /// `\\b` and `\\f`.
    controls: u32,
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
#[derive(Clone)]
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

    /// The byte offset of the next unread byte.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The whole body.
    pub fn text(&self) -> &'a str {
        self.text
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
            controls: 0,
        };
        while e.pending != 0 {
            let p = e.pending.trailing_zeros();
            let decoded = rest.get(p as usize + 1).map_or(0, |&b| simple_escape(b));
            if decoded == 0 || p == 63 {
                break;
            }
            e.simple |= 1 << p;
            e.newlines += u32::from(decoded == b'\n');
            e.controls += u32::from(matches!(decoded, 8 | 12));
            e.pending &= e.pending - 1;
        }
        let cut = if e.pending != 0 {
            self.other_escapes(rest, &mut e, block.as_deref_mut(), i)?
        } else {
            None
        };
        if let Some(b) = block {
            b.simple_escapes(e.simple, e.newlines, e.controls);
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
                e.controls += u32::from(matches!(ch, '\u{8}' | '\u{c}'));
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
mod tests;
