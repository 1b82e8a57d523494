//! The gateway's configuration: an upstream per provider, and the API keys clients present,
//! each naming the tenant it belongs to.
//!
//! ```toml
//! [providers.openai]
//! base_url = "https://api.openai.com/v1"
//! api_key_env = "OPENAI_API_KEY"      # the key sent upstream, read from this variable
//!
//! [providers.anthropic]
//! base_url = "https://api.anthropic.com/v1"
//! api_key_env = "ANTHROPIC_API_KEY"
//!
//! [keys]                              # client key -> tenant
//! "sk-team-free" = "free"
//! ```

use std::collections::HashMap;
use std::path::Path;

use fluxroute::CompiledPolicy;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    providers: HashMap<String, Provider>,
    #[serde(default)]
    keys: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Provider {
    base_url: String,
    api_key_env: Option<String>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The tenant a client key belongs to; unknown keys belong to none.
    pub fn tenant_of(&self, key: &str) -> Option<&str> {
        self.keys.get(key).map(String::as_str)
    }

    /// A provider's base URL.
    pub fn base_url(&self, provider: &str) -> Option<String> {
        self.providers.get(provider).map(|p| p.base_url.clone())
    }

    /// The key sent upstream for `model`: its provider's variable, when set.
    pub fn key_for(&self, policy: &CompiledPolicy, model: &str) -> Option<String> {
        let provider = self.providers.get(policy.model_provider(model)?)?;
        std::env::var(provider.api_key_env.as_deref()?).ok()
    }
}
