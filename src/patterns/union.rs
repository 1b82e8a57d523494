//! Which of a policy's patterns match a text, in one tight pass of a lazy DFA.
//!
//! `regex-automata`'s overlapping search stops at every match and steps byte by byte through a
//! general loop; asking only *which* patterns match anywhere needs neither. This walks the
//! union of the patterns (every match kept, `MatchKind::All`) one transition per byte, collects
//! the patterns of each match state it passes through, and stops once every pattern has
//! matched. Where the DFA cannot answer (a Unicode word boundary beside non-ASCII text, a
//! pattern set it cannot build, or one whose states keep outgrowing its cache), the caller
//! falls back to the meta regex.

use std::panic::{RefUnwindSafe, UnwindSafe};

use regex_automata::hybrid::LazyStateID;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson;
use regex_automata::util::pool::Pool;
use regex_automata::{Input, MatchKind};

type NewCache = Box<dyn Fn() -> Cache + Send + Sync + UnwindSafe + RefUnwindSafe>;

/// The patterns of a policy as one lazy DFA, with a cache per thread.
pub(crate) struct Union {
    dfa: DFA,
    caches: Pool<Cache, NewCache>,
    /// A bit for each pattern.
    all: u64,
}

impl std::fmt::Debug for Union {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Union").field("all", &self.all).finish()
    }
}

impl Union {
    /// The union of `patterns` (at most 64), or `None` when the lazy DFA cannot be built for
    /// them within `nfa_size_limit`.
    pub fn new(patterns: &[String], nfa_size_limit: usize) -> Option<Union> {
        let all = match patterns.len() {
            0 => return None,
            n @ 1..64 => (1u64 << n) - 1,
            64 => u64::MAX,
            _ => return None,
        };
        let dfa = builder(nfa_size_limit).build_many(patterns).ok()?;
        let owned = dfa.clone();
        let caches: Pool<Cache, NewCache> = Pool::new(Box::new(move || owned.create_cache()));
        Some(Union { dfa, caches, all })
    }

    /// Bit `i` set when pattern `i` matches somewhere in `text`; `None` when the DFA has to
    /// give up on it.
    pub fn matches(&self, text: &[u8]) -> Option<u64> {
        let dfa = &self.dfa;
        let mut cache = self.caches.get();
        let cache = &mut *cache;
        let mut sid = dfa.start_state_forward(cache, &Input::new(text)).ok()?;
        let mut bits = 0;
        let mut at = 0;
        while at < text.len() {
            if !sid.is_tagged() {
                // The common case: from one computed, plain state to the next.
                let known = &*cache;
                while let Some(&b) = text.get(at) {
                    let next = dfa.next_state_untagged(known, sid, b);
                    if next.is_tagged() {
                        break;
                    }
                    sid = next;
                    at += 1;
                }
            }
            let Some(&b) = text.get(at) else {
                break;
            };
            // Into a match, dead or quit state, or one not computed yet.
            sid = dfa.next_state(cache, sid, b).ok()?;
            at += 1;
            if sid.is_match() {
                bits |= self.patterns(cache, sid);
                if bits == self.all {
                    return Some(bits);
                }
            } else if sid.is_quit() {
                return None;
            } else if sid.is_dead() {
                break;
            }
        }
        // Matches that end at the end of the text show in the end-of-input transition.
        if !sid.is_dead() {
            sid = dfa.next_eoi_state(cache, sid).ok()?;
            if sid.is_match() {
                bits |= self.patterns(cache, sid);
            }
        }
        Some(bits)
    }

    /// The patterns whose matches match state `sid` reports.
    fn patterns(&self, cache: &Cache, sid: LazyStateID) -> u64 {
        (0..self.dfa.match_len(cache, sid)).fold(0, |m, i| {
            m | 1u64 << (self.dfa.match_pattern(cache, sid, i).as_usize() % 64)
        })
    }
}

/// The lazy DFA's configuration, for the union and for probing one pattern alike.
fn builder(nfa_size_limit: usize) -> regex_automata::hybrid::dfa::Builder {
    let mut b = DFA::builder();
    b.configure(
        DFA::config()
            .match_kind(MatchKind::All)
            // Built, then given up on non-ASCII text, rather than refused.
            .unicode_word_boundary(true)
            // A set whose states outgrow the cache gives up after a few clears, as the meta
            // regex's own lazy DFA does, instead of rebuilding states on every byte.
            .minimum_cache_clear_count(Some(3)),
    )
    .thompson(thompson::Config::new().nfa_size_limit(Some(nfa_size_limit)));
    b
}

/// How many states `pattern`'s lazy DFA has to build while walking `text` to its end (as it
/// would on a request that never matches); `None` when it cannot be built or gives up. A
/// pattern whose DFA keeps building states, rather than reusing the few it has, costs a state
/// construction per byte on every request: large bounded repetitions (`\w{0,300}X\w{300}`)
/// need a state for every count.
pub(crate) fn states_built(pattern: &str, nfa_size_limit: usize, text: &[u8]) -> Option<usize> {
    let dfa = builder(nfa_size_limit).build(pattern).ok()?;
    let mut cache = dfa.create_cache();
    let mut sid = dfa
        .start_state_forward(&mut cache, &Input::new(text))
        .ok()?;
    let mut seen = std::collections::HashSet::new();
    for &b in text {
        sid = dfa.next_state(&mut cache, sid, b).ok()?;
        if sid.is_quit() {
            return None;
        }
        seen.insert(sid);
    }
    let built = seen.len();
    Some(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;
    use regex_automata::PatternSet;
    use regex_automata::meta::Regex;

    /// Patterns with anchors, word boundaries (ASCII and Unicode), case folding, empty matches
    /// and non-ASCII classes (the default policy's own are checked on their own below).
    const POOL: &[&str] = &[
        r"(?-u:\b)(fn|let|then)(?-u:\b)",
        r"(?i)caf(é|e)",
        r"(?m)^\s*(\d+[.)]|[-*•])\s+\S",
        r";\s*$",
        r"(?m)^$",
        r"x*",
        r"\bword\b",
        r"[,;，、；]",
        r"日本",
        r"\d\s*[-+*/^=]\s*\d",
        r"(?i)ÉTÉ",
        r"😀+",
        r"\A\s",
        r"\.\z",
    ];

    /// The meta regex's overlapping search: the reference.
    fn reference(patterns: &[String], text: &str) -> u64 {
        let re = Regex::builder()
            .configure(Regex::config().match_kind(MatchKind::All))
            .build_many(patterns)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut set = PatternSet::new(patterns.len());
        re.which_overlapping_matches(&Input::new(text), &mut set);
        set.iter().fold(0, |m, p| m | 1 << p.as_usize())
    }

    fn union(patterns: &[String]) -> Union {
        Union::new(patterns, 1 << 23).unwrap_or_else(|| panic!("{patterns:?} do not build"))
    }

    #[test]
    fn the_default_signals_match_as_the_regex_does() {
        let policy = crate::CompiledPolicy::embedded();
        let patterns = &policy.patterns.sources;
        let u = union(patterns);
        for text in [
            "",
            "Why does this fail?\n```rust\nfn parse(s: &str) -> u32 {\n}\n```\nThe café, 日本語；",
            "Prove it step by step: first x, then 2 + 2 = 4.\n1. one\n- two",
            "debugging a race condition; must not exceed latency;",
        ] {
            assert_eq!(
                u.matches(text.as_bytes()),
                Some(reference(patterns, text)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_unicode_word_boundary_gives_up_on_non_ascii_text_only() {
        let patterns = [r"\bcafé\b".to_string(), "b".to_string()];
        let u = union(&patterns);
        assert_eq!(u.matches(b"a b"), Some(0b10));
        assert_eq!(u.matches("a café b".as_bytes()), None);
    }

    #[test]
    fn a_set_that_outgrows_its_cache_gives_up() {
        // Remembering the last 21 letters takes millions of states, the cache holds 2 MB, and
        // the text never matches, so the walk cannot stop early.
        let patterns = ["(a|b)*a(a|b){20}c".to_string()];
        let u = union(&patterns);
        let mut seed = 1u32;
        let text: Vec<u8> = (0..1 << 16)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                if seed >> 31 == 0 { b'a' } else { b'b' }
            })
            .collect();
        let answers: Vec<Option<u64>> = (0..8).map(|_| u.matches(&text)).collect();
        assert!(answers.contains(&None), "{answers:?}");
        assert!(
            answers.iter().flatten().all(|&bits| bits == 0),
            "{answers:?}"
        );
    }

    proptest! {
        #[test]
        fn every_pattern_found_is_one_the_regex_finds(
            picks in proptest::collection::vec(0..POOL.len(), 1..6),
            text in "[a-z0-9 .;,\n\t*é日本😀ÉTx+=-]{0,40}",
        ) {
            let patterns: Vec<String> = picks.iter().filter_map(|&i| POOL.get(i)).map(|p| p.to_string()).collect();
            let expected = reference(&patterns, &text);
            match union(&patterns).matches(text.as_bytes()) {
                Some(bits) => prop_assert_eq!(bits, expected),
                // Only a Unicode word boundary beside non-ASCII text makes it give up.
                None => prop_assert!(patterns.iter().any(|p| p.contains(r"\bword")) && !text.is_ascii()),
            }
        }
    }
}
