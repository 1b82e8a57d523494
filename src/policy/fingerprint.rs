//! The fingerprint: a stable hash of a compiled policy's canonical form, so that formatting,
//! comments and key order do not change it and any change of meaning does.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::raw::DEFAULT_FILE_BYTES_PER_TOKEN;
use super::{Action, CompiledPolicy};
use crate::features::{Complexity, Target};

/// 16 hex digits of the SHA-256 of the canonical form.
pub(super) fn fingerprint(p: &CompiledPolicy) -> String {
    let digest = Sha256::digest(canonical(p).to_string().as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The canonical form: every field that changes a decision or a listing, in a fixed order.
fn canonical(p: &CompiledPolicy) -> Value {
    let models: Vec<Value> = p
        .models
        .iter()
        .map(|m| {
            let mut v = json!([
                m.id,
                m.provider,
                m.tier,
                m.context_window,
                m.max_output_tokens,
                m.capabilities.names(),
                m.input_per_mtok,
                m.output_per_mtok
            ]);
            // Only models with metadata carry a ninth field, so other fingerprints stay.
            if let (false, Some(a)) = (m.meta.is_empty(), v.as_array_mut()) {
                a.push(json!(m.meta));
            }
            v
        })
        .collect();
    let rules: Vec<Value> = p
        .rules
        .iter()
        .map(|r| {
            let action = match &r.action {
                Action::Tier(t) => json!({"tier": t}),
                Action::Models(m) => json!({"models": m}),
                Action::Split(s) => json!({"split": s}),
            };
            let mut v = json!([
                r.name,
                r.applies_to_auto,
                r.applies_to_tiers,
                r.capabilities.names(),
                r.min_prompt_tokens,
                r.max_prompt_tokens,
                r.classes,
                r.min_score,
                r.max_score,
                r.pattern.and_then(|i| p.patterns.sources.get(i)),
                r.tags,
                r.tenants,
                action
            ]);
            // Only restricting rules carry a fourteenth field, so other fingerprints stay.
            if let (true, Some(a)) = (r.restrict, v.as_array_mut()) {
                a.push(json!("restrict"));
            }
            v
        })
        .collect();
    let mut tenants: Vec<(&str, Value)> = p
        .tenants
        .iter()
        .map(|(name, t)| {
            let names: Option<Vec<&str>> = t
                .names
                .as_ref()
                .map(|n| n.iter().map(|&t| p.target_name(Target(t))).collect());
            // The allowed models by id, in catalog order.
            let models: Option<Vec<&str>> = t.models.as_ref().map(|m| {
                m.iter()
                    .filter_map(|&i| p.models.get(usize::from(i)))
                    .map(|m| m.id.as_str())
                    .collect()
            });
            (&**name, json!([models, names]))
        })
        .collect();
    tenants.sort_by(|a, b| a.0.cmp(b.0));
    let c = &p.classifier;
    let signals: Vec<Value> = c
        .signals
        .iter()
        .zip(p.patterns.sources.iter())
        .map(|(s, pat)| {
            let mut v = json!([s.name, s.weight, s.min_class.map(Complexity::as_str), pat]);
            // Only counted signals carry a fifth field, so other fingerprints stay as they were.
            if let (Some(sat), Some(a)) = (s.saturation, v.as_array_mut()) {
                a.push(json!(sat));
            }
            v
        })
        .collect();
    let l = &p.limits;
    let mut limits = json!([
        l.max_body_bytes,
        l.max_messages,
        l.output_reserve,
        l.expected_output_tokens,
        l.margin_bp,
        l.image_tokens,
        l.audio_tokens,
        l.file_tokens
    ]);
    // A limit added later joins the list only when set apart from its default, so other
    // fingerprints stay as they were.
    if u64::from(l.file_bytes_per_token) != DEFAULT_FILE_BYTES_PER_TOKEN
        && let Some(a) = limits.as_array_mut()
    {
        a.push(json!(l.file_bytes_per_token));
    }
    let scorer = c.scorer.as_ref().map(|s| s.digest.clone());
    let mut canonical = json!({
        "name": p.name, "description": p.description, "created": p.created,
        "passthrough": p.passthrough, "max_fallbacks": p.max_fallbacks,
        "limits": limits,
        "models": models,
        "tiers": p.tiers.iter().map(|t| json!([t.name, t.alias, t.description])).collect::<Vec<_>>(),
        "pinned": p.pinned.iter().map(|a| json!([a.name, a.model])).collect::<Vec<_>>(),
        "redirects": p.redirects.iter().map(|a| json!([a.name, a.model])).collect::<Vec<_>>(),
        "auto": p.auto_tiers,
        "classifier": [c.thresholds, c.length_weight, c.length_saturation, c.depth_weight,
                       c.depth_saturation, c.tools_weight, signals],
        "rules": rules,
        "tenants": tenants,
    });
    // Only a denying policy carries the key, so other fingerprints stay as they were.
    if let (true, Some(o)) = (p.deny_unknown_tenants, canonical.as_object_mut()) {
        o.insert("unknown_tenants".into(), json!("deny"));
    }
    // A scorer's file bytes, by their SHA-256: a reload with another model is another policy.
    if let (Some(digest), Some(o)) = (scorer, canonical.as_object_mut()) {
        o.insert("scorer".into(), json!(digest));
    }
    canonical
}
