//! The `/v1/models` listing: every routable name in the OpenAI list shape.

use serde_json::{Value, json};

use crate::policy::{AUTO_ALIAS, CompiledPolicy, Model};

const OWNER: &str = "fluxroute";

impl CompiledPolicy {
    /// The `/v1/models` body: `flux-auto`, each tier alias, each `flux-pinned-*` alias, and
    /// backing ids where passthrough is on.
    ///
    /// ```
    /// let models = fluxroute::CompiledPolicy::embedded().list_models();
    /// assert_eq!(models["object"], "list");
    /// assert_eq!(models["data"][0]["id"], "flux-auto");
    /// assert_eq!(models["data"][0]["flux"]["kind"], "auto");
    /// ```
    pub fn list_models(&self) -> Value {
        let mut data = Vec::new();
        let all: Vec<&str> = self.models.iter().map(|m| m.id.as_str()).collect();
        data.push(self.group(AUTO_ALIAS, "auto", None, all));
        for t in &self.tiers {
            let ids = t
                .models
                .iter()
                .filter_map(|&i| self.models.get(i))
                .map(|m| m.id.as_str())
                .collect();
            data.push(self.group(&t.alias, "tier", Some(&t.name), ids));
        }
        for a in &self.pinned {
            if let Some(m) = self.models.get(a.model) {
                data.push(self.entry(&a.name, "pinned", m));
            }
        }
        if self.passthrough {
            for m in &self.models {
                data.push(self.entry(&m.id, "model", m));
            }
        }
        json!({"object": "list", "data": data})
    }

    fn group(&self, id: &str, kind: &str, tier: Option<&str>, models: Vec<&str>) -> Value {
        json!({
            "id": id,
            "object": "model",
            "created": self.created,
            "owned_by": OWNER,
            "flux": {"kind": kind, "tier": tier, "models": models},
        })
    }

    fn entry(&self, id: &str, kind: &str, m: &Model) -> Value {
        json!({
            "id": id,
            "object": "model",
            "created": self.created,
            "owned_by": m.provider,
            "flux": {
                "kind": kind,
                "model": m.id,
                "context_window": m.context_window,
                "max_output_tokens": m.max_output_tokens,
                "capabilities": m.capabilities.names(),
                "tier": self.tiers.get(m.tier).map(|t| t.name.as_str()),
                "pricing": {"input_per_mtok": m.input_per_mtok, "output_per_mtok": m.output_per_mtok},
            },
        })
    }
}
