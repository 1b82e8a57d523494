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
    let mut tiers = table.tiers;
    for t in &mut tiers {
        t.index(&table.models);
    }
    let mut policy = CompiledPolicy {
        hints: Names::new(table.names.keys().map(|k| &**k)),
        name: table.name,
        description: table.description,
        created: table.created,
        fingerprint: String::new(),
        header: String::new(),
        passthrough: table.passthrough,
        max_fallbacks: table.max_fallbacks,
        limits: table.limits,
        models: table.models,
        tiers,
        pinned: table.pinned,
        redirects: table.redirects,
        names: table.names,
        auto_tiers: table.auto_tiers,
        classifier: table.classifier,
        rules: table.rules,
        tenants: table.tenants,
        deny_unknown_tenants: table.deny_unknown_tenants,
        patterns,
    };
    policy.fingerprint = fingerprint::fingerprint(&policy);
    policy.header = format!("{}@{}", policy.name, policy.fingerprint);
    policy
}
