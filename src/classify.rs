//! Classification: one streaming pass over a chat body into small, copyable request features.

use std::fmt;

use serde::Deserialize;

use crate::capability::{Capability, CapabilitySet};
use crate::error::{ErrorCode, RouteError};
use crate::estimate::{Counts, TextCounts};
use crate::policy::{CompiledPolicy, Matches, Target};
use crate::scan::{Cursor, Kind, Str, Word, syntax_error};

/// How demanding a request is; `flux-auto` maps each class to a tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Complexity {
    /// Greetings, thanks, short factual questions.
    Simple,
    /// Explanations, summaries, short creative writing.
    Standard,
    /// Multi-part technical work, debugging, design.
    Complex,
    /// Explicit step-by-step reasoning, proofs, analysis under constraints.
    Reasoning,
}

impl Complexity {
    /// Every class, from least to most demanding.
    pub const ALL: [Complexity; 4] = [
        Complexity::Simple,
        Complexity::Standard,
        Complexity::Complex,
        Complexity::Reasoning,
    ];

    /// `"simple"`, `"standard"`, `"complex"` or `"reasoning"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Complexity::Simple => "simple",
            Complexity::Standard => "standard",
            Complexity::Complex => "complex",
            Complexity::Reasoning => "reasoning",
        }
    }
}

impl fmt::Display for Complexity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the engine reads from one request: small and `Copy`, the only input of routing.
///
/// Made by [`CompiledPolicy::classify`] from a body, or by hand with
/// [`RequestFeatures::new`] for simulations and tests.
///
/// ```
/// use fluxroute::{Capability, CompiledPolicy, Complexity};
/// let policy = CompiledPolicy::embedded();
/// let f = policy.classify(br#"{"model": "flux-auto", "max_tokens": 100,
///     "messages": [{"role": "user", "content": [
///         {"type": "text", "text": "what is in this picture?"},
///         {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]}"#)?;
/// assert!(f.capabilities.contains(Capability::Vision));
/// assert_eq!(f.max_output_tokens, Some(100));
/// assert_eq!(f.complexity, Complexity::Simple);
/// # Ok::<(), fluxroute::RouteError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestFeatures {
    /// What the `model` field names.
    pub target: Target,
    /// Estimated prompt tokens: messages, tool definitions, response schema, media parts.
    pub prompt_tokens: u32,
    /// `max_completion_tokens`, else `max_tokens`, else `None`.
    pub max_output_tokens: Option<u32>,
    /// Capabilities the request needs.
    pub capabilities: CapabilitySet,
    /// The complexity class.
    pub complexity: Complexity,
    /// The complexity score in `[0, 1]`.
    pub complexity_score: f32,
    /// Number of messages.
    pub messages: u32,
    /// Bit `i`: pattern `i` of the policy matched the last user message.
    pub matched: u64,
    /// Stable key for sticky weighted splits: a hash of `user`, else of the first user message.
    pub key: u64,
}

impl RequestFeatures {
    /// Features of an empty, simple request for `target`; set fields to taste.
    pub fn new(target: Target) -> Self {
        RequestFeatures {
            target,
            prompt_tokens: 0,
            max_output_tokens: None,
            capabilities: CapabilitySet::EMPTY,
            complexity: Complexity::Simple,
            complexity_score: 0.0,
            messages: 1,
            matched: 0,
            key: 0,
        }
    }
}

/// FNV-1a, 64 bits: a stable hash across runs, machines and versions.
#[derive(Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Fnv {
    pub const fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// Hashes the first `limit` bytes of the decoded text of `s`, so that the same text hashes
    /// the same however it is escaped; returns how many bytes it hashed.
    fn write_text(&mut self, s: Str<'_>, limit: usize) -> usize {
        let mut done = 0;
        for (text, c) in s.runs() {
            let mut buf = [0u8; 4];
            let escaped = c.map_or("", |c| c.encode_utf8(&mut buf));
            for piece in [text, escaped] {
                let bytes = piece.as_bytes();
                let take = bytes.get(..limit - done).unwrap_or(bytes);
                self.write(take);
                done += take.len();
                if done == limit {
                    return done;
                }
            }
        }
        done
    }

    pub const fn finish(self) -> u64 {
        self.0
    }
}

impl CompiledPolicy {
    /// Reads a chat body into [`RequestFeatures`].
    ///
    /// One forward pass over the bytes: no DOM, no copies of message text (the last user
    /// message is decoded into one buffer only when patterns must see text that has escapes
    /// or several parts). Errors: `request_too_large` (body or message count above the
    /// limits), `invalid_json`, `invalid_request`, `model_not_found` (with a "did you mean"
    /// hint).
    pub fn classify(&self, body: &[u8]) -> Result<RequestFeatures, RouteError> {
        let limit = self.limits.max_body_bytes;
        if body.len() > limit {
            return Err(RouteError::new(
                ErrorCode::RequestTooLarge,
                format!(
                    "request body is {} bytes, above the limit of {limit}",
                    body.len()
                ),
            ));
        }
        // SIMD validation; the standard library's only to place an error.
        let valid = simdutf8::basic::from_utf8(body).or_else(|_| std::str::from_utf8(body));
        let text = valid.map_err(|e| {
            let valid = body
                .get(..e.valid_up_to())
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or("");
            syntax_error(valid, valid.len(), "invalid UTF-8")
        })?;
        let mut c = Cursor::new(text);
        match c.peek() {
            Some(b'{') => {}
            Some(b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
                return Err(RouteError::new(
                    ErrorCode::InvalidJson,
                    "request body must be a JSON object",
                ));
            }
            None => return Err(c.syntax("EOF while parsing a value")),
            Some(_) => return Err(c.syntax("expected value")),
        }
        let mut scan = Scan::new(self);
        scan.body(&mut c)?;
        c.end()?;
        scan.finish()
    }
}

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

/// The keys and values of messages and content parts that classification reads.
mod words {
    use crate::scan::{Word, word};

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

/// How many bytes of the last user message's decoded text the policy's patterns see at most:
/// all of it when shorter, else its head and tail, half each (instructions sit at either end of
/// long pastes).
pub const PATTERN_WINDOW: usize = 16 << 10;

/// A position at or before `at` in a raw JSON string where a character outside any escape
/// starts (escapes use only backslash, quote, slash, `bfnrtu` and hex digits, so a byte outside
/// those is in none); 0 when there is none.
fn literal_before(raw: &str, at: usize) -> usize {
    let bytes = raw.as_bytes();
    let found = bytes.get(..at).and_then(|b| {
        b.iter().rposition(|&b| {
            !matches!(b, b'\\' | b'"' | b'/' | b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' | b'n' | b'r' | b't' | b'u')
        })
    });
    // Escapes are ASCII, so the character holding a non-ASCII byte lies outside them.
    found
        .and_then(|i| (0..=i).rev().find(|&p| raw.is_char_boundary(p)))
        .unwrap_or(0)
}

/// A position in `s.raw` outside any escape from which its decoded text holds at least `keep`
/// bytes; 0 when all of it holds fewer. Found backward in steps as long as the bytes still
/// missing: a raw byte decodes to at most one byte, so no step overshoots by more than one
/// escape, and about `keep` raw bytes are read when the text is mostly literal (an escape is up
/// to six raw bytes per decoded one, so at most six times that).
fn tail_start(s: Str<'_>, keep: usize) -> usize {
    let raw = s.raw;
    let (mut from, mut have) = (raw.len(), 0);
    while have < keep && from > 0 {
        let next = literal_before(raw, from - (keep - have).min(from));
        let piece = Str {
            raw: raw.get(next..from).unwrap_or(""),
            escaped: s.escaped,
        };
        have += piece
            .runs()
            .map(|(text, c)| text.len() + c.map_or(0, char::len_utf8))
            .sum::<usize>();
        from = next;
    }
    from
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

/// The last user message: its token counts and the pieces of text patterns look at.
#[derive(Clone, Copy)]
struct UserMessage<'a> {
    counts: Counts,
    first: Option<Str<'a>>,
    last: Option<Str<'a>>,
}

/// The state of one classification.
struct Scan<'p, 'a> {
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

impl<'p, 'a> Scan<'p, 'a> {
    fn new(policy: &'p CompiledPolicy) -> Self {
        Scan {
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

    fn body(&mut self, c: &mut Cursor<'a>) -> Result<(), RouteError> {
        c.begin_object()?;
        let mut first = true;
        let mut buf = [0u8; 32];
        while let Some(key) = c.next_key(&mut first, None)? {
            match key.small(&mut buf) {
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
                        h.write_text(user, usize::MAX);
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
        while let Some(key) = c.next_key_word(&mut first)? {
            if key != words::TYPE {
                c.value(Some(&mut self.prompt))?;
                continue;
            }
            let param = "response_format.type";
            match string_word(c, || param.to_owned())? {
                (words::JSON_OBJECT, _) => self.capabilities.insert(Capability::JsonMode),
                (words::JSON_SCHEMA, _) => self.capabilities.insert(Capability::JsonSchema),
                (words::TEXT, _) => {}
                (_, s) => {
                    let msg = format!(
                        "unknown `{param}` `{}`; expected `text`, `json_object` or `json_schema`",
                        s.decode()
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
        while let Some(key) = c.next_key_word(&mut first)? {
            match key {
                words::ROLE => {
                    role = match string_word(c, || format!("messages[{i}].role"))? {
                        (words::USER, _) => Role::User,
                        (words::ASSISTANT, _) => Role::Assistant,
                        (words::TOOL | words::FUNCTION, _) => Role::Tool,
                        (words::SYSTEM | words::DEVELOPER, _) => Role::Other,
                        (_, s) => {
                            let p = format!("messages[{i}].role");
                            let msg = format!(
                                "unknown role `{}` in `{p}`; expected one of {}",
                                s.decode(),
                                ROLES.join(", ")
                            );
                            return Err(invalid(&p, msg));
                        }
                    }
                }
                words::CONTENT => {
                    text.not_user = !matches!(role, Role::User | Role::Unknown);
                    has_content = self.content(c, i, &mut text)?;
                }
                words::TOOL_CALLS | words::FUNCTION_CALL => {
                    if let Kind::Array(true) | Kind::Object(true) =
                        c.value(Some(&mut self.prompt))?
                    {
                        self.capabilities.insert(Capability::Tools);
                    }
                }
                words::NAME => {
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
            text.hashed += text.hash.get_or_insert_with(Fnv::new).write_text(s, room);
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
        while let Some(key) = c.next_key_word(&mut first)? {
            match key {
                words::TYPE => {
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
                                s.decode()
                            );
                            return Err(invalid(&format!("{p}.type"), msg));
                        }
                    });
                }
                words::TEXT | words::REFUSAL => {
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

    fn finish(self) -> Result<RequestFeatures, RouteError> {
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
            let mut msg = format!("the model `{name}` does not exist");
            if let Some(hint) = policy.hints.closest(&name) {
                msg.push_str(&format!("; did you mean `{hint}`"));
            }
            return Err(RouteError::new(ErrorCode::ModelNotFound, msg).with_param("model"));
        };
        let mut prompt = self.prompt;
        // Every reply is primed with a few tokens.
        prompt.add(3);
        let (last_user_tokens, matched) = match self.last_user {
            Some(u) => (u.counts.tokens(), policy.match_user(&u)),
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

impl CompiledPolicy {
    /// The patterns matched by the last user message. They see its decoded text when it is
    /// one part of at most [`PATTERN_WINDOW`] bytes (in place when it has no escapes), else
    /// the first half window of its first text part and the last half window of its last,
    /// decoded into one buffer. Windows count decoded bytes, so escaping text differently
    /// never changes what the patterns see.
    fn match_user(&self, u: &UserMessage<'_>) -> Matches {
        let (Some(first), Some(last)) = (u.first, u.last) else {
            return self.match_patterns("");
        };
        if self.patterns.is_empty() {
            return Matches::default();
        }
        let one = std::ptr::eq(first.raw, last.raw);
        if one && !first.escaped && first.raw.len() <= PATTERN_WINDOW {
            return self.match_patterns(first.raw);
        }
        let half = PATTERN_WINDOW / 2;
        // The one allocation: the head, a line feed, and room to decode the tail.
        let mut text = String::with_capacity(PATTERN_WINDOW.max(3 * half + 5));
        if one {
            if first.decode_into(&mut text, PATTERN_WINDOW) {
                return self.match_patterns(&text);
            }
            let mut cut = half;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        } else {
            first.decode_into(&mut text, half);
        }
        text.push('\n');
        let from = tail_start(last, half);
        let tail = Str {
            raw: last.raw.get(from..).unwrap_or(""),
            escaped: last.escaped,
        };
        tail.decode_tail_into(&mut text, half);
        self.match_patterns(&text)
    }

    /// Runs every pattern once over `text`, then counts the counted signals that matched.
    pub(crate) fn match_patterns(&self, text: &str) -> Matches {
        self.patterns.find(text)
    }

    /// The complexity score and class from the classifier's features and signals.
    pub(crate) fn score(
        &self,
        last_user_tokens: u32,
        messages: u32,
        tools: bool,
        matched: &Matches,
    ) -> (Complexity, f32) {
        let c = &self.classifier;
        let ratio = |x: u32, sat: u32| (x as f32 / sat.max(1) as f32).min(1.0);
        let mut score = c.length_weight * ratio(last_user_tokens, c.length_saturation)
            + c.depth_weight * ratio(messages.saturating_sub(1), c.depth_saturation)
            + if tools { c.tools_weight } else { 0.0 };
        let mut floor = Complexity::Simple;
        // Counted signals take their counts in signal order.
        let mut counts = matched.counts.iter();
        for (i, s) in c.signals.iter().enumerate() {
            let count = s
                .saturation
                .map(|sat| (counts.next().copied().unwrap_or(0), sat));
            if matched.bits & (1u64 << i) == 0 {
                continue;
            }
            score += match count {
                Some((n, sat)) => s.weight * ratio(n, sat),
                None => s.weight,
            };
            if let Some(min) = s.min_class {
                floor = floor.max(min);
            }
        }
        let score = score.clamp(0.0, 1.0);
        let class = match c.thresholds {
            [_, _, r] if score >= r => Complexity::Reasoning,
            [_, x, _] if score >= x => Complexity::Complex,
            [s, _, _] if score >= s => Complexity::Standard,
            _ => Complexity::Simple,
        };
        (class.max(floor), score)
    }
}
