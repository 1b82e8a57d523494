//! Policy validation: every diagnostic kind, located at the right line and column.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use fluxroute::{CompiledPolicy, Diagnostic, DiagnosticKind as K, Severity};

const BASE: &str = r#"[policy]
name = "t"

[[tiers]]
name = "small"
alias = "flux-small"

[[tiers]]
name = "big"
alias = "flux-big"

[auto]
simple = "small"
standard = "small"
complex = "big"
reasoning = "big"

[[models]]
id = "a"
provider = "p"
tier = "small"
context_window = 1000
max_output_tokens = 100
input_per_mtok = 1.0
output_per_mtok = 2.0
capabilities = ["tools"]

[[models]]
id = "b"
provider = "p"
tier = "big"
context_window = 2000
max_output_tokens = 200
input_per_mtok = 3.0
output_per_mtok = 4.0
capabilities = ["vision"]

[pinned]
"flux-pinned-a" = "a"
"flux-pinned-b" = "b"
"#;

/// Every diagnostic but `missing_classifier`: most policies here have no `[classifier]`, and
/// that warning has its own test (`tests/safety.rs`).
fn diagnostics(text: &str) -> Vec<Diagnostic> {
    let mut all = CompiledPolicy::validate(text, "t.toml");
    all.retain(|d| d.kind != K::MissingClassifier);
    all
}

/// 1-based line and column of the `nth` occurrence of `needle` in `text`.
fn position(text: &str, needle: &str, nth: usize) -> (usize, usize) {
    let at = text
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("{needle:?} not in policy"))
        .0;
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap().chars().count() + 1;
    (line, col)
}

/// Asserts exactly one diagnostic of `kind` and `severity`, at `needle`, with `path`.
fn expect_one(
    text: &str,
    severity: Severity,
    kind: K,
    needle: &str,
    nth: usize,
    path: &str,
) -> Diagnostic {
    let all = diagnostics(text);
    let found: Vec<&Diagnostic> = all.iter().filter(|d| d.kind == kind).collect();
    assert_eq!(found.len(), 1, "expected one {kind:?}, got {all:#?}");
    let d = found[0].clone();
    assert_eq!(d.severity, severity, "{d}");
    assert_eq!((d.line, d.column), position(text, needle, nth), "{d}");
    assert_eq!(d.path, path, "{d}");
    assert_eq!(d.origin, "t.toml");
    d
}

fn error(text: &str, kind: K, needle: &str, nth: usize, path: &str) -> Diagnostic {
    let d = expect_one(text, Severity::Error, kind, needle, nth, path);
    assert!(
        CompiledPolicy::from_toml(text, "t.toml").is_err(),
        "an error must reject the policy"
    );
    d
}

fn warning(text: &str, needle: &str, nth: usize, path: &str) -> Diagnostic {
    let d = expect_one(
        text,
        Severity::Warning,
        K::UnreachableRule,
        needle,
        nth,
        path,
    );
    let loaded = CompiledPolicy::from_toml(text, "t.toml").expect("warnings do not reject");
    let others = loaded
        .warnings
        .iter()
        .filter(|w| w.kind != K::MissingClassifier);
    assert_eq!(others.count(), 1);
    d
}

#[test]
fn base_policy_is_valid() {
    assert_eq!(diagnostics(BASE), vec![]);
    let loaded = CompiledPolicy::from_toml(BASE, "t.toml").unwrap();
    assert_eq!(loaded.policy.fingerprint().len(), 16);
}

#[test]
fn embedded_policy_is_valid_and_every_example_policy_too() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut n = 0;
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let loaded = CompiledPolicy::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            loaded.warnings.is_empty(),
            "{}: {:?}",
            path.display(),
            loaded.warnings
        );
        n += 1;
    }
    assert!(n >= 4, "the default policy and at least three examples");
}

#[test]
fn toml_syntax_error_is_located() {
    let text = BASE.replace("context_window = 2000", "context_window = = 2000");
    let all = diagnostics(&text);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(
        (all[0].kind, all[0].line),
        (K::Syntax, position(&text, "= = 2000", 0).0)
    );
    assert_eq!(all[0].path, "models.context_window");
}

#[test]
fn unknown_field_is_rejected_with_its_location() {
    let text = BASE.replace(
        "provider = \"p\"\ntier = \"big\"",
        "provider = \"p\"\ntierr = \"big\"",
    );
    let d = &diagnostics(&text)[0];
    assert_eq!(d.kind, K::Syntax);
    assert!(d.message.contains("tierr"), "{d}");
    assert_eq!(d.line, position(&text, "tierr", 0).0);
}

#[test]
fn unknown_capability_is_rejected() {
    let text = BASE.replace("[\"vision\"]", "[\"vision\", \"telepathy\"]");
    let d = &diagnostics(&text)[0];
    assert_eq!(d.kind, K::Syntax);
    assert!(d.message.contains("telepathy"), "{d}");
    assert_eq!((d.line, d.column), position(&text, "\"telepathy\"", 0));
}

#[test]
fn wrong_type_is_rejected() {
    let text = BASE.replace("context_window = 1000", "context_window = \"big\"");
    let d = &diagnostics(&text)[0];
    assert_eq!((d.kind, d.line, d.column), (K::Syntax, 22, 18), "{d}");
}

#[test]
fn pinned_alias_pointing_nowhere() {
    let text = format!("{BASE}\"flux-pinned-c\" = \"c\"\n");
    let d = error(
        &text,
        K::UnknownModel,
        "\"c\"\n",
        0,
        "pinned.\"flux-pinned-c\"",
    );
    assert!(d.message.contains("`c`"), "{d}");
}

#[test]
fn model_with_no_pinned_alias() {
    let text = BASE.replace("\"flux-pinned-b\" = \"b\"\n", "");
    let d = error(&text, K::MissingPinnedAlias, "\"b\"", 0, "models[1].id");
    assert_eq!((d.line, d.column), (29, 6));
}

#[test]
fn pinned_alias_without_the_prefix() {
    let text = format!("{BASE}\"pin-a\" = \"a\"\n");
    error(&text, K::InvalidName, "\"pin-a\"", 0, "pinned.\"pin-a\"");
}

#[test]
fn tier_alias_with_the_pinned_prefix() {
    let text = BASE.replace("alias = \"flux-big\"", "alias = \"flux-pinned-big\"");
    error(
        &text,
        K::InvalidName,
        "\"flux-pinned-big\"",
        0,
        "tiers[1].alias",
    );
}

#[test]
fn unknown_tier_of_a_model() {
    let text = BASE.replace("tier = \"big\"", "tier = \"huge\"");
    error(&text, K::UnknownTier, "\"huge\"", 0, "models[1].tier");
}

#[test]
fn tier_with_no_models() {
    let text = BASE.replace("tier = \"big\"", "tier = \"small\"");
    error(&text, K::EmptyTier, "\"big\"", 0, "tiers[1]");
}

#[test]
fn auto_class_mapping_to_unknown_tier() {
    let text = BASE.replace("complex = \"big\"", "complex = \"mega\"");
    error(&text, K::UnknownTier, "\"mega\"", 0, "auto.complex");
}

#[test]
fn duplicate_model_id() {
    let text = BASE.replace("id = \"b\"", "id = \"a\"");
    // The second `a` is the duplicate; `b`'s pinned alias now points at nothing.
    error(&text, K::Duplicate, "\"a\"\nprovider", 1, "models[1].id");
}

#[test]
fn duplicate_tier_name() {
    let text = BASE.replace("name = \"big\"", "name = \"small\"");
    let all = diagnostics(&text);
    let d = all.iter().find(|d| d.kind == K::Duplicate).unwrap();
    assert_eq!((d.line, d.column), position(&text, "\"small\"", 1));
}

#[test]
fn name_defined_twice() {
    let text = format!("{BASE}\n[redirects]\n\"flux-big\" = \"b\"\n");
    error(
        &text,
        K::Duplicate,
        "\"flux-big\" =",
        0,
        "redirects.\"flux-big\"",
    );
}

#[test]
fn redirect_to_unknown_model() {
    let text = format!("{BASE}\n[redirects]\n\"old\" = \"gone\"\n");
    error(&text, K::UnknownModel, "\"gone\"", 0, "redirects.\"old\"");
}

/// The base policy's tiers with `n` models `a0`, `a1` ..., each pinned by an alias that points
/// to its id followed by `suffix` (so a non-empty suffix makes every alias point nowhere).
fn catalog(n: usize, suffix: &str) -> String {
    let mut text = BASE.split("[[models]]").next().unwrap().to_owned();
    for i in 0..n {
        let tier = if i % 2 == 0 { "small" } else { "big" };
        text += &format!(
            "[[models]]\nid = \"a{i}\"\nprovider = \"p\"\ntier = \"{tier}\"\ncontext_window = 1000\nmax_output_tokens = 100\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n\n"
        );
    }
    text += "[pinned]\n";
    for i in 0..n {
        text += &format!("\"flux-pinned-a{i}\" = \"a{i}{suffix}\"\n");
    }
    text
}

#[test]
fn unknown_model_gets_a_hint() {
    let text = format!("{BASE}\n[redirects]\n\"old\" = \"bb\"\n");
    let d = error(&text, K::UnknownModel, "\"bb\"", 0, "redirects.\"old\"");
    assert!(d.message.ends_with("did you mean `b`"), "{d}");
}

/// A catalog of thousands of models whose pinned aliases all point one letter off: every
/// mistake is reported at its place, and the first ones of them with a hint. (Checking such a
/// policy once took time quadratic in the catalog: minutes for 20,000 models.)
#[test]
fn a_large_broken_catalog_is_reported_whole_with_hints_for_the_first_names() {
    const N: usize = 2_000;
    let text = catalog(N, "z");
    let all = diagnostics(&text);
    assert_eq!(all.len(), 2 * N);
    let unknown: Vec<&Diagnostic> = all.iter().filter(|d| d.kind == K::UnknownModel).collect();
    let unaliased = all.iter().filter(|d| d.kind == K::MissingPinnedAlias);
    assert_eq!((unknown.len(), unaliased.count()), (N, N));
    // Each is where its name is.
    for d in [unknown[0], unknown[N / 2], unknown[N - 1]] {
        let target = d.message.split('`').nth(3).unwrap();
        let needle = format!("\"{target}\"\n");
        assert_eq!((d.line, d.column), position(&text, &needle, 0), "{d}");
    }
    // The first 64 in the order they are checked get a hint, and it is the right one.
    let hinted: Vec<&&Diagnostic> = unknown
        .iter()
        .filter(|d| d.message.contains("did you mean"))
        .collect();
    assert_eq!(hinted.len(), 64);
    for d in hinted {
        let target = d.message.split('`').nth(3).unwrap();
        let hint = d.message.rsplit('`').nth(1).unwrap();
        assert_eq!(format!("{hint}z"), target, "{d}");
    }
}

#[test]
fn invalid_values() {
    let text = BASE.replace("context_window = 1000", "context_window = 0");
    error(&text, K::InvalidValue, "0\n", 0, "models[0].context_window");
    let text = BASE.replace("max_output_tokens = 200", "max_output_tokens = 2001");
    error(
        &text,
        K::InvalidValue,
        "2001",
        0,
        "models[1].max_output_tokens",
    );
    let text = BASE.replace("input_per_mtok = 3.0", "input_per_mtok = -3.0");
    error(
        &text,
        K::InvalidValue,
        "-3.0",
        0,
        "models[1].input_per_mtok",
    );
    let text = format!("{BASE}\n[limits]\ncontext_margin = 1.5\n");
    error(&text, K::InvalidValue, "1.5", 0, "limits.context_margin");
    let text = BASE.replace("name = \"t\"", "name = \"t\"\nmax_fallbacks = 9");
    error(&text, K::InvalidValue, "9", 0, "policy.max_fallbacks");
}

const CLASSIFIER: &str = r#"
[classifier]
thresholds = { standard = 0.2, complex = 0.4, reasoning = 0.7 }
length = { weight = 0.5, saturation = 1000 }
depth = { weight = 0.2, saturation = 10 }
tools = { weight = 0.1 }

[[classifier.signals]]
name = "code"
pattern = 'fn|def'
weight = 0.2
"#;

#[test]
fn classifier_weights_must_sum_to_one() {
    let ok = format!("{BASE}{CLASSIFIER}");
    assert_eq!(diagnostics(&ok), vec![]);
    let text = ok.replace("weight = 0.2\n", "weight = 0.3\n");
    let d = error(&text, K::Weights, "0.5", 0, "classifier");
    assert!(d.message.contains("1.1"), "{d}");
}

#[test]
fn invalid_regex_is_located() {
    let text = format!("{BASE}{CLASSIFIER}").replace("'fn|def'", "'fn|(def'");
    let d = error(
        &text,
        K::InvalidRegex,
        "'fn|(def'",
        0,
        "classifier.signals[0].pattern",
    );
    assert!(d.message.contains("unclosed"), "{d}");
}

/// Asserts one `invalid_value` error, located at the value of the first `key = value` line.
fn error_at_value(text: &str, line: &str, path: &str) {
    let (row, col) = position(text, line, 0);
    let value_col = col + line.find("= ").unwrap() + 2;
    let all = diagnostics(text);
    let found: Vec<&Diagnostic> = all.iter().filter(|d| d.kind == K::InvalidValue).collect();
    assert_eq!(found.len(), 1, "expected one invalid_value, got {all:#?}");
    assert_eq!(
        (found[0].line, found[0].column),
        (row, value_col),
        "{}",
        found[0]
    );
    assert_eq!(found[0].path, path);
    assert!(CompiledPolicy::from_toml(text, "t.toml").is_err());
}

/// A counted signal in the classifier: `pattern` counted up to `saturation`.
fn counted(pattern: &str, saturation: &str) -> String {
    format!("{BASE}{CLASSIFIER}saturation = {saturation}\n").replace("'fn|def'", pattern)
}

#[test]
fn counted_signals_need_a_positive_saturation_and_a_pattern_that_cannot_match_nothing() {
    assert_eq!(diagnostics(&counted("'[,;]'", "8")), vec![]);
    for bad in ["0", "4294967296"] {
        let text = counted("'[,;]'", bad);
        error_at_value(
            &text,
            &format!("saturation = {bad}"),
            "classifier.signals[0].saturation",
        );
    }
    // A pattern that can match the empty string would count every position.
    let d = error(
        &counted("'x*'", "8"),
        K::InvalidRegex,
        "'x*'",
        0,
        "classifier.signals[0].pattern",
    );
    assert!(d.message.contains("empty string"), "{d}");
    // The same pattern is fine when it only has to match somewhere.
    let plain = format!("{BASE}{CLASSIFIER}").replace("'fn|def'", "'x*'");
    assert_eq!(diagnostics(&plain), vec![]);
}

#[test]
fn at_most_eight_signals_are_counted() {
    let mut text = format!("{BASE}{CLASSIFIER}").replace("weight = 0.2\n", "weight = 0.02\n");
    for i in 1..10 {
        text.push_str(&format!(
            "\n[[classifier.signals]]\nname = \"s{i}\"\npattern = 'x{i}'\nweight = 0.02\nsaturation = {i}\n"
        ));
    }
    // Ten signals of 0.02 and 0.8 from length, depth and tools: the weights sum to 1.
    error_at_value(&text, "saturation = 9", "classifier.signals[9].saturation");
    let eight = text.replace("saturation = 9\n", "");
    assert_eq!(diagnostics(&eight), vec![]);
}

#[test]
fn a_saturation_changes_the_fingerprint_and_its_absence_keeps_it() {
    let plain = format!("{BASE}{CLASSIFIER}");
    let fingerprint = |text: &str| {
        CompiledPolicy::from_toml(text, "t.toml")
            .unwrap()
            .policy
            .fingerprint()
            .to_owned()
    };
    let a = fingerprint(&counted("'fn|def'", "4"));
    let b = fingerprint(&counted("'fn|def'", "5"));
    assert_ne!(a, b);
    assert_ne!(a, fingerprint(&plain));
    // Fingerprints of policies without counted signals are what they were before counting
    // existed: pinned here for this one.
    assert_eq!(fingerprint(&plain), PLAIN_FINGERPRINT);
}

#[test]
fn thresholds_must_increase() {
    let text = format!("{BASE}{CLASSIFIER}").replace("complex = 0.4", "complex = 0.1");
    error(&text, K::InvalidValue, "0.2", 0, "classifier.thresholds");
}

#[test]
fn rule_with_unknown_model_tier_and_alias() {
    let text = format!("{BASE}\n[[rules]]\nname = \"r\"\nmodels = [\"a\", \"zz\"]\n");
    error(&text, K::UnknownModel, "\"zz\"", 0, "rules[0].models[1]");
    let text = format!("{BASE}\n[[rules]]\nname = \"r\"\ntier = \"zz\"\n");
    error(&text, K::UnknownTier, "\"zz\"", 0, "rules[0].tier");
    let text =
        format!("{BASE}\n[[rules]]\nname = \"r\"\naliases = [\"flux-nope\"]\ntier = \"big\"\n");
    error(
        &text,
        K::UnknownName,
        "\"flux-nope\"",
        0,
        "rules[0].aliases[0]",
    );
    let text =
        format!("{BASE}\n[[rules]]\nname = \"r\"\naliases = [\"flux-pinned-a\"]\ntier = \"big\"\n");
    error(
        &text,
        K::InvalidName,
        "\"flux-pinned-a\"",
        1,
        "rules[0].aliases[0]",
    );
}

#[test]
fn rule_needs_exactly_one_action() {
    let text = format!("{BASE}\n[[rules]]\nname = \"none\"\n");
    error(&text, K::RuleAction, "\"none\"", 0, "rules[0].name");
    let text = format!("{BASE}\n[[rules]]\nname = \"two\"\ntier = \"big\"\nmodels = [\"a\"]\n");
    error(&text, K::RuleAction, "\"two\"", 0, "rules[0].name");
}

#[test]
fn split_weights_must_be_positive() {
    let text = format!(
        "{BASE}\n[[rules]]\nname = \"s\"\nsplit = [{{ model = \"a\", weight = 0 }}, {{ model = \"b\", weight = 1 }}]\n"
    );
    error(&text, K::Weights, "0 }", 0, "rules[0].split[0].weight");
}

#[test]
fn tenant_allow_lists_name_real_models_and_names() {
    let text = format!("{BASE}\n[tenants.t]\nmodels = [\"a\", \"q\"]\n");
    error(
        &text,
        K::UnknownModel,
        "\"q\"",
        0,
        "tenants.\"t\".models[1]",
    );
    let text = format!("{BASE}\n[tenants.t]\naliases = [\"flux-q\"]\n");
    error(
        &text,
        K::UnknownName,
        "\"flux-q\"",
        0,
        "tenants.\"t\".aliases[0]",
    );
}

#[test]
fn rules_that_can_never_match_are_warnings() {
    let text = format!(
        "{BASE}\n[[rules]]\nname = \"r\"\nmin_prompt_tokens = 10\nmax_prompt_tokens = 5\ntier = \"big\"\n"
    );
    let d = warning(&text, "\"r\"", 0, "rules[0]");
    assert!(d.message.contains("min_prompt_tokens"), "{d}");
    let text = format!(
        "{BASE}\n[[rules]]\nname = \"r\"\nmin_score = 0.9\nmax_score = 0.1\ntier = \"big\"\n"
    );
    warning(&text, "\"r\"", 0, "rules[0]");
    // Model `a` has tools only: a rule needing vision that only names `a` can never decide.
    let text =
        format!("{BASE}\n[[rules]]\nname = \"r\"\ncapabilities = [\"vision\"]\nmodels = [\"a\"]\n");
    warning(&text, "\"r\"", 0, "rules[0]");
    let text =
        format!("{BASE}\n[[rules]]\nname = \"r\"\nmin_prompt_tokens = 5000\ntier = \"small\"\n");
    warning(&text, "\"r\"", 0, "rules[0]");
}

#[test]
fn a_rule_after_a_catch_all_is_shadowed() {
    let text = format!(
        "{BASE}\n[[rules]]\nname = \"all\"\ntier = \"big\"\n\n[[rules]]\nname = \"late\"\ncapabilities = [\"tools\"]\ntier = \"small\"\n"
    );
    let d = warning(&text, "\"late\"", 0, "rules[1]");
    assert!(d.message.contains("shadowed by rule `all`"), "{d}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = BASE
        .replace("tier = \"big\"", "tier = \"huge\"")
        .replace("context_window = 1000", "context_window = 0")
        .replace("\"flux-pinned-a\" = \"a\"", "\"flux-pinned-a\" = \"x\"");
    let all = diagnostics(&text);
    let kinds: Vec<K> = all.iter().map(|d| d.kind).collect();
    for k in [
        K::UnknownTier,
        K::InvalidValue,
        K::UnknownModel,
        K::MissingPinnedAlias,
        K::EmptyTier,
    ] {
        assert!(kinds.contains(&k), "{k:?} missing from {all:#?}");
    }
    // Sorted by position: errors first, then by line.
    let lines: Vec<usize> = all.iter().filter(|d| d.line > 0).map(|d| d.line).collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
    let err = CompiledPolicy::from_toml(&text, "t.toml").unwrap_err();
    let reported = err
        .diagnostics()
        .iter()
        .filter(|d| d.kind != K::MissingClassifier);
    assert_eq!(reported.count(), all.len());
    assert!(err.to_string().contains("t.toml:"), "{err}");
}

#[test]
fn unreadable_file_is_an_io_diagnostic() {
    let err =
        CompiledPolicy::from_file(std::path::Path::new("/nonexistent/policy.toml")).unwrap_err();
    assert_eq!(err.diagnostics()[0].kind, K::Io);
}

#[test]
fn display_names_file_line_column_kind_and_path() {
    let text = BASE.replace("tier = \"big\"", "tier = \"huge\"");
    let d = diagnostics(&text)
        .into_iter()
        .find(|d| d.kind == K::UnknownTier)
        .unwrap();
    assert_eq!(
        d.to_string(),
        "t.toml:31:8: error[unknown_tier]: model `b` names unknown tier `huge` (at `models[1].tier`)"
    );
}

#[test]
fn fingerprint_ignores_formatting_but_not_meaning() {
    let a = CompiledPolicy::from_toml(BASE, "a").unwrap().policy;
    let reformatted = format!(
        "# a comment\n{}",
        BASE.replace("input_per_mtok = 1.0", "input_per_mtok   =   1.00")
    );
    let b = CompiledPolicy::from_toml(&reformatted, "b").unwrap().policy;
    assert_eq!(a.fingerprint(), b.fingerprint());
    let changed = BASE.replace("input_per_mtok = 1.0", "input_per_mtok = 1.5");
    let c = CompiledPolicy::from_toml(&changed, "c").unwrap().policy;
    assert_ne!(a.fingerprint(), c.fingerprint());
}

/// A policy file and the catalog it includes, written to a fresh directory.
fn with_catalog(name: &str, catalog: &str, policy: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fluxroute-catalog-{}-{name}", std::process::id()));
    std::fs::create_dir_all(dir.join("shared")).unwrap();
    std::fs::write(dir.join("shared/catalog.toml"), catalog).unwrap();
    let path = dir.join("policy.toml");
    std::fs::write(&path, policy).unwrap();
    path
}

/// BASE split in two: the models and pinned aliases go to the catalog.
fn split_base() -> (String, String) {
    let at = BASE.find("[[models]]").unwrap();
    let policy = BASE[..at].replace(
        "name = \"t\"",
        "name = \"t\"\ncatalog = \"shared/catalog.toml\"",
    );
    (BASE[at..].to_owned(), policy)
}

#[test]
fn a_catalog_include_compiles_like_the_inline_policy() {
    let (catalog, policy) = split_base();
    let path = with_catalog("same", &catalog, &policy);
    let loaded = CompiledPolicy::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let inline = CompiledPolicy::from_toml(BASE, "t.toml").unwrap().policy;
    assert_eq!(loaded.policy.list_models(), inline.list_models());
    // Same meaning, same fingerprint, wherever the models are written.
    assert_eq!(loaded.policy.fingerprint(), inline.fingerprint());
    // Changing the catalog changes the policy.
    let dearer = with_catalog(
        "dearer",
        &catalog.replace("input_per_mtok = 1.0", "input_per_mtok = 1.5"),
        &policy,
    );
    assert_ne!(
        CompiledPolicy::from_file(&dearer)
            .unwrap()
            .policy
            .fingerprint(),
        inline.fingerprint()
    );
}

#[test]
fn problems_in_a_catalog_are_located_in_the_catalog() {
    let (catalog, policy) = split_base();
    let bad = catalog.replace("tier = \"big\"", "tier = \"huge\"");
    let path = with_catalog("bad", &bad, &policy);
    let err = CompiledPolicy::from_file(&path).unwrap_err();
    let d = err
        .diagnostics()
        .iter()
        .find(|d| d.kind == K::UnknownTier)
        .unwrap();
    assert!(d.origin.ends_with("shared/catalog.toml"), "{d}");
    assert_eq!((d.line, d.column), position(&bad, "\"huge\"", 0), "{d}");
    // Syntax errors too.
    let broken = catalog.replace("context_window = 2000", "context_window = = 2000");
    let err = CompiledPolicy::from_file(&with_catalog("broken", &broken, &policy)).unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!(d.kind, K::Syntax);
    assert!(d.origin.ends_with("shared/catalog.toml"), "{d}");
    assert_eq!(d.line, position(&broken, "= = 2000", 0).0);
}

#[test]
fn a_missing_catalog_and_a_doubly_pinned_alias_are_errors() {
    let (catalog, policy) = split_base();
    let path = with_catalog(
        "missing",
        &catalog,
        &policy.replace("shared/catalog.toml", "shared/nope.toml"),
    );
    let err = CompiledPolicy::from_file(&path).unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!(d.kind, K::Io);
    assert!(
        d.origin.ends_with("policy.toml") && d.path == "policy.catalog",
        "{d}"
    );
    assert_eq!(d.line, 3);
    let twice = format!("{policy}\n[pinned]\n\"flux-pinned-a\" = \"a\"\n");
    let err = CompiledPolicy::from_file(&with_catalog("twice", &catalog, &twice)).unwrap_err();
    let d = err
        .diagnostics()
        .iter()
        .find(|d| d.kind == K::Duplicate)
        .unwrap();
    assert!(d.origin.ends_with("policy.toml"), "{d}");
    assert_eq!((d.line, d.column), position(&twice, "\"flux-pinned-a\"", 0));
}

#[test]
fn a_unicode_word_boundary_is_a_slow_pattern_warning() {
    let text = format!("{BASE}{CLASSIFIER}").replace("'fn|def'", r"'\b(fn|def)\b'");
    let d = expect_one(
        &text,
        Severity::Warning,
        K::SlowPattern,
        r"'\b(fn|def)\b'",
        0,
        "classifier.signals[0].pattern",
    );
    assert!(d.message.contains("(?-u:\\b)"), "{d}");
    let ascii = format!("{BASE}{CLASSIFIER}").replace("'fn|def'", r"'(?-u:\b)(fn|def)(?-u:\b)'");
    assert_eq!(diagnostics(&ascii), vec![]);
}

/// The fingerprint of `BASE` with `CLASSIFIER`, computed before counted signals existed.
const PLAIN_FINGERPRINT: &str = "496fb7bd8eb9f998";

/// Decisions keep model indices in 16 bits: one model more than that is rejected, and checking
/// a catalog that large takes seconds, not hours.
#[test]
fn a_catalog_beyond_65535_models_is_rejected() {
    let all = diagnostics(&catalog(65_536, ""));
    assert_eq!(all.len(), 1, "{:#?}", &all[..all.len().min(3)]);
    assert_eq!(
        (all[0].kind, all[0].path.as_str()),
        (K::InvalidValue, "models")
    );
    assert!(
        all[0].message.contains("at most 65535 models, got 65536"),
        "{}",
        all[0]
    );
}
