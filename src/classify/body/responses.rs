//! OpenAI Responses bodies: `input` as a string or a list of items, `instructions`, `text.format`,
//! typed tools and `include`.

use super::chat::At;
use super::{
    Classification, MessageText, Role, Seen, invalid, must_be, open_or_null, string_word,
    type_ahead, words,
};
use crate::capability::Capability;
use crate::classify::scan::{Cursor, Kind, Word, word};
use crate::error::RouteError;
use crate::features::Field;

/// The top-level keys a Responses body may give once.
const TOP_LEVEL: [&str; 15] = [
    "model",
    "input",
    "instructions",
    "max_output_tokens",
    "tools",
    "text",
    "reasoning",
    "top_logprobs",
    "include",
    "user",
    "modalities",
    "audio",
    "previous_response_id",
    "conversation",
    "prompt",
];

const OUTPUT: Word = word("output");

/// The `include` value that asks for output logprobs.
const LOGPROBS_INCLUDE: &str = "message.output_text.logprobs";

impl<'a> Classification<'_, 'a> {
    pub(super) fn responses(&mut self, c: &mut Cursor<'a>) -> Result<(), RouteError> {
        self.asked.prompt = Field::Input;
        self.members(c, &TOP_LEVEL, |this, c, name| {
            match name {
                "model" => this.model(c)?,
                "input" => this.input(c)?,
                "instructions" => this.system_text(c, "instructions")?,
                "max_output_tokens" => this.output_tokens(c, Field::MaxOutputTokens, true)?,
                "tools" => this.typed_tools(c)?,
                "text" => this.text_config(c)?,
                "reasoning" => this.reasoning(c, Field::Reasoning)?,
                "top_logprobs" => this.top_logprobs(c)?,
                "include" => this.include(c)?,
                "user" => this.user(c)?,
                "modalities" => this.modalities(c)?,
                "audio" => {
                    if !matches!(c.value(None)?, Kind::Null) {
                        this.need(Capability::AudioOutput, Field::Audio);
                    }
                }
                // A conversation kept by the upstream: what it holds is not in the body.
                "previous_response_id" | "conversation" | "prompt" => {
                    if !matches!(c.value(None)?, Kind::Null) {
                        this.conversation = true;
                    }
                }
                _ => {
                    c.value(None)?;
                }
            }
            Ok(())
        })
    }

    /// `text`: the output configuration; its `format` is a response format.
    fn text_config(&mut self, c: &mut Cursor<'a>) -> Result<(), RouteError> {
        if !open_or_null(c, b'{', "text")? {
            return Ok(());
        }
        let mut first = true;
        let mut seen = Seen::default();
        while let Some(key) = c.next_key_word(&mut first)? {
            if key == words::FORMAT {
                seen.once(0, || "text.format".into())?;
                self.response_format(c, Field::TextFormat)?;
            } else {
                c.value(None)?;
            }
        }
        Ok(())
    }

    /// `include`: extra output; output logprobs need a model that gives them.
    fn include(&mut self, c: &mut Cursor<'a>) -> Result<(), RouteError> {
        if !open_or_null(c, b'[', "include")? {
            return Ok(());
        }
        let (mut first, mut i) = (true, 0u32);
        while c.next_element(&mut first)? {
            let (_, s) = string_word(c, || format!("include[{i}]"))?;
            let mut buf = [0u8; 32];
            if s.small(&mut buf) == LOGPROBS_INCLUDE {
                self.need(Capability::Logprobs, Field::Include);
            }
            i += 1;
        }
        Ok(())
    }

    /// `input`: a string (one user message) or a list of items.
    fn input(&mut self, c: &mut Cursor<'a>) -> Result<(), RouteError> {
        match c.peek() {
            Some(b'"') => {
                self.conversation = true;
                let mut text = MessageText::default();
                let s = c.string(Some(&mut text.counts))?;
                self.piece(&mut text, s);
                self.end_message(Role::User, &text);
                return Ok(());
            }
            Some(b'[') => {}
            Some(b'n') => return c.value(None).map(drop),
            _ => return Err(must_be(c, "input", "a string or an array of items")),
        }
        self.message_list(c, "input", |this, c, i| {
            this.item(c, At { list: "input", i })
        })
    }

    /// One input item: a message (with or without `"type": "message"`), a function call or
    /// its output, or another item of the conversation.
    fn item(&mut self, c: &mut Cursor<'a>, at: At) -> Result<(), RouteError> {
        if c.peek() != Some(b'{') {
            return Err(must_be(c, &format!("input[{}]", at.i), "an object"));
        }
        // An item with a role is a message (the SDKs write messages without a type): no need
        // to read past its role for a type.
        let Some((word, s)) = type_ahead(c, Some(words::ROLE), || format!("input[{}]", at.i))?
        else {
            return self.message(c, at);
        };
        if word == words::MESSAGE {
            return self.message(c, at);
        }
        let mut buf = [0u8; 32];
        let kind = s.small(&mut buf);
        match kind {
            "function_call_output" | "custom_tool_call_output" => self.call_output(c, at),
            // Reasoning from earlier turns is opaque (encrypted, or a summary the upstream
            // drops); a reference names an item the upstream keeps.
            "reasoning" | "item_reference" => c.value(None).map(drop),
            // A generated image comes back as base64, which is no prompt text.
            "image_generation_call" => {
                c.value(None)?;
                self.end_message(Role::Assistant, &MessageText::default());
                Ok(())
            }
            // A screenshot sent back to a computer-use model.
            "computer_call_output" => {
                c.value(None)?;
                self.media(Capability::Vision, Field::Input, 0);
                self.end_message(Role::Tool, &MessageText::default());
                Ok(())
            }
            _ => {
                // Calls of built-in or custom tools, and items yet to come: their text counts.
                let mut text = MessageText {
                    not_user: true,
                    ..MessageText::default()
                };
                c.value(Some(&mut text.counts))?;
                if kind.starts_with("web_search") {
                    self.need(Capability::WebSearch, Field::Input);
                } else if kind.ends_with("_call") || kind.starts_with("mcp_") {
                    self.need(Capability::Tools, Field::Input);
                }
                self.end_message(Role::Assistant, &text);
                Ok(())
            }
        }
    }

    /// A tool's output sent back: `output` is a string or a list of content parts.
    fn call_output(&mut self, c: &mut Cursor<'a>, at: At) -> Result<(), RouteError> {
        c.begin_object()?;
        let mut text = MessageText {
            not_user: true,
            ..MessageText::default()
        };
        let (mut first, mut seen, mut has_output) = (true, Seen::default(), false);
        while let Some(key) = c.next_key_word(&mut first)? {
            if key != OUTPUT {
                seen.type_key(key, || at.path())?;
                c.value(None)?;
                continue;
            }
            seen.once(0, || at.member("output"))?;
            has_output = true;
            match c.peek() {
                Some(b'"') => {
                    c.string(Some(&mut text.counts))?;
                }
                Some(b'[') => {
                    c.begin_array()?;
                    let (mut first, mut n) = (true, 0u32);
                    while c.next_element(&mut first)? {
                        self.part(c, || format!("{}[{n}]", at.member("output")), &mut text)?;
                        n += 1;
                    }
                }
                _ => {
                    let p = at.member("output");
                    return Err(must_be(c, &p, "a string or an array of parts"));
                }
            }
        }
        if !has_output {
            let p = at.member("output");
            return Err(invalid(&p, format!("`{p}` is required")));
        }
        self.end_message(Role::Tool, &text);
        Ok(())
    }
}
