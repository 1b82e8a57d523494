//! "Did you mean" hints: the known name closest to an unknown one.
//!
//! A hint costs one comparison per known name, so a catalog of tens of thousands of names must
//! not make every unknown name expensive. [`Names`] keeps the names sorted by length with the
//! set of bytes each contains, rules most of them out with a few instructions each, and gives
//! the full edit distance to at most [`MAX_COMPARED`] of the rest.

/// The most names an unknown name is compared with in full; past that, the best so far is the
/// hint. Only lists of hundreds of near-identical names of about the same length reach it.
pub(crate) const MAX_COMPARED: usize = 256;

/// Known names, prepared for hints.
#[derive(Debug, Clone, Default)]
pub(crate) struct Names {
    /// Sorted by length in characters, then by name.
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
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
    /// its characters (one to four) edited. Ties go to the name that sorts first. Names of the
    /// same length come first, then one character longer or shorter, and so on, and the search
    /// stops once no name left can come closer.
    pub fn closest(&self, name: &str) -> Option<&str> {
        let len = name.chars().count();
        let limit = (len / 3).clamp(1, 4);
        let (bytes, ascii) = (byte_set(name), name.is_ascii());
        let bag = ByteBag::of(name);
        let mut best: Option<(usize, &str)> = None;
        let mut compared = 0;
        for gap in 0..=limit {
            // Every edit changes the length by at most one character.
            if best.is_some_and(|(d, _)| gap > d) {
                break;
            }
            let lengths = [len.checked_sub(gap), (gap > 0).then_some(len + gap)];
            for e in lengths
                .into_iter()
                .flatten()
                .flat_map(|n| self.of_length(n))
            {
                // Each edit changes one character, of one byte between ASCII names and up to
                // four otherwise: a name with more bytes than that the other lacks, either way
                // round, is too far. The sets of bytes (folded to 64 bits, which only hides
                // differences) tell most such names at once, the counts of bytes the rest.
                let most = if ascii && e.ascii { limit } else { 4 * limit };
                if (e.bytes & !bytes).count_ones() as usize > most
                    || (bytes & !e.bytes).count_ones() as usize > most
                {
                    continue;
                }
                if compared == MAX_COMPARED {
                    return best.map(|(_, n)| n);
                }
                compared += 1;
                if bag.distance(&ByteBag::of(&e.name)) > most {
                    continue;
                }
                let d = strsim::osa_distance(name, &e.name);
                if d <= limit && best.is_none_or(|b| (d, &*e.name) < b) {
                    best = Some((d, &e.name));
                }
            }
        }
        best.map(|(_, n)| n)
    }

    /// The names of `chars` characters.
    fn of_length(&self, chars: usize) -> &[Entry] {
        let from = self.entries.partition_point(|e| e.chars < chars);
        let to = self.entries.partition_point(|e| e.chars <= chars);
        self.entries.get(from..to).unwrap_or_default()
    }
}

/// The bytes of `s` as a set, each byte folded to one of 64 bits.
fn byte_set(s: &str) -> u64 {
    s.bytes().fold(0, |set, b| set | 1 << (b & 63))
}

/// How often each byte occurs in a string.
struct ByteBag([u8; 256]);

impl ByteBag {
    fn of(s: &str) -> Self {
        let mut counts = [0u8; 256];
        for &b in s.as_bytes() {
            if let Some(c) = counts.get_mut(usize::from(b)) {
                *c = c.saturating_add(1);
            }
        }
        ByteBag(counts)
    }

    /// The larger of the bytes one has beyond the other, either way round.
    fn distance(&self, other: &ByteBag) -> usize {
        let (mut more, mut less) = (0usize, 0usize);
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            more += usize::from(a.saturating_sub(*b));
            less += usize::from(b.saturating_sub(*a));
        }
        more.max(less)
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
            names in proptest::collection::vec("[a-d0-2é-]{1,9}", 0..40),
            name in "[a-d0-2é-]{1,9}",
        ) {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let prepared = Names::new(refs.iter().copied());
            prop_assert_eq!(prepared.closest(&name), reference(&name, &refs));
        }
    }
}
