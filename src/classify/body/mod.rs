//! What a request body means: the fields classification reads, walked once with the scanner,
//! into the state [`Classification::finish`] turns into features.
//!
//! One room per API ([`chat`], [`responses`], [`anthropic`]); this one holds what they share:
//! the state, a message's text and framing, response formats, reasoning, typed tool lists,
//! and the small readers that turn a wrong value into an `invalid_request` naming its path.

mod anthropic;
mod chat;
mod responses;

use super::estimate::TextCounts;
use super::scan::{Cursor, Kind, Str, Word};
use super::window::{UserMessage, last_user_matches, last_user_text};
use crate::capability::{Capability, CapabilitySet};
use crate::clip;
use crate::error::{ErrorCode, RouteError};
use crate::features::{Api, Asked, Field, Fnv, Origin, RequestFeatures, Source};
use crate::patterns::Matches;
use crate::policy::CompiledPolicy;
use crate::scorer::text::scan_turns;
use crate::scorer::{self, Context as ScoreContext, Inputs, Term};

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

/// An `invalid_request` error: the value at the cursor, at path `param`, is not `what`.
fn must_be(c: &mut Cursor<'_>, param: &str, what: &str) -> RouteError {
    match kind_at(c) {
        Ok(got) => invalid(param, format!("`{param}` must be {what}, got {got}")),
        Err(e) => e,
    }
}

/// Consumes the `{` or `[` (`open`) at the cursor and returns `true`, or consumes a `null`
/// and returns `false`; any other value is an `invalid_request` error for `path`.
fn open_or_null(c: &mut Cursor<'_>, open: u8, path: &str) -> Result<bool, RouteError> {
    match c.peek() {
        Some(b'{') if open == b'{' => c.begin_object().map(|()| true),
        Some(b'[') if open == b'[' => c.begin_array().map(|()| true),
        Some(b'n') => c.value(None).map(|_| false),
        _ => {
            let what = if open == b'{' {
                "an object"
            } else {
                "an array"
            };
            Err(must_be(c, path, what))
        }
    }
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

/// The `type` of the object at the cursor, read ahead without moving the cursor, so that an
/// object's members can be read knowing what it is whatever their order; `None` when it has
/// none, or when the key `until` comes first. A `type` that is not a string is an error for
/// `path.type`.
fn type_ahead<'a>(
    c: &Cursor<'a>,
    until: Option<Word>,
    path: impl Fn() -> String,
) -> Result<Option<(Word, Str<'a>)>, RouteError> {
    let mut ahead = c.clone();
    ahead.begin_object()?;
    let mut first = true;
    while let Some(key) = ahead.next_key_word(&mut first)? {
        if key == words::TYPE {
            return string_word(&mut ahead, || format!("{}.type", path())).map(Some);
        }
        if Some(key) == until {
            return Ok(None);
        }
        ahead.value(None)?;
    }
    Ok(None)
}

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

    /// Whether `key` is `type`, marking it read: a block or item read ahead for its type must
    /// not give another one later (the reader would see the first, others the last).
    #[inline]
    fn type_key(&mut self, key: Word, path: impl Fn() -> String) -> Result<bool, RouteError> {
        if key != words::TYPE {
            return Ok(false);
        }
        self.once(31, || format!("{}.type", path()))?;
        Ok(true)
    }

    /// Marks the key `name` of a top-level object as read, when it is one of `known`.
    #[inline]
    fn top_level(&mut self, known: &[&str], name: &str) -> Result<(), RouteError> {
        match known.iter().position(|&k| k == name) {
            Some(bit) => self.once(bit, || name.to_owned()),
            None => Ok(()),
        }
    }
}

/// The keys and values of messages, items, parts and blocks that classification reads.
mod words {
    use super::super::scan::{Word, word};

    pub const ROLE: Word = word("role");
    pub const CONTENT: Word = word("content");
    pub const TOOL_CALLS: Word = word("tool_calls");
    pub const FUNCTION_CALL: Word = word("function_call");
    pub const NAME: Word = word("name");
    pub const TYPE: Word = word("type");
    pub const EFFORT: Word = word("effort");
    pub const ENABLED: Word = word("enabled");
    pub const FORMAT: Word = word("format");

    pub const USER: Word = word("user");
    pub const ASSISTANT: Word = word("assistant");
    pub const SYSTEM: Word = word("system");
    pub const DEVELOPER: Word = word("developer");
    pub const TOOL: Word = word("tool");
    pub const FUNCTION: Word = word("function");
    pub const MESSAGE: Word = word("message");

    pub const TEXT: Word = word("text");
    pub const REFUSAL: Word = word("refusal");
    pub const INPUT_TEXT: Word = word("input_text");
    pub const OUTPUT_TEXT: Word = word("output_text");
    pub const IMAGE_URL: Word = word("image_url");
    pub const IMAGE: Word = word("image");
    pub const INPUT_IMAGE: Word = word("input_image");
    pub const INPUT_AUDIO: Word = word("input_audio");
    pub const FILE: Word = word("file");
    pub const INPUT_FILE: Word = word("input_file");
    pub const FILE_ID: Word = word("file_id");
    pub const FILE_DATA: Word = word("file_data");
    pub const FILE_URL: Word = word("file_url");
    pub const DATA: Word = word("data");
    pub const JSON_OBJECT: Word = word("json_object");
    pub const JSON_SCHEMA: Word = word("json_schema");
    pub const NONE: Word = word("none");
    pub const MINIMAL: Word = word("minimal");
    pub const AUDIO: Word = word("audio");
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Unknown,
    User,
    Assistant,
    Tool,
    Other,
}

/// How much of the first user message the sticky key hashes.
const KEY_PREFIX: usize = 256;

/// Tokens each message adds for its framing, as chat formats add them.
const MESSAGE_FRAMING: u32 = 3;

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
    api: Api,
    model: Option<Str<'a>>,
    source: Option<Source>,
    /// Messages (items for the Responses API), a system prompt or instructions counting as one.
    messages: u32,
    /// Whether the conversation was given (`messages`, `input`, or a conversation to continue).
    conversation: bool,
    prompt: TextCounts,
    capabilities: CapabilitySet,
    asked: Asked,
    /// The output length, from the field that wins when several are given.
    output: Option<u32>,
    /// The output length from the field that yields to `output` (chat's `max_tokens`).
    output_fallback: Option<u32>,
    /// Completions asked for (chat's `n`).
    pub(super) choices: u32,
    user: Option<u64>,
    first_user: Option<u64>,
    last_user: Option<UserMessage<'a>>,
    /// The first text part of the user message before the last one: the scorer's context.
    prev_user: Option<Str<'a>>,
}

impl<'p, 'a> Classification<'p, 'a> {
    pub(super) fn new(policy: &'p CompiledPolicy, api: Api) -> Self {
        Classification {
            policy,
            api,
            model: None,
            source: None,
            messages: 0,
            conversation: false,
            prompt: TextCounts::default(),
            capabilities: CapabilitySet::EMPTY,
            asked: Asked::default(),
            output: None,
            output_fallback: None,
            choices: 1,
            user: None,
            first_user: None,
            last_user: None,
            prev_user: None,
        }
    }

    /// Reads the body, a JSON object, in the API's own reader.
    pub(super) fn body(&mut self, c: &mut Cursor<'a>) -> Result<(), RouteError> {
        match self.api {
            Api::Chat => self.chat(c),
            Api::Responses => self.responses(c),
            Api::Messages => self.anthropic(c),
        }
    }

    /// Reads the top-level object, handing each member to `member` by its key; a key in
    /// `known` may be given once.
    #[inline(always)]
    fn members(
        &mut self,
        c: &mut Cursor<'a>,
        known: &[&str],
        mut member: impl FnMut(&mut Self, &mut Cursor<'a>, &str) -> Result<(), RouteError>,
    ) -> Result<(), RouteError> {
        c.begin_object()?;
        let mut first = true;
        let mut buf = [0u8; 32];
        let mut seen = Seen::default();
        while let Some(key) = c.next_key(&mut first, None)? {
            let name = key.small(&mut buf);
            seen.top_level(known, name)?;
            member(self, c, name)?;
        }
        Ok(())
    }

    /// A list of messages (or Responses items) at `list`, each read by `read`, at most the
    /// policy's `max_messages`: the conversation. An empty list is an error, except for the
    /// Responses API, whose conversation may be kept upstream.
    fn message_list(
        &mut self,
        c: &mut Cursor<'a>,
        list: &'static str,
        mut read: impl FnMut(&mut Self, &mut Cursor<'a>, u32) -> Result<(), RouteError>,
    ) -> Result<(), RouteError> {
        if c.peek() != Some(b'[') {
            return Err(must_be(c, list, "an array"));
        }
        c.begin_array()?;
        let limit = self.policy.limits.max_messages;
        let (mut first, mut count) = (true, 0u32);
        while c.next_element(&mut first)? {
            if count >= limit {
                let msg = format!("more than {limit} messages, the policy's limit");
                return Err(RouteError::new(ErrorCode::RequestTooLarge, msg).with_param(list));
            }
            read(self, c, count)?;
            count += 1;
        }
        match (count, self.api) {
            (0, Api::Responses) => {}
            (0, _) => return Err(invalid(list, format!("`{list}` must not be empty"))),
            _ => self.conversation = true,
        }
        Ok(())
    }

    /// Records that `field` asked for `cap`.
    #[inline]
    fn need(&mut self, cap: Capability, field: Field) {
        self.capabilities.insert(cap);
        self.asked.capability(cap, field);
    }

    /// `model`: a string, whose span is kept for the forwarded body.
    fn model(&mut self, c: &mut Cursor<'a>) -> Result<(), RouteError> {
        c.peek();
        let start = c.pos();
        match c.value(None)? {
            Kind::Str(s) => {
                self.model = Some(s);
                let (end, body) = (c.pos(), c.text().as_bytes());
                let value = body.get(start..end).unwrap_or_default();
                let span = (u32::try_from(start), u32::try_from(end));
                self.source = match (span, u32::try_from(body.len())) {
                    ((Ok(start), Ok(end)), Ok(len)) => Some(Source {
                        start,
                        end,
                        len,
                        hash: Source::hash(value),
                    }),
                    _ => None,
                };
                Ok(())
            }
            k => {
                let msg = format!("`model` must be a string, got {}", k.name());
                Err(invalid("model", msg))
            }
        }
    }

    /// `user` (or Anthropic's `metadata.user_id`): the sticky key, when a string.
    fn user(&mut self, c: &mut Cursor<'a>) -> Result<(), RouteError> {
        if let Kind::Str(user) = c.value(None)? {
            let mut h = Fnv::new();
            hash_text(&mut h, user, usize::MAX);
            self.user = Some(h.finish());
        }
        Ok(())
    }

    /// An output length field: a positive integer or null. `wins` when it takes precedence
    /// over the other output field of its API.
    fn output_tokens(
        &mut self,
        c: &mut Cursor<'a>,
        field: Field,
        wins: bool,
    ) -> Result<(), RouteError> {
        let n = token_count(c, field.as_str())?;
        if wins {
            self.output = n;
            if n.is_some() {
                self.asked.output = field;
            }
        } else {
            self.output_fallback = n;
            if n.is_some() && self.output.is_none() {
                self.asked.output = field;
            }
        }
        Ok(())
    }

    /// A response format object (`response_format`, Responses `text.format`, Anthropic
    /// `output_format`): its `type` sets json_mode/json_schema; a schema's text counts.
    fn response_format(&mut self, c: &mut Cursor<'a>, field: Field) -> Result<(), RouteError> {
        let path = field.as_str();
        if !open_or_null(c, b'{', path)? {
            return Ok(());
        }
        let mut first = true;
        let mut seen = Seen::default();
        while let Some(key) = c.next_key_word(&mut first)? {
            if key == words::JSON_SCHEMA && c.peek() == Some(b'{') {
                // Chat nests the schema and its name one level down; their text counts as the
                // other APIs write them, beside `type`, without the wrapper's keys.
                c.begin_object()?;
                let mut inner = true;
                while c.next_key_word(&mut inner)?.is_some() {
                    c.value(Some(&mut self.prompt))?;
                }
                continue;
            }
            if key != words::TYPE {
                c.value(Some(&mut self.prompt))?;
                continue;
            }
            let param = || format!("{path}.type");
            seen.once(0, param)?;
            match string_word(c, param)? {
                (words::JSON_OBJECT, _) => self.need(Capability::JsonMode, field),
                (words::JSON_SCHEMA, _) => self.need(Capability::JsonSchema, field),
                (words::TEXT, _) => {}
                (_, s) => {
                    let p = param();
                    let msg = format!(
                        "unknown `{p}` `{}`; expected `text`, `json_object` or `json_schema`",
                        clip::name(&s.decode())
                    );
                    return Err(invalid(&p, msg));
                }
            }
        }
        Ok(())
    }

    /// A reasoning setting: an effort string (`reasoning_effort`), or an object with `effort`
    /// and `enabled` (`reasoning`). Needs a reasoning model unless the effort is `none` or
    /// `minimal`, or it is disabled.
    fn reasoning(&mut self, c: &mut Cursor<'a>, field: Field) -> Result<(), RouteError> {
        let reasons = match c.peek() {
            Some(b'{') => {
                c.begin_object()?;
                let (mut first, mut reasons) = (true, true);
                while let Some(key) = c.next_key_word(&mut first)? {
                    match (key, c.value(None)?) {
                        (words::EFFORT, Kind::Str(s)) => reasons &= !lifts_reasoning(s),
                        (words::ENABLED, Kind::Bool(false)) => reasons = false,
                        _ => {}
                    }
                }
                reasons
            }
            Some(b'"') => match c.value(None)? {
                Kind::Str(s) => !lifts_reasoning(s),
                _ => true,
            },
            _ => !matches!(c.value(None)?, Kind::Null),
        };
        if reasons {
            self.need(Capability::Reasoning, field);
        }
        Ok(())
    }

    /// A list of tools (Responses, Anthropic): web search tools need web search, every other
    /// tool needs tool calling. A definition counts as prompt as its Chat Completions form
    /// would: the whole object, plus the wrapper keys chat writes around it.
    fn typed_tools(&mut self, c: &mut Cursor<'a>) -> Result<(), RouteError> {
        if !open_or_null(c, b'[', "tools")? {
            return Ok(());
        }
        let (mut first, mut i) = (true, 0u32);
        while c.next_element(&mut first)? {
            if c.peek() != Some(b'{') {
                return Err(must_be(c, &format!("tools[{i}]"), "an object"));
            }
            // One pass: every member counts; the type decides what the tool needs.
            c.begin_object()?;
            let (mut first, mut kind) = (true, None);
            while let Some(key) = c.next_key(&mut first, Some(&mut self.prompt))? {
                let is_type = if key.escaped {
                    key.word() == words::TYPE
                } else {
                    key.raw == "type"
                };
                if !is_type || kind.is_some() {
                    c.value(Some(&mut self.prompt))?;
                    continue;
                }
                if c.peek() != Some(b'"') {
                    return Err(must_be(c, &format!("tools[{i}].type"), "a string"));
                }
                kind = Some(c.string(Some(&mut self.prompt))?);
            }
            let mut buf = [0u8; 32];
            match kind.map(|s| s.small(&mut buf)) {
                Some(k) if k.starts_with("web_search") => {
                    self.need(Capability::WebSearch, Field::Tools);
                }
                typed => {
                    // `{"type": "function", "function": {...}}` around a definition.
                    let wrapper: &[&str] = match typed {
                        Some(_) => &["function"],
                        None => &["type", "function", "function"],
                    };
                    wrapper.iter().for_each(|w| self.prompt.text(w));
                    self.need(Capability::Tools, Field::Tools);
                }
            }
            i += 1;
        }
        Ok(())
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

    /// A media part or block: the capability it needs and its token estimate. Images and
    /// audio take the policy's fixed estimates; a file takes one token per
    /// `file_bytes_per_token` bytes of its inline payload (`bytes`, decoded), or the fixed
    /// `file_tokens` when it is sent by id or URL.
    fn media(&mut self, cap: Capability, field: Field, bytes: u64) {
        let limits = self.policy.limits;
        let tokens = match cap {
            Capability::Vision => limits.image_tokens,
            Capability::AudioInput => limits.audio_tokens,
            _ if bytes > 0 => {
                let per = u64::from(limits.file_bytes_per_token.max(1));
                u32::try_from(bytes.div_ceil(per)).unwrap_or(u32::MAX)
            }
            _ => limits.file_tokens,
        };
        self.need(cap, field);
        self.prompt.add(tokens);
    }

    /// A message read whole: its framing and text count toward the prompt; the last user
    /// message is kept for the score and the patterns, the first one keys splits.
    #[inline]
    fn end_message(&mut self, role: Role, text: &MessageText<'a>) {
        self.messages += 1;
        self.prompt.add(MESSAGE_FRAMING);
        if role == Role::Tool {
            self.need(Capability::Tools, self.asked.prompt);
        }
        let counts = text.counts.totals();
        self.prompt.add_counts(&counts);
        if role == Role::User {
            if self.first_user.is_none() {
                self.first_user = text.hash.map(Fnv::finish);
            }
            self.prev_user = self.last_user.and_then(|u| u.first);
            self.last_user = Some(UserMessage {
                counts,
                first: text.first,
                last: text.last,
            });
        }
    }

    /// A system prompt or instructions given as one string, counted as a message of its own.
    fn system_text(&mut self, c: &mut Cursor<'a>, param: &str) -> Result<(), RouteError> {
        match c.peek() {
            Some(b'"') => {
                let mut text = MessageText::default();
                c.string(Some(&mut text.counts))?;
                self.end_message(Role::Other, &text);
                Ok(())
            }
            Some(b'n') => c.value(None).map(drop),
            _ => Err(must_be(c, param, "a string")),
        }
    }

    /// The terms of the scorer's score of the last user message, largest first; empty when
    /// the policy has no scorer.
    pub(super) fn terms(self) -> Result<Vec<Term>, RouteError> {
        let policy = self.policy;
        let Some(s) = &policy.classifier.scorer else {
            return Ok(Vec::new());
        };
        let cx = self.score_context();
        let mut buf = [0u8; scorer::text::CONTEXT];
        let context = self.context(&mut buf);
        Ok(self.with_user_text(|text| {
            let matched = policy.patterns.find(text);
            s.model
                .explain(text, context, &cx, policy.scorer_signals(s, &matched))
        }))
    }

    /// What the scorer reads besides the text.
    fn score_context(&self) -> ScoreContext {
        ScoreContext {
            tokens: self.last_user.map_or(0, |u| u.counts.tokens()),
            messages: self.messages,
            tools: self.capabilities.contains(Capability::Tools),
        }
    }

    /// The scorer's context: the head of the user message before the last, decoded into `buf`
    /// (empty in a conversation of one user message).
    fn context<'b>(&self, buf: &'b mut [u8; scorer::text::CONTEXT]) -> &'b str {
        self.prev_user.map_or("", |s| s.decode_head(buf))
    }

    /// Calls `f` with the text of the last user message the patterns see (empty without one).
    fn with_user_text<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match self.last_user {
            Some(u) => last_user_text(&u, f),
            None => f(""),
        }
    }

    /// What a scorer would read of this request, for training one: the structure's head,
    /// dense features, every policy signal's strength, the n-gram hashes, and the policy's
    /// own score.
    pub(super) fn inputs(self) -> Result<Inputs, RouteError> {
        let policy = self.policy;
        let cx = self.score_context();
        let mut buf = [0u8; scorer::text::CONTEXT];
        let context = self.context(&mut buf);
        Ok(self.with_user_text(|text| {
            let matched = policy.patterns.find(text);
            let mut kept = Box::new(scorer::Kept::new());
            let stats = scan_turns(text, context, &mut *kept);
            let signals = (0..policy.classifier.signals.len())
                .map(|i| policy.signal_strength(&matched, i))
                .collect();
            let (_, score) = policy.score(cx.tokens, cx.messages, cx.tools, &matched, None);
            Inputs {
                head: scorer::head(&stats),
                dense: scorer::dense(&stats, &cx),
                signals,
                hashes: kept.hashes().collect(),
                tokens: cx.tokens,
                policy_score: score,
            }
        }))
    }

    pub(super) fn finish(self) -> Result<RequestFeatures, RouteError> {
        let policy = self.policy;
        let Some(model) = self.model else {
            return Err(invalid(
                "model",
                "you must provide a model parameter".into(),
            ));
        };
        if !self.conversation {
            let field = if self.api == Api::Responses {
                "input"
            } else {
                "messages"
            };
            return Err(invalid(
                field,
                format!("you must provide a {field} parameter"),
            ));
        }
        if self.api == Api::Messages && self.output.is_none() {
            return Err(invalid(
                "max_tokens",
                "you must provide a max_tokens parameter".into(),
            ));
        }
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
        let tools = self.capabilities.contains(Capability::Tools);
        let tokens = self.last_user.map_or(0, |u| u.counts.tokens());
        let cx = self.score_context();
        let mut buf = [0u8; scorer::text::CONTEXT];
        let context = match policy.classifier.scorer {
            Some(_) => self.context(&mut buf),
            None => "",
        };
        let (matched, model_score) = match (self.last_user, &policy.classifier.scorer) {
            (Some(u), None) => (last_user_matches(&policy.patterns, &u), None),
            (None, s) => {
                let matched = Matches::default();
                let score = s
                    .as_ref()
                    .map(|s| policy.model_score(s, "", context, &cx, &matched));
                (matched, score)
            }
            (Some(u), Some(s)) => last_user_text(&u, |text| {
                let matched = policy.patterns.find(text);
                (
                    matched,
                    Some(policy.model_score(s, text, context, &cx, &matched)),
                )
            }),
        };
        let (complexity, complexity_score) =
            policy.score(tokens, self.messages, tools, &matched, model_score);
        Ok(RequestFeatures {
            target,
            prompt_tokens: prompt.tokens(),
            max_output_tokens: self.output.or(self.output_fallback),
            choices: self.choices,
            capabilities: self.capabilities,
            complexity,
            complexity_score,
            messages: self.messages,
            matched: matched.bits,
            key: self.user.or(self.first_user).unwrap_or(0),
            asked: self.asked,
            source: Origin(self.source),
        })
    }
}

/// Reads a media payload at the cursor: whether it is not null, and the bytes its inline data
/// decodes to. A string is the data itself; in an object, the `data` or `file_data` string is.
/// Base64 (after a data URL's comma) decodes to three bytes per four; ids and URLs in other
/// members carry no data.
pub(super) fn payload(c: &mut Cursor<'_>) -> Result<(bool, u64), RouteError> {
    let decoded = |s: Str<'_>| {
        if !s.escaped {
            let data = match s.raw.strip_prefix("data:") {
                Some(url) => url.split_once(',').map_or("", |(_, d)| d),
                None => s.raw,
            };
            return data.len() as u64 * 3 / 4;
        }
        // Escaped: the decoded text, piece by piece, without decoding it into a buffer.
        let (mut len, mut header, mut head) = (0u64, None, [0u8; 5]);
        for (text, c) in s.runs() {
            let mut buf = [0u8; 4];
            for piece in [text, c.map_or("", |c| c.encode_utf8(&mut buf))] {
                for &b in piece.as_bytes() {
                    if let Some(slot) = usize::try_from(len).ok().and_then(|i| head.get_mut(i)) {
                        *slot = b;
                    }
                    len += 1;
                    if b == b',' && header.is_none() && &head == b"data:" {
                        header = Some(len);
                    }
                }
            }
        }
        let data = match (&head == b"data:", header) {
            (true, Some(h)) => len - h,
            (true, None) => 0,
            (false, _) => len,
        };
        data * 3 / 4
    };
    if c.peek() != Some(b'{') {
        return Ok(match c.value(None)? {
            Kind::Null => (false, 0),
            Kind::Str(s) => (true, decoded(s)),
            _ => (true, 0),
        });
    }
    c.begin_object()?;
    let (mut first, mut any, mut bytes) = (true, false, 0u64);
    while let Some(key) = c.next_key_word(&mut first)? {
        let value = c.value(None)?;
        any |= !matches!(value, Kind::Null);
        if let (words::DATA | words::FILE_DATA, Kind::Str(s)) = (key, value) {
            bytes = bytes.saturating_add(decoded(s));
        }
    }
    Ok((any, bytes))
}

/// Whether a reasoning effort asks for no reasoning to speak of (`none`, `minimal`).
fn lifts_reasoning(s: Str<'_>) -> bool {
    matches!(s.word(), words::NONE | words::MINIMAL)
}

/// Reads an optional token count (`max_tokens` and the like): a positive integer or null.
pub(super) fn token_count(c: &mut Cursor<'_>, param: &str) -> Result<Option<u32>, RouteError> {
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
