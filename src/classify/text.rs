//! A JSON string as the scanner found it: its raw text between the quotes, decoded only on
//! demand (whole, into a buffer, or as runs of plain text between escapes); short ones compare
//! as a [`Word`].

use std::borrow::Cow;

use wide::u8x16;

use super::estimate::load;

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

    /// The decoded text's first bytes that fit `buf`, cut at a character boundary; nothing is
    /// allocated.
    pub fn decode_head<const N: usize>(self, buf: &mut [u8; N]) -> &str {
        let mut len = 0;
        for (text, c) in self.runs() {
            let room = N - len;
            let mut cut = text.len().min(room);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            if let (Some(dst), Some(src)) = (buf.get_mut(len..len + cut), text.get(..cut)) {
                dst.copy_from_slice(src.as_bytes());
                len += cut;
            }
            let Some(c) = c.filter(|c| cut == text.len() && c.len_utf8() <= N - len) else {
                break;
            };
            if let Some(dst) = buf.get_mut(len..len + c.len_utf8()) {
                c.encode_utf8(dst);
                len += c.len_utf8();
            }
        }
        // Whole characters only were copied, so the bytes are UTF-8.
        std::str::from_utf8(buf.get(..len).unwrap_or_default()).unwrap_or("")
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
pub(super) fn next_backslash(b: &[u8]) -> usize {
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
pub(super) fn escape(b: &[u8]) -> Option<(char, usize)> {
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
pub(super) fn simple_escape(e: u8) -> u8 {
    SIMPLE_ESCAPES.get(usize::from(e)).copied().unwrap_or(0)
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
