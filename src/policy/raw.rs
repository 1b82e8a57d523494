//! The policy file as written: serde types that mirror the TOML, with spans for diagnostics.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use crate::capability::Capability;
use crate::diagnostic::{Diagnostic, DiagnosticKind as K, Severity, Source};
use crate::features::Complexity;

/// A name with the span where it was written.
pub(crate) type Name = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub policy: RawMeta,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub models: Vec<RawModel>,
    pub tiers: Vec<RawTier>,
    #[serde(default)]
    pub pinned: BTreeMap<Name, Name>,
    pub auto: RawAuto,
    #[serde(default)]
    pub redirects: BTreeMap<Name, Name>,
    #[serde(default)]
    pub classifier: Option<RawClassifier>,
    #[serde(default)]
    pub rules: Vec<RawRule>,
    #[serde(default)]
    pub tenants: BTreeMap<Name, RawTenant>,
    /// The classifier's scorer file, read by [`parse_policy`].
    #[serde(skip)]
    pub scorer: Option<ScorerFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMeta {
    pub name: Name,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub passthrough: bool,
    #[serde(default)]
    pub max_fallbacks: Option<Spanned<u64>>,
    /// A catalog file (`[[models]]` and `[pinned]`), relative to this file's directory.
    #[serde(default)]
    pub catalog: Option<Name>,
    /// What requests from tenants the policy does not declare (or with no tenant) may do;
    /// unset means `allow`, with a warning when tenants are declared.
    #[serde(default)]
    pub unknown_tenants: Option<Spanned<UnknownTenants>>,
}

/// `[policy] unknown_tenants`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum UnknownTenants {
    /// Unrestricted, as a tenant with no lists.
    Allow,
    /// Rejected with `model_not_allowed`.
    Deny,
}

/// An included catalog: models and their pinned aliases, shared by several policies.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCatalog {
    #[serde(default)]
    pub models: Vec<RawModel>,
    #[serde(default)]
    pub pinned: BTreeMap<Name, Name>,
}

/// Moves a value's span by `by` bytes (into the included file's place in the `Source`).
fn shift<T>(v: Spanned<T>, by: usize) -> Spanned<T> {
    let span = v.span();
    Spanned::new(span.start + by..span.end + by, v.into_inner())
}

impl RawCatalog {
    /// The catalog with every span moved by `by` bytes.
    pub fn shifted(self, by: usize) -> Self {
        RawCatalog {
            models: self
                .models
                .into_iter()
                .map(|m| RawModel {
                    id: shift(m.id, by),
                    provider: m.provider,
                    tier: shift(m.tier, by),
                    context_window: shift(m.context_window, by),
                    max_output_tokens: shift(m.max_output_tokens, by),
                    input_per_mtok: shift(m.input_per_mtok, by),
                    output_per_mtok: shift(m.output_per_mtok, by),
                    capabilities: m.capabilities,
                    meta: m.meta.map(|meta| {
                        let span = meta.span();
                        let entries = meta.into_inner().into_iter();
                        let entries = entries.map(|(k, v)| (k, shift(v, by))).collect();
                        shift(Spanned::new(span, entries), by)
                    }),
                })
                .collect(),
            pinned: self
                .pinned
                .into_iter()
                .map(|(k, v)| (shift(k, by), shift(v, by)))
                .collect(),
        }
    }
}

/// Bytes of a file's inline data per token when a policy does not say: text and text-heavy
/// PDFs run at about four (providers add a page image to each PDF page's text).
pub(crate) const DEFAULT_FILE_BYTES_PER_TOKEN: u64 = 4;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawLimits {
    pub max_body_bytes: Spanned<u64>,
    pub max_messages: Spanned<u64>,
    pub output_reserve: Spanned<u64>,
    pub expected_output_tokens: Spanned<u64>,
    pub context_margin: Spanned<f64>,
    pub image_tokens: Spanned<u64>,
    pub audio_tokens: Spanned<u64>,
    pub file_tokens: Spanned<u64>,
    pub file_bytes_per_token: Spanned<u64>,
}

impl Default for RawLimits {
    fn default() -> Self {
        let at = |v| Spanned::new(0..0, v);
        RawLimits {
            max_body_bytes: at(8 << 20),
            max_messages: at(2048),
            output_reserve: at(4096),
            expected_output_tokens: at(512),
            context_margin: Spanned::new(0..0, 0.05),
            image_tokens: at(765),
            audio_tokens: at(1000),
            file_tokens: at(2000),
            file_bytes_per_token: at(DEFAULT_FILE_BYTES_PER_TOKEN),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModel {
    pub id: Name,
    pub provider: String,
    pub tier: Name,
    pub context_window: Spanned<u64>,
    pub max_output_tokens: Spanned<u64>,
    pub input_per_mtok: Spanned<f64>,
    pub output_per_mtok: Spanned<f64>,
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    /// Free-form strings for the gateway (endpoint, deployment, region, ...).
    #[serde(default)]
    pub meta: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTier {
    pub name: Name,
    pub alias: Name,
    #[serde(default)]
    pub description: String,
}

/// `flux-auto`'s map from complexity class to tier.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuto {
    pub simple: Name,
    pub standard: Name,
    pub complex: Name,
    pub reasoning: Name,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClassifier {
    pub thresholds: RawThresholds,
    pub length: RawSaturating,
    pub depth: RawSaturating,
    pub tools: RawWeight,
    #[serde(default)]
    pub signals: Vec<RawSignal>,
    /// A trained scorer's model file, relative to the policy's directory, or
    /// [`BUILTIN_SCORER`].
    #[serde(default)]
    pub model: Option<Name>,
}

/// The name that stands for the scorer built into fluxroute (`policies/default.scorer`).
pub(crate) const BUILTIN_SCORER: &str = "builtin:default";

/// The text of the built-in scorer.
pub(crate) const EMBEDDED_SCORER: &str = include_str!("../../policies/default.scorer");

/// A scorer model file as read: its text and where it starts among the sources.
#[derive(Debug)]
pub(crate) struct ScorerFile {
    pub text: String,
    pub offset: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawThresholds {
    pub standard: Spanned<f64>,
    pub complex: Spanned<f64>,
    pub reasoning: Spanned<f64>,
}

/// A built-in feature that grows linearly up to `saturation`, then stays at 1.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSaturating {
    pub weight: Spanned<f64>,
    pub saturation: Spanned<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWeight {
    pub weight: Spanned<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSignal {
    pub name: Name,
    pub pattern: Name,
    pub weight: Spanned<f64>,
    #[serde(default)]
    pub min_class: Option<Complexity>,
    /// Count the matches: the signal adds `weight × min(matches / saturation, 1)`.
    #[serde(default)]
    pub saturation: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub name: Name,
    #[serde(default)]
    pub aliases: Option<Vec<Name>>,
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    #[serde(default)]
    pub min_prompt_tokens: Option<Spanned<u64>>,
    #[serde(default)]
    pub max_prompt_tokens: Option<Spanned<u64>>,
    #[serde(default)]
    pub complexity: Vec<Complexity>,
    #[serde(default)]
    pub min_score: Option<Spanned<f64>>,
    #[serde(default)]
    pub max_score: Option<Spanned<f64>>,
    #[serde(default)]
    pub pattern: Option<Name>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub tenants: Vec<Name>,
    #[serde(default)]
    pub tier: Option<Name>,
    #[serde(default)]
    pub models: Option<Spanned<Vec<Name>>>,
    #[serde(default)]
    pub split: Option<Spanned<Vec<RawSplit>>>,
    /// When the rule matches, only its models may serve or be fallbacks.
    #[serde(default)]
    pub restrict: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSplit {
    pub model: Name,
    pub weight: Spanned<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTenant {
    #[serde(default)]
    pub models: Option<Vec<Name>>,
    #[serde(default)]
    pub aliases: Option<Vec<Name>>,
}

/// Parses a policy and the catalog it names, if any, whose models are put before the policy's
/// own. Returns the raw policy and the errors the include found (an alias both files define;
/// the policy's own is kept); a file that cannot be read or parsed is the one error.
pub(crate) fn parse_policy(
    src: &mut Source,
    catalog_anywhere: bool,
) -> Result<(RawPolicy, Vec<Diagnostic>), Diagnostic> {
    if src.text().len() > MAX_FILE_BYTES {
        let msg = format!(
            "the policy is {} bytes, above the limit of {MAX_FILE_BYTES}",
            src.text().len()
        );
        return Err(src.diagnostic(Severity::Error, K::Io, None, "", msg));
    }
    let mut raw: RawPolicy = parse(src, src.text(), 0)?;
    let mut found = Vec::new();
    if let Some(name) = raw.policy.catalog.clone() {
        found = include_catalog(src, &mut raw, &name, catalog_anywhere)?;
    }
    if let Some(name) = raw.classifier.as_ref().and_then(|c| c.model.clone()) {
        raw.scorer = Some(read_scorer(src, &name, catalog_anywhere)?);
    }
    Ok((raw, found))
}

/// The largest policy or catalog file read, in bytes.
pub(crate) const MAX_FILE_BYTES: usize = 16 << 20;

/// Reads a policy or catalog file: a regular file (not a device such as `/dev/zero`, nor a FIFO
/// that would block) of at most [`MAX_FILE_BYTES`], read with that bound whatever its size
/// claims.
pub(crate) fn read_bounded(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::{Error, Read};
    let not_regular = || Error::other("not a regular file");
    // Checked before opening: opening a FIFO blocks until a writer comes.
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(not_regular());
    }
    let mut text = String::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_string(&mut text)?;
    if text.len() > MAX_FILE_BYTES {
        return Err(Error::other(format!(
            "larger than the limit of {MAX_FILE_BYTES} bytes"
        )));
    }
    Ok(text)
}

/// Parses TOML text whose spans start at `offset` in `src`; a failure is one `syntax` diagnostic.
fn parse<T: serde::de::DeserializeOwned>(
    src: &Source,
    text: &str,
    offset: usize,
) -> Result<T, Diagnostic> {
    toml::from_str(text).map_err(|e| {
        let span = e.span();
        let path = span
            .as_ref()
            .map(|s| key_path_at(text, s.start))
            .unwrap_or_default();
        let message = e.message().trim_end_matches(['.', '\n']).to_owned();
        let span = span.map(|s| s.start + offset..s.end + offset);
        src.diagnostic(Severity::Error, K::Syntax, span, path, message)
    })
}

/// Reads the scorer model file a classifier names: the built-in one, or a file relative to the
/// policy's directory (confined to it as a catalog is).
fn read_scorer(src: &mut Source, name: &Name, anywhere: bool) -> Result<ScorerFile, Diagnostic> {
    let (origin, text) = if name.get_ref() == BUILTIN_SCORER {
        (BUILTIN_SCORER.to_owned(), EMBEDDED_SCORER.to_owned())
    } else {
        let path = confined(src, name, anywhere, "classifier.model", "scorer model")?;
        let text = read_bounded(&path).map_err(|e| {
            let msg = format!("cannot read scorer model {}: {e}", path.display());
            src.diagnostic(
                Severity::Error,
                K::Io,
                span_of(name),
                "classifier.model",
                msg,
            )
        })?;
        (path.display().to_string(), text)
    };
    let offset = src.include(&origin, &text);
    Ok(ScorerFile { text, offset })
}

/// The path of a file a policy names, relative to its directory; outside it only when
/// `anywhere` allows.
fn confined(
    src: &Source,
    name: &Name,
    anywhere: bool,
    key: &str,
    what: &str,
) -> Result<std::path::PathBuf, Diagnostic> {
    let dir = std::path::Path::new(src.origin())
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let path = dir.join(name.get_ref());
    // The file must lie inside the policy's directory (after links are followed), so a
    // policy cannot make the engine read, and quote, any file the process can read.
    if !anywhere {
        let inside = match (path.canonicalize(), dir.canonicalize()) {
            (Ok(file), Ok(dir)) => file.starts_with(dir),
            _ => true, // Reading it reports what is wrong.
        };
        if !inside {
            let msg = format!(
                "{what} `{}` lies outside the policy's directory; allow that with \
                 `--catalog-anywhere` (CLI) or `LoadOptions::catalog_anywhere`",
                name.get_ref()
            );
            return Err(src.diagnostic(Severity::Error, K::Io, span_of(name), key, msg));
        }
    }
    Ok(path)
}

/// Reads the catalog a policy names (relative to the policy's directory) and puts its models
/// before the policy's own and its pinned aliases beside them. Returns the aliases both define
/// (the policy's own is kept); an unreadable or unparsable catalog is the error.
fn include_catalog(
    src: &mut Source,
    raw: &mut RawPolicy,
    name: &Name,
    anywhere: bool,
) -> Result<Vec<Diagnostic>, Diagnostic> {
    let path = confined(src, name, anywhere, "policy.catalog", "catalog")?;
    let io_error = |src: &Source, msg: String| {
        src.diagnostic(Severity::Error, K::Io, span_of(name), "policy.catalog", msg)
    };
    let text = read_bounded(&path)
        .map_err(|e| io_error(src, format!("cannot read catalog {}: {e}", path.display())))?;
    let offset = src.include(&path.display().to_string(), &text);
    let catalog: RawCatalog = parse(src, &text, offset)?;
    let catalog = catalog.shifted(offset);
    let own = std::mem::take(&mut raw.models);
    raw.models = catalog.models.into_iter().chain(own).collect();
    let mut duplicates = Vec::new();
    for (alias, model) in catalog.pinned {
        if let Some((existing, _)) = raw.pinned.get_key_value(&alias) {
            let msg = format!(
                "pinned alias `{}` is defined in the policy and in its catalog",
                alias.get_ref()
            );
            let path = format!("pinned.\"{}\"", alias.get_ref());
            duplicates.push(src.diagnostic(
                Severity::Error,
                K::Duplicate,
                span_of(existing),
                path,
                msg,
            ));
            continue;
        }
        raw.pinned.insert(alias, model);
    }
    Ok(duplicates)
}

/// Best-effort key path of a byte offset: the enclosing `[table]` plus the line's key.
fn key_path_at(text: &str, at: usize) -> String {
    let before = text.get(..at.min(text.len())).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text
        .get(line_start..)
        .unwrap_or("")
        .lines()
        .next()
        .unwrap_or("");
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_owned())
        .filter(|k| !k.starts_with('['))
        .unwrap_or_default();
    let header = before
        .get(..line_start)
        .unwrap_or("")
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(['[', ']']).trim().to_owned())
        .unwrap_or_default();
    match (header.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => header,
        (false, false) => format!("{header}.{key}"),
    }
}

/// The span of a value, `None` for a default, which has no place in the file.
pub(crate) fn span_of<T>(s: &Spanned<T>) -> Option<Range<usize>> {
    let span = s.span();
    // Defaults carry the empty span 0..0: they have no place in the file.
    (span.end > 0).then_some(span)
}
