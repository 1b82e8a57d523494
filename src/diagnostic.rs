//! Policy diagnostics: what is wrong, where (file, line, column, key path), how bad.

use std::fmt;
use std::ops::Range;

use crate::clip;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Severity {
    /// The policy still compiles; `check --deny-warnings` rejects it.
    Warning,
    /// The policy is rejected.
    Error,
}

impl Severity {
    /// `"warning"` or `"error"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// The stable kind of a policy diagnostic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiagnosticKind {
    /// The file could not be read.
    Io,
    /// Not valid TOML, or not the policy schema (unknown field, wrong type, missing field).
    Syntax,
    /// A model id that is not in the catalog.
    UnknownModel,
    /// A tier name that is not defined.
    UnknownTier,
    /// A name used by an allow-list that is not a routable name.
    UnknownName,
    /// The same id or name defined twice.
    Duplicate,
    /// An alias name of the wrong form or colliding with another name.
    InvalidName,
    /// A catalog model with no `flux-pinned-*` alias.
    MissingPinnedAlias,
    /// A pattern that does not compile.
    InvalidRegex,
    /// A tier with no models.
    EmptyTier,
    /// Classifier weights that do not sum to 1.
    Weights,
    /// A value out of its range (zero context window, negative price, ...).
    InvalidValue,
    /// A rule with no action or with more than one.
    RuleAction,
    /// A rule that can never match or never decide.
    UnreachableRule,
    /// A pattern that is valid but slow on the hot path (a Unicode word boundary, a large
    /// bounded repetition).
    SlowPattern,
    /// Tenants are declared, but undeclared ones are allowed without the policy saying so.
    OpenTenants,
    /// A policy without `[classifier]`, which scores nearly every request `simple`.
    MissingClassifier,
    /// A price that looks per token (or per thousand) rather than per million tokens.
    PriceUnit,
    /// A tier whose cheapest model costs more than the most expensive of a stronger tier.
    TierPrices,
    /// A model id with a provider prefix (`openai/gpt-4o`) beside the same id without it.
    ProviderPrefix,
    /// A classifier's scorer model file that is not valid (format, version, weights), or that
    /// weighs a signal the policy does not define.
    InvalidScorer,
}

impl DiagnosticKind {
    /// The stable code string.
    pub const fn as_str(self) -> &'static str {
        match self {
            DiagnosticKind::Io => "io",
            DiagnosticKind::Syntax => "syntax",
            DiagnosticKind::UnknownModel => "unknown_model",
            DiagnosticKind::UnknownTier => "unknown_tier",
            DiagnosticKind::UnknownName => "unknown_name",
            DiagnosticKind::Duplicate => "duplicate",
            DiagnosticKind::InvalidName => "invalid_name",
            DiagnosticKind::MissingPinnedAlias => "missing_pinned_alias",
            DiagnosticKind::InvalidRegex => "invalid_regex",
            DiagnosticKind::EmptyTier => "empty_tier",
            DiagnosticKind::Weights => "weights",
            DiagnosticKind::InvalidValue => "invalid_value",
            DiagnosticKind::RuleAction => "rule_action",
            DiagnosticKind::UnreachableRule => "unreachable_rule",
            DiagnosticKind::SlowPattern => "slow_pattern",
            DiagnosticKind::OpenTenants => "open_tenants",
            DiagnosticKind::MissingClassifier => "missing_classifier",
            DiagnosticKind::PriceUnit => "price_unit",
            DiagnosticKind::TierPrices => "tier_prices",
            DiagnosticKind::ProviderPrefix => "provider_prefix",
            DiagnosticKind::InvalidScorer => "invalid_scorer",
        }
    }
}

/// One problem found in a policy, located by file, line, column and TOML key path.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The stable kind.
    pub kind: DiagnosticKind,
    /// What is wrong, lowercase, no trailing punctuation.
    pub message: String,
    /// The file (or `<embedded>`).
    pub origin: String,
    /// 1-based line; 0 when the problem has no location in the file.
    pub line: usize,
    /// 1-based column in characters; 0 when the problem has no location.
    pub column: usize,
    /// The TOML key path, e.g. `models[3].tier`.
    pub path: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}[{}]: {}",
            self.origin,
            self.line,
            self.column,
            self.severity.as_str(),
            self.kind.as_str(),
            self.message
        )?;
        if !self.path.is_empty() {
            write!(f, " (at `{}`)", self.path)?;
        }
        Ok(())
    }
}

/// The text of a policy and the files it includes, for turning byte spans into files, lines
/// and columns. Each file's spans are offset past the ones before it, so one number locates
/// a byte in any of them.
pub(crate) struct Source {
    segments: Vec<Segment>,
}

struct Segment {
    origin: String,
    text: String,
    start: usize,
    /// The offset of each line feed, so that a position costs a binary search however many
    /// diagnostics a large file has.
    newlines: Vec<usize>,
}

impl Segment {
    fn new(origin: &str, text: &str, start: usize) -> Self {
        Segment {
            origin: origin.to_owned(),
            text: text.to_owned(),
            start,
            newlines: memchr::memchr_iter(b'\n', text.as_bytes()).collect(),
        }
    }
}

impl Source {
    pub fn new(origin: &str, text: &str) -> Self {
        Source {
            segments: vec![Segment::new(origin, text, 0)],
        }
    }

    /// The main file's text.
    pub fn text(&self) -> &str {
        self.segments.first().map_or("", |s| s.text.as_str())
    }

    /// The main file's name.
    pub fn origin(&self) -> &str {
        self.segments.first().map_or("", |s| s.origin.as_str())
    }

    /// Adds an included file; returns the offset its spans must be shifted by.
    pub fn include(&mut self, origin: &str, text: &str) -> usize {
        let start = self
            .segments
            .last()
            .map_or(0, |s| s.start + s.text.len() + 1);
        self.segments.push(Segment::new(origin, text, start));
        start
    }

    /// The file, 1-based line and 1-based column (in characters) of byte offset `at`.
    pub fn position(&self, at: usize) -> (&str, usize, usize) {
        let Some(seg) = self
            .segments
            .iter()
            .rev()
            .find(|s| s.start <= at)
            .or(self.segments.first())
        else {
            return ("", 0, 0);
        };
        let text = seg.text.as_str();
        let at = (at - seg.start.min(at)).min(text.len());
        // Line feeds before `at`: the line is one more, and the last of them starts it.
        let before = seg.newlines.partition_point(|&n| n < at);
        let line_start = before
            .checked_sub(1)
            .and_then(|i| seg.newlines.get(i))
            .map_or(0, |&n| n + 1);
        // Characters are the bytes that do not continue one.
        let column = text
            .as_bytes()
            .get(line_start..at)
            .map_or(0, |b| b.iter().filter(|&&b| b & 0xC0 != 0x80).count())
            + 1;
        (&seg.origin, before + 1, column)
    }

    pub fn diagnostic(
        &self,
        severity: Severity,
        kind: DiagnosticKind,
        span: Option<Range<usize>>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Diagnostic {
        let (origin, line, column) = match span {
            Some(s) => self.position(s.start),
            None => (self.origin(), 0, 0),
        };
        // Names in a policy may be of any length: a diagnostic quotes a bounded part of them.
        let bounded = |s: String| match clip::clip(&s, clip::MESSAGE) {
            std::borrow::Cow::Borrowed(_) => s,
            std::borrow::Cow::Owned(cut) => cut,
        };
        Diagnostic {
            severity,
            kind,
            message: bounded(message.into()),
            origin: origin.to_owned(),
            line,
            column,
            path: bounded(path.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let mut src = Source::new("p.toml", "a = 1\nbé = 2\n");
        assert_eq!(src.position(0), ("p.toml", 1, 1));
        // A line feed is the last character of its line.
        assert_eq!(src.position(5), ("p.toml", 1, 6));
        assert_eq!(src.position(6), ("p.toml", 2, 1));
        // `=` after the two-byte `é` is the fourth character of line 2.
        assert_eq!(src.position(10), ("p.toml", 2, 4));
        let at = src.include("c.toml", "x = 1\ny = 2");
        assert_eq!(at, 15);
        assert_eq!(src.position(at + 6), ("c.toml", 2, 1));
        assert_eq!(src.position(14), ("p.toml", 3, 1));
    }
}
