//! Compilation: a validated table becomes the immutable [`CompiledPolicy`] routing reads, with
//! its patterns built into one set, each tier's price orders, name hints and fingerprint.

use super::validate::Table;
use super::{CompiledPolicy, fingerprint};
use crate::patterns::Patterns;
use crate::suggest::Names;

/// Builds the table's patterns (signals first, then rule patterns) into one set; the error is
/// the regex engine's message for a set that does not compile together. The sources move into
/// the set.
pub(super) fn patterns(table: &mut Table) -> Result<Patterns, String> {
    let counted: Vec<(usize, u32)> = table
        .classifier
        .signals
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((i, s.saturation?)))
        .collect();
    Patterns::build(std::mem::take(&mut table.patterns), &counted)
}

/// Compiles a table that validated without errors, with its built patterns.
pub(super) fn compile(table: Table, patterns: Patterns) -> CompiledPolicy {
    let Table {
        name,
        description,
        created,
        passthrough,
        max_fallbacks,
        limits,
        models,
        mut tiers,
        pinned,
        redirects,
        names,
        auto_tiers,
        classifier,
        rules,
        tenants,
        deny_unknown_tenants,
        patterns: _,
    } = table;
    for t in &mut tiers {
        t.index(&models);
    }
    let mut policy = CompiledPolicy {
        name,
        description,
        created,
        fingerprint: String::new(),
        header: String::new(),
        passthrough,
        max_fallbacks,
        limits,
        models,
        tiers,
        pinned,
        redirects,
        hints: Names::new(names.keys().map(|k| &**k)),
        names,
        auto_tiers,
        classifier,
        rules,
        tenants,
        deny_unknown_tenants,
        patterns,
    };
    policy.fingerprint = fingerprint::fingerprint(&policy);
    policy.header = format!("{}@{}", policy.name, policy.fingerprint);
    policy
}
