//! The scanner against `serde_json` and by hand: strings, escapes, words, nesting, errors.

use super::*;
use crate::classify::estimate::unaligned;

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

    #[test]
    fn the_decoded_head_is_the_start_of_the_decoded_text_that_fits(
        text in "([a-z ]{0,30}[\n\"\\\\é日😀]){0,12}[a-z ]{0,60}",
        every in 0usize..4,
    ) {
        let json = escape_more(&text, every);
        let raw = json.get(1..json.len() - 1).unwrap();
        let s = Str { raw, escaped: true };
        let mut buf = [0u8; 16];
        let head = s.decode_head(&mut buf);
        let mut cut = text.len().min(16);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        proptest::prop_assert_eq!(head, &text[..cut]);
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
            proptest::prop_assert_eq!(unaligned(got.totals()), unaligned(want.totals()), "{}", json);
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
            assert_eq!(
                unaligned(got.totals()),
                unaligned(want.totals()),
                "{at} {esc}"
            );
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
