//! What a Chat Completions body means: the fields classification reads, walked once with the
//! scanner, into the state [`Classification::finish`] turns into features.

use super::estimate::TextCounts;
use super::scan::{Cursor, Kind, Str, Word};
use super::window::{UserMessage, last_user_matches};
use crate::capability::{Capability, CapabilitySet};
use crate::clip;
use crate::error::{ErrorCode, RouteError};
use crate::features::{Fnv, RequestFeatures};
use crate::patterns::Matches;
use crate::policy::CompiledPolicy;

fn invalid(param: &str, message: String) -> RouteError {
    RouteError::new(ErrorCode::InvalidRequest, message).with_param(param)
}

/// The kind of the value at the cursor, from its first byte, for "must be ..., got ..."
/// errors; a syntax error when no value starts there.
fn kind_at(c: &mut Cursor<'_>) -> Result<&'static str, RouteError> {
    Ok(match c.peek() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        Some(b'-' | b'0'..=b'9') => "a number",
        _ => return Err(c.syntax("expected value")),
    })
}

/// The value at the cursor when it is a string, as its [`Word`] and its text; any other value
/// is an `invalid_request` error for the member at path `param`.
fn string_word<'a>(
    c: &mut Cursor<'a>,
    param: impl FnOnce() -> String,
) -> Result<(Word, Str<'a>), RouteError> {
    if let Some(found) = c.word_value() {
        return Ok(found);
    }
    match c.value(None)? {
        Kind::Str(s) => Ok((s.word(), s)),
        k => {
            let p = param();
            Err(invalid(
                &p,
                format!("`{p}` must be a string, got {}", k.name()),
            ))
        }
    }
}

/// The top-level keys classification reads; each may appear once.
const TOP_LEVEL: [&str; 12] = [
    "model",
    "messages",
    "max_completion_tokens",
    "max_tokens",
    "tools",
    "functions",
    "response_format",
    "reasoning_effort",
    "reasoning",
    "logprobs",
    "top_logprobs",
    "user",
];

/// The keys of a message classification reads, by the bit each has; each may appear once.
const MESSAGE_NAMES: [&str; 5] = ["role", "content", "tool_calls", "function_call", "name"];

/// The keys of a content part classification reads, by bit; each may appear once.
const PART_NAMES: [&str; 7] = [
    "type",
    "text",
    "refusal",
    "image_url",
    "image",
    "input_audio",
    "file",
];

/// The keys already read in one object. JSON readers disagree about a repeated key (Python,
/// JavaScript, Go and `serde_json`'s `Value` keep the last copy, a streaming reader sees every
/// one), so a body that repeats a key classification reads is refused as `invalid_json`
/// rather than read differently from the upstream that serves it.
#[derive(Default)]
struct Seen(u32);

impl Seen {
    /// Marks key `bit` as read; an error naming `path` when it was read before.
    #[inline]
    fn once(&mut self, bit: usize, path: impl FnOnce() -> String) -> Result<(), RouteError> {
        let b = 1u32 << (bit % 32);
        if self.0 & b != 0 {
            let p = path();
            let msg = format!(
                "the key `{p}` appears more than once; each field of a request may be given once"
            );
            return Err(RouteError::new(ErrorCode::InvalidJson, msg).with_param(p));
        }
        self.0 |= b;
        Ok(())
    }
}

/// The keys and values of messages and content parts that classification reads.
mod words {
    use super::super::scan::{Word, word};

    pub const ROLE: Word = word("role");
    pub const CONTENT: Word = word("content");
    pub const TOOL_CALLS: Word = word("tool_calls");
    pub const FUNCTION_CALL: Word = word("function_call");
    pub const NAME: Word = word("name");
    pub const TYPE: Word = word("type");

    pub const USER: Word = word("user");
    pub const ASSISTANT: Word = word("assistant");
    pub const SYSTEM: Word = word("system");
    pub const DEVELOPER: Word = word("developer");
    pub const TOOL: Word = word("tool");
    pub const FUNCTION: Word = word("function");

    pub const TEXT: Word = word("text");
    pub const REFUSAL: Word = word("refusal");
    pub const INPUT_TEXT: Word = word("input_text");
    pub const IMAGE_URL: Word = word("image_url");
    pub const IMAGE: Word = word("image");
    pub const INPUT_IMAGE: Word = word("input_image");
    pub const INPUT_AUDIO: Word = word("input_audio");
    pub const FILE: Word = word("file");
    pub const INPUT_FILE: Word = word("input_file");
    pub const JSON_OBJECT: Word = word("json_object");
    pub const JSON_SCHEMA: Word = word("json_schema");
}

const ROLES: [&str; 6] = [
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Unknown,
    User,
    Assistant,
    Tool,
    Other,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PartType {
    Text,
    Image,
    Audio,
    File,
}

/// How much of the first user message the sticky key hashes.
const KEY_PREFIX: usize = 256;

/// What one message's text parts added up to, before its role is known.
#[derive(Default)]
struct MessageText<'a> {
    counts: TextCounts,
    pieces: u32,
    first: Option<Str<'a>>,
    last: Option<Str<'a>>,
    hash: Option<Fnv>,
    hashed: usize,
    /// The role came first and is not `user`: the text keys no split and is not hashed.
    not_user: bool,
}

/// The state of one classification.
pub(super) struct Classification<'p, 'a> {
    policy: &'p CompiledPolicy,
    model: Option<Str<'a>>,
    messages: Option<u32>,
    prompt: TextCounts,
    capabilities: CapabilitySet,
    max_completion_tokens: Option<u32>,
    max_tokens: Option<u32>,
    user: Option<u64>,
    first_user: Option<u64>,
    last_user: Option<UserMessage<'a>>,
}

impl<'p, 'a> Classification<'p, 'a> {
    pub(super) fn new(policy: &'p CompiledPolicy) -> Self {
        Classification {
            policy,
            model: None,
            messages: None,
            prompt: TextCounts::default(),
            capabilities: CapabilitySet::EMPTY,
            max_completion_tokens: None,
            max_tokens: None,
            user: None,
            first_user: None,
            last_user: None,
        }
    }

    pub(super) fn body(&mut self, c: &mut Cursor<'a>) -> Result<(), RouteError> {
        c.begin_object()?;
        let mut first = true;
        let mut buf = [0u8; 32];
        let mut seen = Seen::default();
        while let Some(key) = c.next_key(&mut first, None)? {
            let name = key.small(&mut buf);
            if let Some(bit) = TOP_LEVEL.iter().position(|&k| k == name) {
                seen.once(bit, || name.to_owned())?;
            }
            match name {
                "model" => match c.value(None)? {
                    Kind::Str(s) => self.model = Some(s),
                    k => {
                        let msg = format!("`model` must be a string, got {}", k.name());
                        return Err(invalid("model", msg));
                    }
                },
                "messages" => self.messages = Some(self.messages(c)?),
                "max_completion_tokens" => {
                    self.max_completion_tokens = token_count(c, "max_completion_tokens")?
                }
                "max_tokens" => self.max_tokens = token_count(c, "max_tokens")?,
                name @ ("tools" | "functions") => {
                    let param = if name == "tools" {
                        "tools"
                    } else {
                        "functions"
                    };
                    match c.peek() {
                        Some(b'[' | b'n') => {}
                        _ => {
                            let msg = format!("`{param}` must be an array, got {}", kind_at(c)?);
                            return Err(invalid(param, msg));
                        }
                    }
                    if let Kind::Array(true) = c.value(Some(&mut self.prompt))? {
                        self.capabilities.insert(Capability::Tools);
                    }
                }
                "response_format" => self.response_format(c)?,
                "reasoning_effort" | "reasoning" => {
                    if !matches!(c.value(None)?, Kind::Null) {
                        self.capabilities.insert(Capability::Reasoning);
                    }
                }
                "logprobs" => match c.value(None)? {
                    Kind::Bool(true) => self.capabilities.insert(Capability::Logprobs),
                    Kind::Bool(false) | Kind::Null => {}
                    k => {
                        let msg = format!("`logprobs` must be a boolean, got {}", k.name());
                        return Err(invalid("logprobs", msg));
                    }
                },
                "top_logprobs" => match c.value(None)? {
                    Kind::Null => {}
                    Kind::UInt(_) => self.capabilities.insert(Capability::Logprobs),
                    k => {
                        let msg = format!("`top_logprobs` must be an integer, got {}", k.name());
                        return Err(invalid("top_logprobs", msg));
                    }
                },
                "user" => {
                    if let Kind::Str(user) = c.value(None)? {
                        let mut h = Fnv::new();
                        hash_text(&mut h, user, usize::MAX);
                        self.user = Some(h.finish());
                    }
                }
                _ => {
                    c.value(None)?;
                }
            }
        }
        Ok(())
    }

    /// `response_format`: its `type` sets json_mode/json_schema; a schema's text counts.
    fn response_format(&mut self, c: &mut Cursor<'a>) -> Result<(), RouteError> {
        match c.peek() {
            Some(b'{') => {}
            Some(b'n') => return c.value(None).map(drop),
            _ => {
                let msg = format!("`response_format` must be an object, got {}", kind_at(c)?);
                return Err(invalid("response_format", msg));
            }
        }
        c.begin_object()?;
        let mut first = true;
        let mut seen = Seen::default();
        while let Some(key) = c.next_key_word(&mut first)? {
            if key != words::TYPE {
                c.value(Some(&mut self.prompt))?;
                continue;
            }
            let param = "response_format.type";
            seen.once(0, || param.to_owned())?;
            match string_word(c, || param.to_owned())? {
                (words::JSON_OBJECT, _) => self.capabilities.insert(Capability::JsonMode),
                (words::JSON_SCHEMA, _) => self.capabilities.insert(Capability::JsonSchema),
                (words::TEXT, _) => {}
                (_, s) => {
                    let msg = format!(
                        "unknown `{param}` `{}`; expected `text`, `json_object` or `json_schema`",
                        clip::name(&s.decode())
                    );
                    return Err(invalid(param, msg));
                }
            }
        }
        Ok(())
    }

    fn messages(&mut self, c: &mut Cursor<'a>) -> Result<u32, RouteError> {
        if c.peek() != Some(b'[') {
            let msg = format!("`messages` must be an array, got {}", kind_at(c)?);
            return Err(invalid("messages", msg));
        }
        c.begin_array()?;
        let limit = self.policy.limits.max_messages;
        let mut first = true;
        let mut count: u32 = 0;
        while c.next_element(&mut first)? {
            if count == limit {
                let msg = format!("more than {limit} messages, the policy's limit");
                return Err(RouteError::new(ErrorCode::RequestTooLarge, msg).with_param("messages"));
            }
            self.message(c, count)?;
            count += 1;
        }
        if count == 0 {
            return Err(invalid("messages", "`messages` must not be empty".into()));
        }
        Ok(count)
    }

    fn message(&mut self, c: &mut Cursor<'a>, i: u32) -> Result<(), RouteError> {
        if c.peek() != Some(b'{') {
            let p = format!("messages[{i}]");
            let msg = format!("`{p}` must be an object, got {}", kind_at(c)?);
            return Err(invalid(&p, msg));
        }
        c.begin_object()?;
        let mut role = Role::Unknown;
        // Text is gathered per message since `role` may come after `content`.
        let mut text = MessageText::default();
        let mut has_content = false;
        let mut first = true;
        let mut seen = Seen::default();
        while let Some(key) = c.next_key_word(&mut first)? {
            let once = |seen: &mut Seen, bit: usize| {
                seen.once(bit, || {
                    format!("messages[{i}].{}", MESSAGE_NAMES.get(bit).unwrap_or(&""))
                })
            };
            match key {
                words::ROLE => {
                    once(&mut seen, 0)?;
                    role = match string_word(c, || format!("messages[{i}].role"))? {
                        (words::USER, _) => Role::User,
                        (words::ASSISTANT, _) => Role::Assistant,
                        (words::TOOL | words::FUNCTION, _) => Role::Tool,
                        (words::SYSTEM | words::DEVELOPER, _) => Role::Other,
                        (_, s) => {
                            let p = format!("messages[{i}].role");
                            let msg = format!(
                                "unknown role `{}` in `{p}`; expected one of {}",
                                clip::name(&s.decode()),
                                ROLES.join(", ")
                            );
                            return Err(invalid(&p, msg));
                        }
                    }
                }
                words::CONTENT => {
                    once(&mut seen, 1)?;
                    text.not_user = !matches!(role, Role::User | Role::Unknown);
                    has_content = self.content(c, i, &mut text)?;
                }
                words::TOOL_CALLS | words::FUNCTION_CALL => {
                    once(&mut seen, if key == words::TOOL_CALLS { 2 } else { 3 })?;
                    if let Kind::Array(true) | Kind::Object(true) =
                        c.value(Some(&mut self.prompt))?
                    {
                        self.capabilities.insert(Capability::Tools);
                    }
                }
                words::NAME => {
                    once(&mut seen, 4)?;
                    c.value(Some(&mut self.prompt))?;
                    self.prompt.add(1);
                }
                _ => {
                    c.value(None)?;
                }
            }
        }
        match role {
            Role::Unknown => {
                let p = format!("messages[{i}].role");
                return Err(invalid(&p, format!("`{p}` is required")));
            }
            Role::User | Role::Other | Role::Tool if !has_content => {
                let p = format!("messages[{i}].content");
                return Err(invalid(&p, format!("`{p}` is required for this role")));
            }
            _ => {}
        }
        // Per-message framing, as chat formats add it.
        self.prompt.add(3);
        if role == Role::Tool {
            self.capabilities.insert(Capability::Tools);
        }
        let counts = text.counts.totals();
        self.prompt.add_counts(&counts);
        if role == Role::User {
            // A user message's own total is kept for the score.
            if self.first_user.is_none() {
                self.first_user = text.hash.map(Fnv::finish);
            }
            self.last_user = Some(UserMessage {
                counts,
                first: text.first,
                last: text.last,
            });
        }
        Ok(())
    }

    /// `content`: a string, null, or an array of parts. Returns whether content was present.
    fn content(
        &mut self,
        c: &mut Cursor<'a>,
        i: u32,
        text: &mut MessageText<'a>,
    ) -> Result<bool, RouteError> {
        match c.peek() {
            Some(b'"') => {
                let s = c.string(Some(&mut text.counts))?;
                self.piece(text, s);
                Ok(true)
            }
            Some(b'n') => c.value(None).map(|_| false),
            Some(b'[') => {
                c.begin_array()?;
                let (mut first, mut part) = (true, 0u32);
                while c.next_element(&mut first)? {
                    self.part(c, i, part, text)?;
                    part += 1;
                }
                Ok(true)
            }
            _ => {
                let p = format!("messages[{i}].content");
                let msg = format!(
                    "`{p}` must be a string or an array of parts, got {}",
                    kind_at(c)?
                );
                Err(invalid(&p, msg))
            }
        }
    }

    /// One piece of message text (already estimated): kept for the patterns and hashed for
    /// the sticky key.
    fn piece(&mut self, text: &mut MessageText<'a>, s: Str<'a>) {
        text.pieces += 1;
        if text.first.is_none() {
            text.first = Some(s);
        }
        text.last = Some(s);
        // Only the first user message keys splits; later ones are not hashed.
        if self.first_user.is_none() && !text.not_user {
            let room = KEY_PREFIX.saturating_sub(text.hashed);
            text.hashed += hash_text(text.hash.get_or_insert_with(Fnv::new), s, room);
        }
    }

    /// One content part: `{"type": "text", "text": ...}`, `image_url`, `image`,
    /// `input_audio`, `file` or `refusal`.
    fn part(
        &mut self,
        c: &mut Cursor<'a>,
        i: u32,
        n: u32,
        text: &mut MessageText<'a>,
    ) -> Result<(), RouteError> {
        let path = || format!("messages[{i}].content[{n}]");
        if c.peek() != Some(b'{') {
            let p = path();
            let msg = format!("`{p}` must be a content part object, got {}", kind_at(c)?);
            return Err(invalid(&p, msg));
        }
        c.begin_object()?;
        let mut kind: Option<PartType> = None;
        // Text may come before `type`; it is kept (as a span) until the type is known.
        let mut part_text: Option<(Str<'a>, TextCounts)> = None;
        let mut has_payload = false;
        let mut first = true;
        let mut seen = Seen::default();
        while let Some(key) = c.next_key_word(&mut first)? {
            let once = |seen: &mut Seen, bit: usize| {
                seen.once(bit, || {
                    format!("{}.{}", path(), PART_NAMES.get(bit).unwrap_or(&""))
                })
            };
            match key {
                words::TYPE => {
                    once(&mut seen, 0)?;
                    kind = Some(match string_word(c, || format!("{}.type", path()))? {
                        (words::TEXT | words::REFUSAL | words::INPUT_TEXT, _) => PartType::Text,
                        (words::IMAGE_URL | words::IMAGE | words::INPUT_IMAGE, _) => {
                            PartType::Image
                        }
                        (words::INPUT_AUDIO, _) => PartType::Audio,
                        (words::FILE | words::INPUT_FILE, _) => PartType::File,
                        (_, s) => {
                            let p = path();
                            let msg = format!(
                                "unknown content part type `{}` in `{p}`; expected text, image_url, input_audio or file",
                                clip::name(&s.decode())
                            );
                            return Err(invalid(&format!("{p}.type"), msg));
                        }
                    });
                }
                words::TEXT | words::REFUSAL => {
                    once(&mut seen, if key == words::TEXT { 1 } else { 2 })?;
                    if c.peek() != Some(b'"') {
                        let p = format!("{}.text", path());
                        let msg = format!("`{p}` must be a string, got {}", kind_at(c)?);
                        return Err(invalid(&p, msg));
                    }
                    let mut counts = TextCounts::default();
                    let s = c.string(Some(&mut counts))?;
                    part_text = Some((s, counts));
                }
                words::IMAGE_URL | words::IMAGE | words::INPUT_AUDIO | words::FILE => {
                    let bit = match key {
                        words::IMAGE_URL => 3,
                        words::IMAGE => 4,
                        words::INPUT_AUDIO => 5,
                        _ => 6,
                    };
                    once(&mut seen, bit)?;
                    // Media payloads (URLs, base64) are not prompt text.
                    if !matches!(c.value(None)?, Kind::Null) {
                        has_payload = true;
                    }
                }
                _ => {
                    c.value(None)?;
                }
            }
        }
        let limits = self.policy.limits;
        match kind {
            None => {
                let p = format!("{}.type", path());
                Err(invalid(&p, format!("`{p}` is required")))
            }
            Some(PartType::Text) => match part_text {
                Some((s, counts)) => {
                    text.counts.add_counts(&counts.totals());
                    self.piece(text, s);
                    Ok(())
                }
                None => {
                    let p = format!("{}.text", path());
                    Err(invalid(&p, format!("`{p}` is required for a text part")))
                }
            },
            Some(media) => {
                if !has_payload {
                    let p = path();
                    return Err(invalid(&p, format!("`{p}` has no payload for its type")));
                }
                let (cap, tokens) = match media {
                    PartType::Image => (Capability::Vision, limits.image_tokens),
                    PartType::Audio => (Capability::AudioInput, limits.audio_tokens),
                    _ => (Capability::FileInput, limits.file_tokens),
                };
                self.capabilities.insert(cap);
                self.prompt.add(tokens);
                Ok(())
            }
        }
    }

    pub(super) fn finish(self) -> Result<RequestFeatures, RouteError> {
        let policy = self.policy;
        let Some(model) = self.model else {
            return Err(invalid(
                "model",
                "you must provide a model parameter".into(),
            ));
        };
        let Some(messages) = self.messages else {
            return Err(invalid(
                "messages",
                "you must provide a messages parameter".into(),
            ));
        };
        let name = model.decode();
        let Some(target) = policy.resolve(&name) else {
            let mut msg = format!("the model `{}` does not exist", clip::name(&name));
            if let Some(hint) = policy.hints.closest(&name) {
                msg.push_str(&format!("; did you mean `{hint}`"));
            }
            return Err(RouteError::new(ErrorCode::ModelNotFound, msg).with_param("model"));
        };
        let mut prompt = self.prompt;
        // Every reply is primed with a few tokens.
        prompt.add(3);
        let (last_user_tokens, matched) = match self.last_user {
            Some(u) => (u.counts.tokens(), last_user_matches(&policy.patterns, &u)),
            None => (0, Matches::default()),
        };
        let (complexity, complexity_score) = policy.score(
            last_user_tokens,
            messages,
            self.capabilities.contains(Capability::Tools),
            &matched,
        );
        Ok(RequestFeatures {
            target,
            prompt_tokens: prompt.tokens(),
            max_output_tokens: self.max_completion_tokens.or(self.max_tokens),
            capabilities: self.capabilities,
            complexity,
            complexity_score,
            messages,
            matched: matched.bits,
            key: self.user.or(self.first_user).unwrap_or(0),
        })
    }
}

/// Reads an optional token count (`max_tokens` and the like): a positive integer or null.
fn token_count(c: &mut Cursor<'_>, param: &str) -> Result<Option<u32>, RouteError> {
    match c.value(None)? {
        Kind::Null => Ok(None),
        Kind::UInt(n) if n > 0 => Ok(Some(u32::try_from(n).unwrap_or(u32::MAX))),
        Kind::UInt(_) => Err(invalid(param, format!("`{param}` must be at least 1"))),
        k => Err(invalid(
            param,
            format!("`{param}` must be an integer, got {}", k.name()),
        )),
    }
}

/// Hashes into `h` the first `limit` bytes of the decoded text of `s`, so that the same text hashes
/// the same however it is escaped; returns how many bytes it hashed.
fn hash_text(h: &mut Fnv, s: Str<'_>, limit: usize) -> usize {
    let mut done = 0;
    for (text, c) in s.runs() {
        let mut buf = [0u8; 4];
        let escaped = c.map_or("", |c| c.encode_utf8(&mut buf));
        for piece in [text, escaped] {
            let bytes = piece.as_bytes();
            let take = bytes.get(..limit - done).unwrap_or(bytes);
            h.write(take);
            done += take.len();
            if done == limit {
                return done;
            }
        }
    }
    done
}
