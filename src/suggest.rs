//! "Did you mean" hints: the known name closest to an unknown one.
//!
//! A hint costs one comparison per known name, so a catalog of tens of thousands of names must
//! not make every unknown name expensive. [`Names`] keeps the names sorted by length with the
//! set of bytes each contains, rules most of them out with a few instructions each, and gives
//! the full edit distance to at most [`MAX_COMPARED`] of the rest.

/// The most names an unknown name is compared with in full (by edit distance); past that, the
/// best so far is the hint. Only lists of hundreds of names that differ from it and from each
/// other in the same few characters reach it.
pub(crate) const MAX_COMPARED: usize = 256;

/// Known names, prepared for hints.
#[derive(Debug, Default)]
pub(crate) struct Names {
    /// Sorted by length in characters, then by name.
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    chars: usize,
    bytes: u64,
    ascii: bool,
    name: Box<str>,
}

impl Names {
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut entries: Vec<Entry> = names
            .into_iter()
            .map(|n| Entry {
                chars: n.chars().count(),
                bytes: byte_set(n),
                ascii: n.is_ascii(),
                name: n.into(),
            })
            .collect();
        entries.sort_by(|a, b| a.chars.cmp(&b.chars).then_with(|| a.name.cmp(&b.name)));
        entries.dedup_by(|a, b| a.name == b.name);
        Names { entries }
    }

    /// The closest name to `name`, when close enough to be a likely typo: at most a third of
    /// its characters (one to four) edited. Ties go to the name that sorts first.
    ///
    /// Names are compared in full in order of a lower bound on their distance, so the search
    /// stops as soon as no name left can come as close as the best so far.
    pub fn closest(&self, name: &str) -> Option<&str> {
        let len = name.chars().count();
        let limit = (len / 3).clamp(1, 4);
        let (bytes, ascii) = (byte_set(name), name.is_ascii());
        let bag = ByteBag::of(name);
        let from = self.entries.partition_point(|e| e.chars + limit < len);
        let to = self.entries.partition_point(|e| e.chars <= len + limit);
        let window = self.entries.get(from..to).unwrap_or_default();
        let mut best: Option<(usize, &str)> = None;
        let mut compared = 0;
        for bound in 0..=limit {
            // Names left are at least `bound` edits away: only a tie could still win.
            if best.is_some_and(|(d, _)| bound > d) {
                break;
            }
            for e in window {
                // Lower bounds on the edits: the difference in length, and the bytes one name
                // has that the other lacks, one byte an edit between ASCII names and up to
                // four otherwise. The sets of bytes (folded to 64 bits, which only hides
                // differences) rule out most names at once, the counts of bytes the rest.
                let per_edit = if ascii && e.ascii { 1 } else { 4 };
                let gap = e.chars.abs_diff(len);
                let apart = (e.bytes & !bytes)
                    .count_ones()
                    .max((bytes & !e.bytes).count_ones()) as usize;
                if gap > bound || apart > per_edit * bound {
                    continue;
                }
                // Each name is compared in the round of its own bound.
                if gap.max(bag.distance(&e.name).div_ceil(per_edit)) != bound {
                    continue;
                }
                if compared == MAX_COMPARED {
                    return best.map(|(_, n)| n);
                }
                compared += 1;
                let d = strsim::osa_distance(name, &e.name);
                if d <= limit && best.is_none_or(|b| (d, &*e.name) < b) {
                    best = Some((d, &e.name));
                }
            }
        }
        best.map(|(_, n)| n)
    }
}

/// The bytes of `s` as a set, each byte folded to one of 64 bits.
fn byte_set(s: &str) -> u64 {
    s.bytes().fold(0, |set, b| set | 1 << (b & 63))
}

/// How often each byte occurs in a string.
struct ByteBag {
    counts: [u8; 256],
    len: usize,
}

impl ByteBag {
    fn of(s: &str) -> Self {
        let mut counts = [0u8; 256];
        for &b in s.as_bytes() {
            if let Some(c) = counts.get_mut(usize::from(b)) {
                *c = c.saturating_add(1);
            }
        }
        ByteBag {
            counts,
            len: s.len(),
        }
    }

    /// The larger of the bytes one has beyond the other, either way round, against `other`:
    /// in time linear in `other`'s length.
    fn distance(&self, other: &str) -> usize {
        let mut left = self.counts;
        let mut shared = 0;
        for &b in other.as_bytes() {
            if let Some(c) = left.get_mut(usize::from(b))
                && *c > 0
            {
                *c -= 1;
                shared += 1;
            }
        }
        (self.len - shared).max(other.len() - shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    /// Every name compared in full, no filters: what the hint must equal below the cap.
    fn reference<'a>(name: &str, names: &[&'a str]) -> Option<&'a str> {
        let limit = (name.chars().count() / 3).clamp(1, 4);
        names
            .iter()
            .map(|n| (strsim::osa_distance(name, n), *n))
            .filter(|(d, _)| *d <= limit)
            .min()
            .map(|(_, n)| n)
    }

    #[test]
    fn hints_a_close_name_and_none_for_a_far_one() {
        let names = Names::new(["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "flux-auto"]);
        assert_eq!(names.closest("gpt-4o-mimi"), Some("gpt-4o-mini"));
        assert_eq!(names.closest("gtp-4o"), Some("gpt-4o"));
        assert_eq!(names.closest("flux-atuo"), Some("flux-auto"));
        assert_eq!(names.closest("claude-sonet-4-5"), Some("claude-sonnet-4-5"));
        assert_eq!(names.closest("llama-3"), None);
        assert_eq!(Names::default().closest("gpt-4o"), None);
    }

    #[test]
    fn ties_go_to_the_name_that_sorts_first() {
        let names = Names::new(["m2", "m1", "m3"]);
        assert_eq!(names.closest("m0"), Some("m1"));
    }

    #[test]
    fn near_identical_names_cost_a_bounded_number_of_comparisons() {
        // Every name passes the cheap filters; only the first MAX_COMPARED are compared in
        // full, in their fixed order, so whatever the hint is, it is close enough and the same
        // on every run.
        let list: Vec<String> = (0..20_000).map(|i| format!("m{i:05}")).collect();
        let names = Names::new(list.iter().map(String::as_str));
        for query in ["m00017x", "m19998x", "x00000"] {
            let hint = names.closest(query);
            assert!(
                hint.is_none_or(|h| strsim::osa_distance(query, h) <= 2),
                "{query}: {hint:?}"
            );
            assert_eq!(names.closest(query), hint);
        }
        // Within the names compared, the closest one wins.
        assert_eq!(names.closest("m00017x"), Some("m00017"));
    }

    proptest! {
        #[test]
        fn below_the_cap_the_filters_lose_nothing(
            names in proptest::collection::vec("[a-c0-1é日😀-]{1,9}", 0..40),
            name in "[a-c0-1é日😀-]{1,9}",
        ) {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let prepared = Names::new(refs.iter().copied());
            prop_assert_eq!(prepared.closest(&name), reference(&name, &refs));
        }
    }
}
