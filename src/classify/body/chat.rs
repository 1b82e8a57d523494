//! OpenAI Chat Completions bodies, and the messages and content parts the Responses API
//! shares with them.

use super::{
    Classification, MessageText, Role, Seen, invalid, kind_at, must_be, open_or_null, payload,
    string_word, token_count, words,
};
use crate::capability::Capability;
use crate::classify::estimate::TextCounts;
use crate::classify::scan::{Cursor, Kind, Str};
use crate::clip;
use crate::error::RouteError;
use crate::features::Field;

/// The top-level keys a Chat Completions body may give once.
const TOP_LEVEL: [&str; 15] = [
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
    "modalities",
    "audio",
    "web_search_options",
];

/// The keys of a message classification reads, by the bit each has; each may appear once.
const MESSAGE_NAMES: [&str; 6] = [
    "role",
    "content",
    "tool_calls",
    "function_call",
    "name",
    "type",
];

/// The keys of a content part classification reads, by bit; each may appear once.
const PART_NAMES: [&str; 10] = [
    "type",
    "text",
    "refusal",
    "image_url",
    "image",
    "input_audio",
    "file",
    "file_id",
    "file_data",
    "file_url",
];

const ROLES: [&str; 6] = [
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum PartType {
    Text,
    Image,
    Audio,
    File,
}

/// Where a message sits: `messages[i]` in a chat body, `input[i]` in a Responses one.
#[derive(Clone, Copy)]
pub(super) struct At {
    pub list: &'static str,
    pub i: u32,
}

impl At {
    pub(super) fn path(self) -> String {
        format!("{}[{}]", self.list, self.i)
    }

    pub(super) fn member(self, name: &str) -> String {
        format!("{}[{}].{name}", self.list, self.i)
    }
}

impl<'a> Classification<'_, 'a> {
    pub(super) fn chat(&mut self, c: &mut Cursor<'a>) -> Result<(), RouteError> {
        self.asked.prompt = Field::Messages;
        self.members(c, &TOP_LEVEL, |this, c, name| {
            match name {
                "model" => this.model(c)?,
                "messages" => this.messages(c)?,
                "max_completion_tokens" => {
                    this.output_tokens(c, Field::MaxCompletionTokens, true)?
                }
                "max_tokens" => this.output_tokens(c, Field::MaxTokens, false)?,
                "tools" => this.untyped_tools(c, Field::Tools)?,
                "functions" => this.untyped_tools(c, Field::Functions)?,
                "response_format" => this.response_format(c, Field::ResponseFormat)?,
                "reasoning_effort" => this.reasoning(c, Field::ReasoningEffort)?,
                "reasoning" => this.reasoning(c, Field::Reasoning)?,
                "logprobs" => match c.value(None)? {
                    Kind::Bool(true) => this.need(Capability::Logprobs, Field::Logprobs),
                    Kind::Bool(false) | Kind::Null => {}
                    k => {
                        let msg = format!("`logprobs` must be a boolean, got {}", k.name());
                        return Err(invalid("logprobs", msg));
                    }
                },
                "top_logprobs" => this.top_logprobs(c)?,
                "n" => this.choices = token_count(c, "n")?.unwrap_or(1),
                "user" => this.user(c)?,
                "modalities" => this.modalities(c)?,
                "audio" => {
                    if !matches!(c.value(None)?, Kind::Null) {
                        this.need(Capability::AudioOutput, Field::Audio);
                    }
                }
                "web_search_options" => {
                    if !matches!(c.value(None)?, Kind::Null) {
                        this.need(Capability::WebSearch, Field::WebSearchOptions);
                    }
                }
                _ => {
                    c.value(None)?;
                }
            }
            Ok(())
        })
    }

    /// `top_logprobs`: an integer asks for logprobs.
    pub(super) fn top_logprobs(&mut self, c: &mut Cursor<'a>) -> Result<(), RouteError> {
        match c.value(None)? {
            Kind::Null => Ok(()),
            Kind::UInt(_) => {
                self.need(Capability::Logprobs, Field::TopLogprobs);
                Ok(())
            }
            k => {
                let msg = format!("`top_logprobs` must be an integer, got {}", k.name());
                Err(invalid("top_logprobs", msg))
            }
        }
    }

    /// `tools` or `functions` in a chat body: any entry needs tool calling; definitions count.
    fn untyped_tools(&mut self, c: &mut Cursor<'a>, field: Field) -> Result<(), RouteError> {
        match c.peek() {
            Some(b'[' | b'n') => {}
            _ => return Err(must_be(c, field.as_str(), "an array")),
        }
        if let Kind::Array(true) = c.value(Some(&mut self.prompt))? {
            self.need(Capability::Tools, field);
        }
        Ok(())
    }

    /// `modalities`: an array of strings; `"audio"` asks for audio output.
    pub(super) fn modalities(&mut self, c: &mut Cursor<'a>) -> Result<(), RouteError> {
        if !open_or_null(c, b'[', "modalities")? {
            return Ok(());
        }
        let (mut first, mut i) = (true, 0u32);
        while c.next_element(&mut first)? {
            if let (words::AUDIO, _) = string_word(c, || format!("modalities[{i}]"))? {
                self.need(Capability::AudioOutput, Field::Modalities);
            }
            i += 1;
        }
        Ok(())
    }

    fn messages(&mut self, c: &mut Cursor<'a>) -> Result<(), RouteError> {
        self.message_list(c, "messages", |this, c, i| {
            this.message(
                c,
                At {
                    list: "messages",
                    i,
                },
            )
        })
    }

    /// One message: `role`, `content`, `tool_calls`, `function_call` and `name` are read.
    pub(super) fn message(&mut self, c: &mut Cursor<'a>, at: At) -> Result<(), RouteError> {
        if c.peek() != Some(b'{') {
            return Err(must_be(c, &at.path(), "an object"));
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
                seen.once(bit, || at.member(MESSAGE_NAMES.get(bit).unwrap_or(&"")))
            };
            match key {
                words::ROLE => {
                    once(&mut seen, 0)?;
                    role = match string_word(c, || at.member("role"))? {
                        (words::USER, _) => Role::User,
                        (words::ASSISTANT, _) => Role::Assistant,
                        (words::TOOL | words::FUNCTION, _) => Role::Tool,
                        (words::SYSTEM | words::DEVELOPER, _) => Role::Other,
                        (_, s) => {
                            let p = at.member("role");
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
                    has_content = self.content(c, at, &mut text)?;
                }
                words::TOOL_CALLS | words::FUNCTION_CALL => {
                    once(&mut seen, if key == words::TOOL_CALLS { 2 } else { 3 })?;
                    if let Kind::Array(true) | Kind::Object(true) =
                        c.value(Some(&mut self.prompt))?
                    {
                        self.need(Capability::Tools, self.asked.prompt);
                    }
                }
                words::NAME => {
                    once(&mut seen, 4)?;
                    c.value(Some(&mut self.prompt))?;
                    self.prompt.add(1);
                }
                // A Responses message item's type, read ahead: given once.
                words::TYPE => {
                    once(&mut seen, 5)?;
                    c.value(None)?;
                }
                _ => {
                    c.value(None)?;
                }
            }
        }
        match role {
            Role::Unknown => {
                let p = at.member("role");
                return Err(invalid(&p, format!("`{p}` is required")));
            }
            Role::User | Role::Other | Role::Tool if !has_content => {
                let p = at.member("content");
                return Err(invalid(&p, format!("`{p}` is required for this role")));
            }
            _ => {}
        }
        self.end_message(role, &text);
        Ok(())
    }

    /// `content`: a string, null, or an array of parts. Returns whether content was present.
    pub(super) fn content(
        &mut self,
        c: &mut Cursor<'a>,
        at: At,
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
                    let path = || format!("{}[{part}]", at.member("content"));
                    self.part(c, path, text)?;
                    part += 1;
                }
                Ok(true)
            }
            _ => {
                let p = at.member("content");
                let msg = format!(
                    "`{p}` must be a string or an array of parts, got {}",
                    kind_at(c)?
                );
                Err(invalid(&p, msg))
            }
        }
    }

    /// One content part at `path`: text (`text`, `input_text`, `output_text`, `refusal`),
    /// image (`image_url`, `image`, `input_image`), audio (`input_audio`) or file (`file`,
    /// `input_file`).
    pub(super) fn part(
        &mut self,
        c: &mut Cursor<'a>,
        path: impl Fn() -> String,
        text: &mut MessageText<'a>,
    ) -> Result<(), RouteError> {
        if c.peek() != Some(b'{') {
            return Err(must_be(c, &path(), "a content part object"));
        }
        c.begin_object()?;
        let mut kind: Option<PartType> = None;
        // Text may come before `type`; it is kept (as a span) until the type is known.
        let mut part_text: Option<(Str<'a>, TextCounts)> = None;
        let (mut has_payload, mut bytes) = (false, 0u64);
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
                        (
                            words::TEXT | words::REFUSAL | words::INPUT_TEXT | words::OUTPUT_TEXT,
                            _,
                        ) => PartType::Text,
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
                        return Err(must_be(c, &format!("{}.text", path()), "a string"));
                    }
                    let mut counts = TextCounts::default();
                    let s = c.string(Some(&mut counts))?;
                    part_text = Some((s, counts));
                }
                words::IMAGE_URL
                | words::IMAGE
                | words::INPUT_AUDIO
                | words::FILE
                | words::FILE_ID
                | words::FILE_DATA
                | words::FILE_URL => {
                    let bit = match key {
                        words::IMAGE_URL => 3,
                        words::IMAGE => 4,
                        words::INPUT_AUDIO => 5,
                        words::FILE => 6,
                        words::FILE_ID => 7,
                        words::FILE_DATA => 8,
                        _ => 9,
                    };
                    once(&mut seen, bit)?;
                    // Media payloads (URLs, ids, base64) are not prompt text; a file's inline
                    // data sizes its estimate.
                    let (any, data) = match key {
                        words::FILE | words::FILE_DATA => payload(c)?,
                        _ => (!matches!(c.value(None)?, Kind::Null), 0),
                    };
                    has_payload |= any;
                    bytes = bytes.saturating_add(data);
                }
                _ => {
                    c.value(None)?;
                }
            }
        }
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
                let cap = match media {
                    PartType::Image => Capability::Vision,
                    PartType::Audio => Capability::AudioInput,
                    _ => Capability::FileInput,
                };
                self.media(cap, self.asked.prompt, bytes);
                Ok(())
            }
        }
    }
}
