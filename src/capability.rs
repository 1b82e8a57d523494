//! The request capabilities and a bitset of them.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

/// A feature a request needs from the model that serves it.
///
/// ```
/// use fluxroute::Capability;
/// assert_eq!(Capability::JsonSchema.as_str(), "json_schema");
/// assert_eq!("vision".parse::<Capability>(), Ok(Capability::Vision));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Capability {
    /// Function/tool calling: tool definitions, tool calls or tool results in the history.
    Tools,
    /// Image input: an image content part or block.
    Vision,
    /// Audio input: an `input_audio` content part.
    AudioInput,
    /// File input: a file part or a document block.
    FileInput,
    /// JSON mode: a `json_object` response format.
    JsonMode,
    /// Structured output: a `json_schema` response format.
    JsonSchema,
    /// A reasoning effort other than `none`/`minimal`, a `reasoning` object, or extended
    /// thinking.
    Reasoning,
    /// `logprobs: true`, `top_logprobs`, or output logprobs in `include`.
    Logprobs,
    /// Audio output: `"audio"` in `modalities`, or an `audio` output configuration.
    AudioOutput,
    /// Built-in web search: `web_search_options` or a web search tool.
    WebSearch,
}

impl Capability {
    /// How many capabilities there are.
    pub const COUNT: usize = 10;

    /// Every capability, in canonical order.
    pub const ALL: [Capability; Capability::COUNT] = [
        Capability::Tools,
        Capability::Vision,
        Capability::AudioInput,
        Capability::FileInput,
        Capability::JsonMode,
        Capability::JsonSchema,
        Capability::Reasoning,
        Capability::Logprobs,
        Capability::AudioOutput,
        Capability::WebSearch,
    ];

    /// The stable name used in policies, decisions and `/v1/models`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Capability::Tools => "tools",
            Capability::Vision => "vision",
            Capability::AudioInput => "audio_input",
            Capability::FileInput => "file_input",
            Capability::JsonMode => "json_mode",
            Capability::JsonSchema => "json_schema",
            Capability::Reasoning => "reasoning",
            Capability::Logprobs => "logprobs",
            Capability::AudioOutput => "audio_output",
            Capability::WebSearch => "web_search",
        }
    }

    /// The Chat Completions parameter that usually asks for this capability; error bodies
    /// name the field that did (see
    /// [`RequestFeatures::param_for`](crate::RequestFeatures::param_for)).
    pub const fn param(self) -> &'static str {
        match self {
            Capability::Tools => "tools",
            Capability::Vision | Capability::AudioInput | Capability::FileInput => "messages",
            Capability::JsonMode | Capability::JsonSchema => "response_format",
            Capability::Reasoning => "reasoning_effort",
            Capability::Logprobs => "logprobs",
            Capability::AudioOutput => "modalities",
            Capability::WebSearch => "web_search_options",
        }
    }

    /// This capability's position in [`Capability::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    const fn bit(self) -> u16 {
        1 << (self as u8)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a capability name that is not one of [`Capability::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability `{0}`")]
pub struct UnknownCapability(pub String);

impl std::str::FromStr for Capability {
    type Err = UnknownCapability;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Capability::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCapability(s.to_owned()))
    }
}

/// A set of capabilities, one bit each.
///
/// ```
/// use fluxroute::{Capability, CapabilitySet};
/// let need = CapabilitySet::EMPTY.with(Capability::Tools);
/// let has = CapabilitySet::from_iter([Capability::Tools, Capability::Vision]);
/// assert!(has.contains_all(need));
/// assert_eq!(need.missing_from(has), None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CapabilitySet(u16);

impl CapabilitySet {
    /// The empty set.
    pub const EMPTY: CapabilitySet = CapabilitySet(0);

    /// This set plus `cap`.
    #[must_use]
    pub const fn with(self, cap: Capability) -> Self {
        CapabilitySet(self.0 | cap.bit())
    }

    /// Adds `cap` in place.
    pub fn insert(&mut self, cap: Capability) {
        self.0 |= cap.bit();
    }

    /// Whether `cap` is in the set.
    pub const fn contains(self, cap: Capability) -> bool {
        self.0 & cap.bit() != 0
    }

    /// Whether every capability of `other` is in this set.
    pub const fn contains_all(self, other: CapabilitySet) -> bool {
        self.0 & other.0 == other.0
    }

    /// The first capability of this set (in canonical order) that `have` lacks.
    #[inline]
    pub fn missing_from(self, have: CapabilitySet) -> Option<Capability> {
        let missing = CapabilitySet(self.0 & !have.0);
        if missing.is_empty() {
            return None;
        }
        missing.iter().next()
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The capabilities in canonical order.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }

    /// The capability names in canonical order.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Capability::as_str).collect()
    }
}

/// Serialized as the list of names, in canonical order.
impl Serialize for CapabilitySet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(Capability::as_str))
    }
}

impl FromIterator<Capability> for CapabilitySet {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        iter.into_iter()
            .fold(CapabilitySet::EMPTY, CapabilitySet::with)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bits_are_distinct() {
        let mut all = CapabilitySet::EMPTY;
        for c in Capability::ALL {
            assert_eq!(c.as_str().parse::<Capability>(), Ok(c));
            assert!(!all.contains(c));
            all.insert(c);
        }
        assert_eq!(all.iter().count(), Capability::COUNT);
        assert!("video".parse::<Capability>().is_err());
    }

    #[test]
    fn missing_from_names_the_first_lacking_capability() {
        let need = CapabilitySet::from_iter([Capability::Vision, Capability::Logprobs]);
        let have = CapabilitySet::from_iter([Capability::Vision]);
        assert_eq!(need.missing_from(have), Some(Capability::Logprobs));
        assert!(!have.contains_all(need));
    }
}
