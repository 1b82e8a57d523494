//! A policy's patterns (classifier signals, then rule patterns), compiled together so one pass
//! over the last user message finds every one that matches.
//!
//! A leaf: the policy compiler builds a [`Patterns`], classification runs it.

mod union;

use std::cell::RefCell;

use regex_automata::meta::Regex;
use regex_automata::{Input, PatternSet};

use union::Union;

/// The most patterns (signals plus rule patterns) a policy may hold: matches are a `u64`.
pub(crate) const MAX_PATTERNS: usize = 64;

/// How many bytes of the last user message's decoded text the policy's patterns see at most:
/// all of it when shorter, else its head and tail, half each (instructions sit at either end of
/// long pastes).
pub const PATTERN_WINDOW: usize = 16 << 10;

/// The most counted signals a policy may hold.
pub(crate) const MAX_COUNTED: usize = 8;

/// The size limit of one compiled pattern; sets and automata get eight times as much.
pub(crate) const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The policy's patterns, compiled together so one pass finds every one that matches.
#[derive(Debug)]
pub(crate) struct Patterns {
    pub sources: Vec<String>,
    /// `None` when there are no patterns.
    regex: Option<Regex>,
    /// The same patterns as one lazy DFA walked in a tight loop: the fast way to the same
    /// answer, `None` where it cannot be built.
    union: Option<Union>,
    /// The counted signals, in signal order (at most [`MAX_COUNTED`]).
    counted: Vec<Counter>,
}

/// A counted signal: its pattern on its own, to count matches with.
#[derive(Debug, Clone)]
struct Counter {
    /// Its index among the patterns (and the signals).
    pattern: usize,
    saturation: u32,
    regex: Regex,
}

/// What the patterns found in a text: bit `i` when pattern `i` matched, and the matches of
/// each counted signal (in the order they were given to [`Patterns::build`], up to its
/// saturation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Matches {
    pub bits: u64,
    pub counts: [u32; MAX_COUNTED],
}

thread_local! {
    /// Reused by every match on this thread, so matching allocates nothing.
    static MATCHED: RefCell<PatternSet> = RefCell::new(PatternSet::new(MAX_PATTERNS));
}

/// Whether a pattern is costly on the hot path: it has a large bounded repetition and its
/// automaton keeps building states on ordinary text (a fixed probe of words, digits and
/// punctuation, as long as the window patterns see). Patterns without such a repetition are
/// not probed.
pub(crate) fn is_costly(pattern: &str) -> bool {
    /// Bounded repetitions up to this count are cheap whatever they repeat.
    const SMALL_COUNT: u32 = 16;
    let Ok(hir) = regex_syntax::parse(pattern) else {
        return false;
    };
    if !has_large_count(&hir, SMALL_COUNT) {
        return false;
    }
    // Ordinary patterns settle into a few dozen states; a costly one builds one for most bytes
    // (or gives up on the text, which is as slow).
    let text = probe();
    union::states_built(pattern, REGEX_SIZE_LIMIT * 8, text).is_none_or(|n| n > text.len() / 16)
}

/// Whether `hir` holds a repetition whose bound (its maximum, or its minimum when unbounded)
/// is above `small`.
fn has_large_count(hir: &regex_syntax::hir::Hir, small: u32) -> bool {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Repetition(r) => r.max.unwrap_or(r.min) > small || has_large_count(&r.sub, small),
        HirKind::Capture(c) => has_large_count(&c.sub, small),
        HirKind::Concat(hs) | HirKind::Alternation(hs) => {
            hs.iter().any(|h| has_large_count(h, small))
        }
        _ => false,
    }
}

/// Ordinary text for probing, as long as the window patterns see: words of letters and digits
/// with spaces, punctuation and line breaks, then a run of letters and digits without a break
/// (as a pasted key, hash or base64 blob is), from a fixed generator.
fn probe() -> &'static [u8] {
    static PROBE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PROBE.get_or_init(|| {
        let mut x: u32 = 0x2545_F491;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let alphabet = b"etaoinshrdlucmfwypvbgkqjxzETAOINSX0123456789";
        let letter = |next: &mut dyn FnMut() -> u32| {
            let i = (next() as usize) % alphabet.len();
            alphabet.get(i).copied().unwrap_or(b'e')
        };
        let mut text = Vec::with_capacity(PATTERN_WINDOW);
        while text.len() < PATTERN_WINDOW / 2 {
            for _ in 0..1 + next() % 12 {
                text.push(letter(&mut next));
            }
            text.push(match next() % 16 {
                0 => b'.',
                1 => b',',
                2 => b'\n',
                _ => b' ',
            });
        }
        while text.len() < PATTERN_WINDOW {
            text.push(letter(&mut next));
        }
        text
    })
}

impl Patterns {
    /// Compiles `sources` (each already valid on its own) into one set; `counted` lists the
    /// (pattern index, saturation) of the patterns whose matches are counted. The error is the
    /// regex engine's message.
    pub fn build(sources: Vec<String>, counted: &[(usize, u32)]) -> Result<Patterns, String> {
        let regex = if sources.is_empty() {
            None
        } else {
            let set = Regex::builder()
                .configure(
                    Regex::config()
                        .match_kind(regex_automata::MatchKind::All)
                        .nfa_size_limit(Some(REGEX_SIZE_LIMIT * 8)),
                )
                .build_many(&sources)
                .map_err(|e| e.to_string())?;
            Some(set)
        };
        let counted = counted
            .iter()
            .map(|&(pattern, saturation)| {
                let source = sources.get(pattern).map_or("", String::as_str);
                let regex = Regex::builder()
                    .configure(Regex::config().nfa_size_limit(Some(REGEX_SIZE_LIMIT * 8)))
                    .build(source)
                    .map_err(|e| e.to_string())?;
                Ok(Counter {
                    pattern,
                    saturation,
                    regex,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Patterns {
            union: Union::new(&sources, REGEX_SIZE_LIMIT * 8),
            sources,
            regex,
            counted,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Every pattern once over `text`, then the counted signals that matched, each up to its
    /// saturation.
    pub fn find(&self, text: &str) -> Matches {
        let bits = self.matches(text);
        let mut counts = [0; MAX_COUNTED];
        for (n, c) in counts.iter_mut().zip(&self.counted) {
            if bits & (1u64 << (c.pattern % 64)) != 0 {
                let limit = usize::try_from(c.saturation).unwrap_or(usize::MAX);
                let found = c.regex.find_iter(Input::new(text)).take(limit).count();
                *n = u32::try_from(found).unwrap_or(u32::MAX);
            }
        }
        Matches { bits, counts }
    }

    /// Bit `i` set when pattern `i` matches somewhere in `text`.
    pub fn matches(&self, text: &str) -> u64 {
        let Some(re) = &self.regex else {
            return 0;
        };
        if let Some(bits) = self.union.as_ref().and_then(|u| u.matches(text.as_bytes())) {
            return bits;
        }
        let bits = |set: &PatternSet| {
            set.iter()
                .fold(0u64, |m, p| m | 1u64 << (p.as_usize() % 64))
        };
        let input = Input::new(text);
        MATCHED
            .try_with(|cell| {
                let mut set = cell.try_borrow_mut().ok()?;
                set.clear();
                re.which_overlapping_matches(&input, &mut set);
                Some(bits(&set))
            })
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                let mut set = PatternSet::new(re.pattern_len());
                re.which_overlapping_matches(&input, &mut set);
                bits(&set)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_bounded_repetitions_that_outgrow_the_cache_are_costly() {
        assert!(is_costly(r"(?-u:\w){0,300}X(?-u:\w){300}"));
        // Small counts, or none, are not probed; large counts that stay small are not costly.
        assert!(!is_costly(r"(?-u:\w){0,3}X"));
        assert!(!is_costly(
            r"(?i)(?-u:\b)(step[- ]by[- ]step|prove)(?-u:\b)"
        ));
        assert!(!is_costly(r"a{1000}"));
    }
}
