//! A trained complexity scorer: a linear model over the last user message that replaces the
//! classifier's weighted signal sum when a policy names one (`[classifier] model = "..."`).
//!
//! Its inputs, all made in the classify pass without allocating ([`text`]):
//! - hashed n-grams of the message (words, word pairs, CJK bigrams, four-character prefixes
//!   and suffixes of long words) into `2^bits` buckets, with the file's seed;
//! - dense structural features ([`DENSE`]): its length in tokens, the conversation's depth,
//!   tools, code fences, digits and numbers, math symbols, questions, list items, clauses,
//!   words per sentence, long words, code characters, non-ASCII share, lines;
//! - each policy signal the model names: 1 when it matched (a counted one: its saturation
//!   ratio).
//!
//! A light domain gate picks one of four heads (`chat`, `code`, `math`, `knowledge`) from the
//! structure; each head weighs the dense features and signals its own way, and the hashed
//! weights are shared. The score is the logistic of the sum, in `(0, 1)`.
//!
//! The model file is text, one entry per line, versioned by its first line; see
//! `docs/scorer.md`. [`Scorer::parse`] validates it with located errors.

pub(crate) mod text;
#[cfg(feature = "simulate")]
pub(crate) mod train;

use std::fmt::Write as _;
use std::ops::Range;

use text::{Gram, Grams, Stats};

/// The first line of every model file names its format and version.
pub(crate) const MAGIC: &str = "fluxroute-scorer";
/// The model file version this build reads and writes.
pub(crate) const VERSION: u32 = 1;
/// The heads, in file order.
pub(crate) const HEADS: [&str; 4] = ["chat", "code", "math", "knowledge"];
/// The dense features, in file order.
pub(crate) const DENSE: [&str; 15] = [
    "length",
    "depth",
    "tools",
    "fences",
    "digits",
    "numbers",
    "math",
    "questions",
    "list_items",
    "clauses",
    "sentence_words",
    "long_words",
    "code",
    "non_ascii",
    "lines",
];
/// Bucket counts a model may use: `2^bits`.
pub(crate) const BITS: Range<u32> = 6..21;
/// The most signals a model may name (a policy has at most 64 patterns).
const MAX_SIGNALS: usize = 64;

/// The model a policy names, as the classify pass uses it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scorer {
    pub seed: u64,
    pub bits: u32,
    /// The policy signals the model weighs, by name, in its column order.
    pub signals: Vec<String>,
    /// Per head: the bias, the dense weights, then the signal weights.
    pub heads: [Vec<f32>; 4],
    /// The hashed n-gram weights, `2^bits` of them.
    pub hashed: Vec<f32>,
}

/// A scorer as a compiled policy holds it: the model, the policy signal behind each of its
/// signal columns, and the SHA-256 of the file (part of the policy's fingerprint).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Compiled {
    pub model: Scorer,
    pub columns: Vec<usize>,
    pub digest: String,
}

impl Compiled {
    pub fn new(model: Scorer, columns: Vec<usize>, text: &str) -> Compiled {
        use sha2::{Digest, Sha256};
        let digest =
            Sha256::digest(text.as_bytes())
                .iter()
                .fold(String::with_capacity(64), |mut s, b| {
                    let _ = write!(s, "{b:02x}");
                    s
                });
        Compiled {
            model,
            columns,
            digest,
        }
    }
}

/// A located problem in a model file: the byte range and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub span: Range<usize>,
    pub message: String,
}

/// What the scorer reads besides the text: the message's token estimate, the conversation's
/// messages, whether tools are in play, and each model signal's value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context {
    pub tokens: u32,
    pub messages: u32,
    pub tools: bool,
}

/// What a scorer reads of one request, for training: the head, the dense features, every
/// policy signal's strength, the n-gram hashes, the last user message's tokens, and the
/// policy's weighted-sum score.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(not(feature = "simulate"), allow(dead_code))]
pub(crate) struct Inputs {
    pub head: usize,
    pub dense: [f32; DENSE.len()],
    pub signals: Vec<f32>,
    pub hashes: Vec<u64>,
    pub tokens: u32,
    pub policy_score: f32,
}

/// The bucket of an n-gram hash under a head: each head has buckets of its own (up to
/// collisions), so what an n-gram means in math does not carry over to chat.
#[inline]
pub(crate) fn bucket(hash: u64, head: usize, seed: u64, bits: u32) -> usize {
    let salted = hash ^ seed ^ (head as u64 + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    (salted.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
}

/// The most n-grams of one message the scorer weighs; later ones are left out (a message
/// read at [`text::HEAD`] + [`text::TAIL`] bytes rarely has more).
pub(crate) const MAX_GRAMS: usize = 512;

/// The n-gram hashes (32 bits, see [`text::mix`]) of a message, kept until its head is
/// known.
pub(crate) struct Kept {
    hashes: [u32; MAX_GRAMS],
    len: usize,
}

impl Kept {
    pub fn new() -> Kept {
        Kept {
            hashes: [0; MAX_GRAMS],
            len: 0,
        }
    }

    pub fn hashes(&self) -> impl Iterator<Item = u64> + '_ {
        self.hashes.iter().take(self.len).map(|&h| u64::from(h))
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

impl Grams for Kept {
    #[inline]
    fn gram(&mut self, _: Gram, hash: u64, _: (usize, usize), _: Option<(usize, usize)>) {
        if let Some(slot) = self.hashes.get_mut(self.len) {
            *slot = hash as u32;
            self.len += 1;
        }
    }
}

/// The head the structure picks: code (fences or code characters), math (numbers with math
/// symbols, or many numbers), knowledge (a short question), else chat.
pub(crate) fn head(s: &Stats) -> usize {
    if s.fences > 0 || s.code * 25 > s.bytes.max(1) {
        1
    } else if s.numbers >= 2 && s.math > 0 || s.numbers >= 4 {
        2
    } else if s.words <= 60 && s.questions > 0 {
        3
    } else {
        0
    }
}

/// The dense features, each scaled to about `[0, 1]`.
pub(crate) fn dense(s: &Stats, cx: &Context) -> [f32; DENSE.len()] {
    let f = |x: u32| x as f32;
    let cap = |x: f32| x.min(1.0);
    let bytes = f(s.bytes.max(1));
    [
        (f(cx.tokens) + 1.0).ln() / 8.0,
        (f(cx.messages.saturating_sub(1)) + 1.0).ln() / 4.0,
        if cx.tools { 1.0 } else { 0.0 },
        cap(f(s.fences) / 4.0),
        cap(f(s.digits) / bytes * 5.0),
        cap(f(s.numbers) / 20.0),
        cap(f(s.math) / 20.0),
        cap(f(s.questions) / 5.0),
        cap(f(s.list_items) / 10.0),
        cap(f(s.clauses) / 20.0),
        cap(f(s.words) / f(s.sentences.max(1)) / 40.0),
        cap(f(s.long_words) / f(s.words.max(1)) * 4.0),
        cap(f(s.code) / bytes * 10.0),
        cap(f(s.non_ascii) / bytes),
        cap(f(s.lines) / 40.0),
    ]
}

/// One term of a score, for `--explain`.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    /// What it is: `head`, `length`, `signal:math`, `word:prove`, `pair:step by`, ...
    pub feature: String,
    /// Its part of the sum before the logistic (positive: toward stronger models).
    pub contribution: f32,
}

/// Collects the n-grams with their text, for `--explain`; the context's are named
/// `context:word:...` and so on.
struct Named<'a> {
    text: &'a str,
    next: &'a str,
    prefix: &'static str,
    grams: Vec<(String, u64)>,
}

impl Grams for Named<'_> {
    fn context(&mut self) {
        (self.text, self.prefix) = (self.next, "context:");
    }

    fn gram(&mut self, kind: Gram, hash: u64, at: (usize, usize), pair: Option<(usize, usize)>) {
        if self.grams.len() >= MAX_GRAMS {
            return;
        }
        let w = hash;
        let word = |(s, e): (usize, usize)| self.text.get(s..e).unwrap_or("").to_lowercase();
        let name = match (kind, pair) {
            (Gram::Pair, Some(second)) => format!("pair:{} {}", word(at), word(second)),
            (Gram::Prefix, _) => format!("prefix:{}", word(at).chars().take(4).collect::<String>()),
            (Gram::Suffix, _) => {
                let w = word(at);
                let n = w.chars().count();
                format!(
                    "suffix:{}",
                    w.chars().skip(n.saturating_sub(4)).collect::<String>()
                )
            }
            _ => format!("word:{}", word(at)),
        };
        self.grams.push((format!("{}{name}", self.prefix), w));
    }
}

impl Scorer {
    /// The score of the last user message `text` (`(0, 1)`), with `signal(i)` the value of
    /// the model's signal `i`. Allocates nothing.
    pub fn score(
        &self,
        text: &str,
        context: &str,
        cx: &Context,
        signal: impl Fn(usize) -> f32,
    ) -> f32 {
        let mut kept = Kept::new();
        let stats = text::scan_turns(text, context, &mut kept);
        let h = head(&stats);
        let sum: f32 = kept.hashes().map(|g| self.weight(g, h)).sum();
        let z = self.linear(&stats, cx, &signal) + sum / (kept.len().max(1) as f32).sqrt();
        logistic(z)
    }

    /// The hashed weight of an n-gram under head `h`.
    #[inline]
    fn weight(&self, hash: u64, h: usize) -> f32 {
        let b = bucket(hash, h, self.seed, self.bits);
        self.hashed.get(b).copied().unwrap_or(0.0)
    }

    /// The head's part of the sum: bias, dense features and signals.
    fn linear(&self, stats: &Stats, cx: &Context, signal: &impl Fn(usize) -> f32) -> f32 {
        let Some(w) = self.heads.get(head(stats)) else {
            return 0.0;
        };
        let dense = dense(stats, cx);
        let values = std::iter::once(1.0)
            .chain(dense)
            .chain((0..self.signals.len()).map(signal));
        w.iter().zip(values).map(|(w, x)| w * x).sum()
    }

    /// The terms of the score of `text`, largest first by size: the head's bias, each dense
    /// feature and signal, and each distinct n-gram (its weights summed over occurrences,
    /// scaled as the score scales them).
    pub fn explain(
        &self,
        text: &str,
        context: &str,
        cx: &Context,
        signal: impl Fn(usize) -> f32,
    ) -> Vec<Term> {
        let mut named = Named {
            text,
            next: context,
            prefix: "",
            grams: Vec::new(),
        };
        let stats = text::scan_turns(text, context, &mut named);
        let h = head(&stats);
        let w = self.heads.get(h).cloned().unwrap_or_default();
        let dense = dense(&stats, cx);
        let mut terms: Vec<Term> = Vec::new();
        let mut add = |feature: String, contribution: f32| match terms
            .iter_mut()
            .find(|t| t.feature == feature)
        {
            Some(t) => t.contribution += contribution,
            None => terms.push(Term {
                feature,
                contribution,
            }),
        };
        add(
            format!("head:{}", HEADS.get(h).unwrap_or(&"")),
            w.first().copied().unwrap_or(0.0),
        );
        for (i, (name, x)) in DENSE.iter().zip(dense).enumerate() {
            add((*name).to_owned(), w.get(1 + i).copied().unwrap_or(0.0) * x);
        }
        for (i, name) in self.signals.iter().enumerate() {
            let weight = w.get(1 + DENSE.len() + i).copied().unwrap_or(0.0);
            add(format!("signal:{name}"), weight * signal(i));
        }
        let scale = (named.grams.len().max(1) as f32).sqrt();
        for (name, hash) in named.grams {
            add(name, self.weight(hash, h) / scale);
        }
        terms.retain(|t| t.contribution != 0.0);
        terms.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
        terms
    }

    /// Parses and validates a model file. Every problem is reported, located in `text`.
    pub fn parse(text: &str) -> Result<Scorer, Vec<Problem>> {
        Parser::default().run(text)
    }

    /// The model as a file [`Scorer::parse`] reads back to the same model. Weights are
    /// written with up to seven significant digits (`f32`'s shortest round trip); zero
    /// hashed weights are left out.
    #[cfg_attr(not(any(test, feature = "simulate")), allow(dead_code))]
    pub fn to_text(&self, comment: &str) -> String {
        let mut out = format!("{MAGIC} {VERSION}\n");
        for line in comment.lines() {
            let _ = writeln!(out, "# {line}");
        }
        let _ = writeln!(out, "seed {}", self.seed);
        let _ = writeln!(out, "bits {}", self.bits);
        let _ = writeln!(out, "dense {}", DENSE.join(" "));
        let _ = writeln!(out, "signals {}", self.signals.join(" "));
        for (name, w) in HEADS.iter().zip(&self.heads) {
            let _ = write!(out, "head {name}");
            for x in w {
                let _ = write!(out, " {x}");
            }
            out.push('\n');
        }
        for (b, w) in self.hashed.iter().enumerate() {
            if *w != 0.0 {
                let _ = writeln!(out, "hashed {b} {w}");
            }
        }
        out
    }
}

/// The logistic function.
pub(crate) fn logistic(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// Reads a model file line by line, keeping every problem.
#[derive(Default)]
struct Parser {
    problems: Vec<Problem>,
    seed: Option<u64>,
    bits: Option<u32>,
    dense: bool,
    signals: Option<Vec<String>>,
    heads: [Option<Vec<f32>>; 4],
    hashed: Vec<(usize, Range<usize>, f32)>,
}

/// The words of a line with their byte ranges in the file.
fn words(line: &str, at: usize) -> impl Iterator<Item = (Range<usize>, &str)> {
    let base = line.as_ptr() as usize;
    line.split_ascii_whitespace().map(move |w| {
        let start = at + (w.as_ptr() as usize - base);
        (start..start + w.len(), w)
    })
}

impl Parser {
    fn problem(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.problems.push(Problem {
            span,
            message: message.into(),
        });
    }

    fn run(mut self, text: &str) -> Result<Scorer, Vec<Problem>> {
        let mut at = 0;
        let mut header = false;
        for line in text.split_inclusive('\n') {
            let start = at;
            at += line.len();
            let body = line.split('#').next().unwrap_or("");
            let mut w = words(body, start);
            let Some((key_span, key)) = w.next() else {
                continue;
            };
            let rest: Vec<(Range<usize>, &str)> = w.collect();
            if !header {
                header = true;
                self.header(key_span, key, &rest);
                if !self.problems.is_empty() {
                    // Another format or version: its lines mean something else.
                    return Err(self.problems);
                }
                continue;
            }
            self.line(key_span, key, &rest);
        }
        if !header {
            self.problem(
                0..0,
                format!("the file is empty; a model file starts with `{MAGIC} {VERSION}`"),
            );
            return Err(self.problems);
        }
        self.finish(at)
    }

    fn header(&mut self, span: Range<usize>, key: &str, rest: &[(Range<usize>, &str)]) {
        if key != MAGIC {
            self.problem(
                span,
                format!("not a scorer model: the file must start with `{MAGIC} {VERSION}`"),
            );
            return;
        }
        match rest {
            [(s, v)] => match v.parse::<u32>() {
                Ok(VERSION) => {}
                Ok(n) => self.problem(
                    s.clone(),
                    format!("model file version {n}; this build reads version {VERSION}"),
                ),
                Err(_) => self.problem(s.clone(), format!("`{v}` is not a version number")),
            },
            _ => self.problem(span, format!("the first line must be `{MAGIC} {VERSION}`")),
        }
    }

    fn line(&mut self, span: Range<usize>, key: &str, rest: &[(Range<usize>, &str)]) {
        let end = rest.last().map_or(span.end, |(s, _)| s.end);
        let whole = span.start..end;
        match key {
            "seed" => match rest {
                [(s, v)] => match v.parse::<u64>() {
                    Ok(n) => self.seed = Some(n),
                    Err(_) => self.problem(
                        s.clone(),
                        format!("seed `{v}` is not a whole number below 2^64"),
                    ),
                },
                _ => self.problem(whole, "`seed` takes one number"),
            },
            "bits" => match rest {
                [(s, v)] => match v.parse::<u32>() {
                    Ok(n) if BITS.contains(&n) => self.bits = Some(n),
                    _ => self.problem(
                        s.clone(),
                        format!(
                            "bits `{v}` must be between {} and {}",
                            BITS.start,
                            BITS.end - 1
                        ),
                    ),
                },
                _ => self.problem(whole, "`bits` takes one number"),
            },
            "dense" => {
                let names: Vec<&str> = rest.iter().map(|(_, v)| *v).collect();
                if names != DENSE {
                    self.problem(
                        whole,
                        format!(
                            "the dense features must be `{}`, in that order",
                            DENSE.join(" ")
                        ),
                    );
                }
                self.dense = true;
            }
            "signals" => {
                if rest.len() > MAX_SIGNALS {
                    self.problem(
                        whole,
                        format!("{} signals; at most {MAX_SIGNALS}", rest.len()),
                    );
                }
                let mut names: Vec<String> = Vec::new();
                for (s, v) in rest {
                    if names.iter().any(|n| n == v) {
                        self.problem(s.clone(), format!("signal `{v}` is named twice"));
                    }
                    names.push((*v).to_owned());
                }
                self.signals = Some(names);
            }
            "head" => self.head(whole, rest),
            "hashed" => match rest {
                [(b, bv), (w, wv)] => {
                    let weight = finite(wv);
                    match (bv.parse::<usize>(), weight) {
                        (Ok(bucket), Some(weight)) => self.hashed.push((bucket, b.clone(), weight)),
                        (Err(_), _) => {
                            self.problem(b.clone(), format!("bucket `{bv}` is not a whole number"))
                        }
                        (_, None) => {
                            self.problem(w.clone(), format!("weight `{wv}` is not a finite number"))
                        }
                    }
                }
                _ => self.problem(whole, "`hashed` takes a bucket and a weight"),
            },
            _ => self.problem(
                span,
                format!(
                    "unknown entry `{key}`; expected seed, bits, dense, signals, head or hashed"
                ),
            ),
        }
    }

    fn head(&mut self, whole: Range<usize>, rest: &[(Range<usize>, &str)]) {
        let Some(((s, name), values)) = rest.split_first() else {
            self.problem(whole, "`head` takes a name and its weights");
            return;
        };
        let Some(i) = HEADS.iter().position(|h| h == name) else {
            self.problem(
                s.clone(),
                format!("unknown head `{name}`; expected {}", HEADS.join(", ")),
            );
            return;
        };
        let mut weights = Vec::with_capacity(values.len());
        for (s, v) in values {
            match finite(v) {
                Some(x) => weights.push(x),
                None => self.problem(s.clone(), format!("weight `{v}` is not a finite number")),
            }
        }
        match self.heads.get_mut(i) {
            Some(slot @ None) => *slot = Some(weights),
            _ => self.problem(s.clone(), format!("head `{name}` is given twice")),
        }
    }

    fn finish(mut self, end: usize) -> Result<Scorer, Vec<Problem>> {
        let eof = end..end;
        if self.seed.is_none() {
            self.problem(eof.clone(), "the model has no `seed` line");
        }
        if self.bits.is_none() {
            self.problem(eof.clone(), "the model has no `bits` line");
        }
        if !self.dense {
            self.problem(eof.clone(), "the model has no `dense` line");
        }
        let signals = self.signals.take().unwrap_or_default();
        let columns = 1 + DENSE.len() + signals.len();
        let mut heads: [Vec<f32>; 4] = Default::default();
        for (i, name) in HEADS.iter().enumerate() {
            match self.heads.get_mut(i).and_then(Option::take) {
                Some(w) if w.len() == columns => {
                    if let Some(slot) = heads.get_mut(i) {
                        *slot = w;
                    }
                }
                Some(w) => self.problem(
                    eof.clone(),
                    format!("head `{name}` has {} weights; a bias, {} dense and {} signal weights make {columns}", w.len(), DENSE.len(), signals.len()),
                ),
                None => self.problem(eof.clone(), format!("the model has no `head {name}` line (is the file cut short?)")),
            }
        }
        let bits = self.bits.unwrap_or(BITS.start);
        let mut hashed = vec![0.0; 1 << bits];
        let mut seen = vec![false; 1 << bits];
        for (b, span, w) in std::mem::take(&mut self.hashed) {
            match (hashed.get_mut(b), seen.get_mut(b)) {
                (Some(slot), Some(once)) if !*once => {
                    *slot = w;
                    *once = true;
                }
                (Some(_), _) => self.problem(span, format!("bucket {b} is given twice")),
                _ => self.problem(span, format!("bucket {b} is out of range for {bits} bits")),
            }
        }
        if !self.problems.is_empty() {
            return Err(self.problems);
        }
        Ok(Scorer {
            seed: self.seed.unwrap_or(0),
            bits,
            signals,
            heads,
            hashed,
        })
    }
}

fn finite(v: &str) -> Option<f32> {
    v.parse::<f32>().ok().filter(|x| x.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Scorer {
        let columns = 1 + DENSE.len() + 2;
        let mut hashed = vec![0.0; 1 << 8];
        hashed[3] = 0.25;
        hashed[200] = -1.5;
        Scorer {
            seed: 42,
            bits: 8,
            signals: vec!["math".into(), "code".into()],
            heads: std::array::from_fn(|h| {
                (0..columns)
                    .map(|i| (h * 100 + i + 1) as f32 / 64.0)
                    .collect()
            }),
            hashed,
        }
    }

    #[test]
    fn a_model_reads_back_from_its_text() {
        let m = model();
        let text = m.to_text("a test model\ntwo lines");
        assert_eq!(Scorer::parse(&text).unwrap(), m);
    }

    fn problems(text: &str) -> Vec<String> {
        Scorer::parse(text)
            .unwrap_err()
            .into_iter()
            .map(|p| p.message)
            .collect()
    }

    #[test]
    fn a_broken_file_is_located_problems() {
        let good = model().to_text("");
        assert!(problems("")[0].contains("empty"));
        assert!(problems("{\"not\": \"a model\"}")[0].contains("not a scorer model"));
        assert!(
            problems(&good.replace("fluxroute-scorer 1", "fluxroute-scorer 2"))[0]
                .contains("version 2")
        );
        // Cut short: the last heads are missing.
        let cut = &good[..good.find("head code").unwrap()];
        let p = problems(cut);
        assert!(p.iter().any(|m| m.contains("no `head code`")), "{p:?}");
        let bad = good.replace("hashed 3 0.25", "hashed 3 nan\nhashed 999 1\nhashed 200 2");
        let p = Scorer::parse(&bad).unwrap_err();
        let messages: Vec<&str> = p.iter().map(|p| p.message.as_str()).collect();
        assert!(
            messages.iter().any(|m| m.contains("not a finite")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("out of range")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("given twice")),
            "{messages:?}"
        );
        // Located: the span covers the offending word.
        let nan = p.iter().find(|p| p.message.contains("finite")).unwrap();
        assert_eq!(&bad[nan.span.clone()], "nan");
        let short = good.replace("head chat 0.015625 ", "head chat ");
        assert!(problems(&short).iter().any(|m| m.contains("weights")));
    }

    proptest::proptest! {
        /// A model file cut anywhere or with any text spliced in parses or gives problems
        /// located inside it, never a panic.
        #[test]
        fn a_damaged_file_is_problems_inside_it(
            cut in 0usize..4000,
            at in 0usize..4000,
            splice in "[ -~\n\t]{0,40}|\\PC{0,8}",
        ) {
            let good = model().to_text("comment");
            let mut text: String = good.chars().take(cut).collect();
            let at = text.char_indices().map(|(i, _)| i).nth(at).unwrap_or(text.len());
            text.insert_str(at, &splice);
            if let Err(problems) = Scorer::parse(&text) {
                proptest::prop_assert!(!problems.is_empty());
                for p in problems {
                    proptest::prop_assert!(text.get(p.span.clone()).is_some(), "{:?} in {} bytes", p.span, text.len());
                }
            }
        }
    }

    #[test]
    fn scores_are_logistic_and_explained() {
        let m = model();
        let cx = Context {
            tokens: 40,
            messages: 1,
            tools: false,
        };
        let text = "Prove that the square root of 2 is irrational, step by step.";
        let signal = |i| if i == 0 { 1.0 } else { 0.0 };
        let s = m.score(text, "", &cx, signal);
        assert!(s > 0.0 && s < 1.0);
        let terms = m.explain(text, "", &cx, signal);
        let z: f32 = terms.iter().map(|t| t.contribution).sum();
        assert!((logistic(z) - s).abs() < 1e-4, "{} vs {s}", logistic(z));
        assert!(terms.iter().any(|t| t.feature == "signal:math"));
        assert!(terms.iter().any(|t| t.feature.starts_with("head:")));
        // A follow-up is read with the turn before it, whose n-grams the terms name.
        let mut m = m;
        m.hashed.iter_mut().for_each(|w| *w += 0.01);
        let follow = "And the cube root?";
        let alone = m.score(follow, "", &cx, signal);
        let after = m.score(follow, text, &cx, signal);
        assert_ne!(alone, after);
        let terms = m.explain(follow, text, &cx, signal);
        let z: f32 = terms.iter().map(|t| t.contribution).sum();
        assert!(
            (logistic(z) - after).abs() < 1e-4,
            "{} vs {after}",
            logistic(z)
        );
        assert!(
            terms.iter().any(|t| t.feature.starts_with("context:word:")),
            "{terms:?}"
        );
    }
}
