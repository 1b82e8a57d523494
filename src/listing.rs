//! The `/v1/models` listing: every routable name in the OpenAI list shape.

use serde_json::{Value, json};

use crate::features::TargetKind;
use crate::policy::{AUTO_ALIAS, CompiledPolicy, Model};
use crate::route::CallerContext;

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
        self.listing(|_| true, |_| true)
    }

    /// The `/v1/models` body as `tenant` sees it: only the names it may request, and behind
    /// `flux-auto` and tier aliases only the models that may serve it (a name none of whose
    /// models may is left out). A tenant the policy denies sees an empty list; an undeclared
    /// one, where the policy allows those, sees everything.
    ///
    /// ```
    /// use fluxroute::CompiledPolicy;
    /// let policy = CompiledPolicy::embedded();
    /// let free = policy.models_for(Some("free"));
    /// let ids: Vec<&str> = free["data"].as_array().unwrap().iter()
    ///     .map(|e| e["id"].as_str().unwrap()).collect();
    /// assert_eq!(ids, ["flux-auto", "flux-fast"]);
    /// assert_eq!(free["data"][0]["flux"]["models"].as_array().unwrap().len(), 4);
    /// ```
    pub fn models_for(&self, tenant: Option<&str>) -> Value {
        let ctx = CallerContext {
            tenant,
            ..CallerContext::default()
        };
        match self.tenant_of(&ctx) {
            None => json!({"object": "list", "data": []}),
            Some(None) => self.list_models(),
            Some(Some(t)) => self.listing(
                |target| t.names.as_ref().is_none_or(|n| n.contains(&target)),
                |model| {
                    t.models
                        .as_ref()
                        .is_none_or(|m| u16::try_from(model).is_ok_and(|i| m.contains(&i)))
                },
            ),
        }
    }

    /// The listing of the names `name_ok` keeps, with the models `model_ok` keeps behind them.
    fn listing(
        &self,
        name_ok: impl Fn(TargetKind) -> bool,
        model_ok: impl Fn(usize) -> bool,
    ) -> Value {
        let mut data = Vec::new();
        let ids = |indices: &mut dyn Iterator<Item = usize>| -> Vec<&str> {
            indices
                .filter(|&i| model_ok(i))
                .filter_map(|i| self.models.get(i))
                .map(|m| m.id.as_str())
                .collect()
        };
        let all = ids(&mut (0..self.models.len()));
        if name_ok(TargetKind::Auto) && !all.is_empty() {
            data.push(self.group(AUTO_ALIAS, "auto", None, all));
        }
        for (i, t) in self.tiers.iter().enumerate() {
            let models = ids(&mut t.models.iter().copied());
            if name_ok(TargetKind::Tier(i)) && !models.is_empty() {
                data.push(self.group(&t.alias, "tier", Some(&t.name), models));
            }
        }
        for (i, a) in self.pinned.iter().enumerate() {
            if let Some(m) = self.models.get(a.model)
                && name_ok(TargetKind::Pinned(i))
                && model_ok(a.model)
            {
                data.push(self.entry(&a.name, "pinned", m));
            }
        }
        if self.passthrough {
            for (i, m) in self.models.iter().enumerate() {
                if name_ok(TargetKind::Passthrough(i)) && model_ok(i) {
                    data.push(self.entry(&m.id, "model", m));
                }
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
