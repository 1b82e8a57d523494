//! Policy diagnostics: what is wrong, where (file, line, column, key path), how bad.

use std::fmt;
use std::ops::Range;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
        }
    }
}

/// One problem found in a policy, located by file, line, column and TOML key path.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// The text of a policy file, for turning byte spans into lines and columns.
pub(crate) struct Source<'a> {
    pub origin: &'a str,
    pub text: &'a str,
}

impl Source<'_> {
    /// The 1-based line and column of byte offset `at`.
    pub fn position(&self, at: usize) -> (usize, usize) {
        let at = at.min(self.text.len());
        let before = self.text.get(..at).unwrap_or(self.text);
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        (line, column)
    }

    pub fn diagnostic(
        &self,
        severity: Severity,
        kind: DiagnosticKind,
        span: Option<Range<usize>>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Diagnostic {
        let (line, column) = span.map_or((0, 0), |s| self.position(s.start));
        Diagnostic {
            severity,
            kind,
            message: message.into(),
            origin: self.origin.to_owned(),
            line,
            column,
            path: path.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let src = Source {
            origin: "p.toml",
            text: "a = 1\nbé = 2\n",
        };
        assert_eq!(src.position(0), (1, 1));
        assert_eq!(src.position(6), (2, 1));
        // `=` after the two-byte `é` is the fourth character of line 2.
        assert_eq!(src.position(10), (2, 4));
        assert_eq!(src.position(999), (3, 1));
    }
}
