//! Anthropic Messages bodies: a top-level `system`, content blocks (text, images, documents,
//! tool use and results, thinking), `max_tokens` (required), typed tools and `thinking`.

use super::{
    Classification, MessageText, Role, Seen, invalid, kind_at, must_be, open_or_null, payload,
    string_word, type_ahead, words,
};
use crate::capability::Capability;
use crate::classify::scan::{Cursor, Kind, Word, word};
use crate::clip;
use crate::error::RouteError;
use crate::features::Field;

/// The top-level keys a Messages body may give once.
const TOP_LEVEL: [&str; 8] = [
    "model",
    "messages",
    "system",
    "max_tokens",
    "tools",
    "thinking",
    "metadata",
    "output_format",
];

const SOURCE: Word = word("source");
const THINKING: Word = word("thinking");
const TOOL_USE: Word = word("tool_use");
const TOOL_RESULT: Word = word("tool_result");
const DOCUMENT: Word = word("document");
const DISABLED: Word = word("disabled");
const USER_ID: Word = word("user_id");

/// Where a block sits, and whether it is inside a tool result (whose text is the tool's, not
/// the speaker's).
#[derive(Clone, Copy)]
struct Place<'s> {
    path: &'s dyn Fn() -> String,
    nested: bool,
}

impl<'a> Classification<'_, 'a> {
    pub(super) fn anthropic(&mut self, c: &mut Cursor<'a>) -> Result<(), RouteError> {
        self.asked.prompt = Field::Messages;
        self.members(c, &TOP_LEVEL, |this, c, name| {
            match name {
                "model" => this.model(c)?,
                "messages" => this.anthropic_messages(c)?,
                "system" => this.system(c)?,
                "max_tokens" => this.output_tokens(c, Field::MaxTokens, true)?,
                "tools" => this.typed_tools(c)?,
                "thinking" => this.thinking(c)?,
                "metadata" => this.metadata(c)?,
                "output_format" => this.response_format(c, Field::OutputFormat)?,
                _ => {
                    c.value(None)?;
                }
            }
            Ok(())
        })
    }

    /// `thinking`: extended thinking needs a reasoning model unless its type is `disabled`.
    fn thinking(&mut self, c: &mut Cursor<'a>) -> Result<(), RouteError> {
        if !open_or_null(c, b'{', "thinking")? {
            return Ok(());
        }
        let (mut first, mut disabled) = (true, false);
        while let Some(key) = c.next_key_word(&mut first)? {
            if key == words::TYPE {
                disabled = string_word(c, || "thinking.type".into())?.0 == DISABLED;
            } else {
                c.value(None)?;
            }
        }
        if !disabled {
            self.need(Capability::Reasoning, Field::Thinking);
        }
        Ok(())
    }

    /// `metadata`: its `user_id` keys sticky splits.
    fn metadata(&mut self, c: &mut Cursor<'a>) -> Result<(), RouteError> {
        if c.peek() != Some(b'{') {
            return c.value(None).map(drop);
        }
        c.begin_object()?;
        let mut first = true;
        while let Some(key) = c.next_key_word(&mut first)? {
            if key == USER_ID {
                self.user(c)?;
            } else {
                c.value(None)?;
            }
        }
        Ok(())
    }

    /// `system`: a string or a list of text blocks, counted as a message of its own.
    fn system(&mut self, c: &mut Cursor<'a>) -> Result<(), RouteError> {
        if c.peek() != Some(b'[') {
            return self.system_text(c, "system");
        }
        c.begin_array()?;
        let mut text = MessageText {
            not_user: true,
            ..MessageText::default()
        };
        // What a system block needs, the system prompt asked for.
        let conversation = std::mem::replace(&mut self.asked.prompt, Field::System);
        let (mut first, mut n) = (true, 0u32);
        while c.next_element(&mut first)? {
            let path = || format!("system[{n}]");
            let place = Place {
                path: &path,
                nested: false,
            };
            self.block(c, place, &mut text)?;
            n += 1;
        }
        self.asked.prompt = conversation;
        self.end_message(Role::Other, &text);
        Ok(())
    }

    fn anthropic_messages(&mut self, c: &mut Cursor<'a>) -> Result<(), RouteError> {
        self.message_list(c, "messages", Self::anthropic_message)
    }

    /// One message: `role` (`user` or `assistant`) and `content` (a string or blocks). A user
    /// message that only returns tool results is read as a tool message.
    fn anthropic_message(&mut self, c: &mut Cursor<'a>, i: u32) -> Result<(), RouteError> {
        let member = |name: &str| format!("messages[{i}].{name}");
        if c.peek() != Some(b'{') {
            return Err(must_be(c, &format!("messages[{i}]"), "an object"));
        }
        c.begin_object()?;
        let mut role = Role::Unknown;
        let mut text = MessageText::default();
        let (mut has_content, mut tool_results) = (false, 0u32);
        let (mut first, mut seen) = (true, Seen::default());
        while let Some(key) = c.next_key_word(&mut first)? {
            match key {
                words::ROLE => {
                    seen.once(0, || member("role"))?;
                    role = match string_word(c, || member("role"))? {
                        (words::USER, _) => Role::User,
                        (words::ASSISTANT, _) => Role::Assistant,
                        (_, s) => {
                            let p = member("role");
                            let msg = format!(
                                "unknown role `{}` in `{p}`; expected user or assistant (a system prompt goes in `system`)",
                                clip::name(&s.decode())
                            );
                            return Err(invalid(&p, msg));
                        }
                    };
                }
                words::CONTENT => {
                    seen.once(1, || member("content"))?;
                    text.not_user = role == Role::Assistant;
                    has_content = true;
                    match c.peek() {
                        Some(b'"') => {
                            let s = c.string(Some(&mut text.counts))?;
                            self.piece(&mut text, s);
                        }
                        Some(b'[') => {
                            c.begin_array()?;
                            let (mut first, mut n) = (true, 0u32);
                            while c.next_element(&mut first)? {
                                let path = || format!("messages[{i}].content[{n}]");
                                let place = Place {
                                    path: &path,
                                    nested: false,
                                };
                                tool_results += u32::from(self.block(c, place, &mut text)?);
                                n += 1;
                            }
                        }
                        _ => {
                            let p = member("content");
                            let msg = format!(
                                "`{p}` must be a string or an array of content blocks, got {}",
                                kind_at(c)?
                            );
                            return Err(invalid(&p, msg));
                        }
                    }
                }
                _ => {
                    c.value(None)?;
                }
            }
        }
        if role == Role::Unknown {
            let p = member("role");
            return Err(invalid(&p, format!("`{p}` is required")));
        }
        if !has_content {
            let p = member("content");
            return Err(invalid(&p, format!("`{p}` is required")));
        }
        if role == Role::User && tool_results > 0 && text.pieces == 0 {
            role = Role::Tool;
        }
        self.end_message(role, &text);
        Ok(())
    }

    /// One content block; whether it was a tool result. Text blocks are the message's own text;
    /// images, documents, tool use and results need what they need; thinking counts as text;
    /// blocks of other types count their text and need nothing.
    fn block(
        &mut self,
        c: &mut Cursor<'a>,
        at: Place<'_>,
        text: &mut MessageText<'a>,
    ) -> Result<bool, RouteError> {
        if c.peek() != Some(b'{') {
            return Err(must_be(c, &(at.path)(), "a content block object"));
        }
        let Some((kind, name)) = type_ahead(c, None, at.path)? else {
            let p = format!("{}.type", (at.path)());
            return Err(invalid(&p, format!("`{p}` is required")));
        };
        let field = self.asked.prompt;
        match kind {
            words::TEXT => self.text_block(c, at, text)?,
            words::IMAGE => {
                if !self.has_member(c, SOURCE, at)? {
                    return Err(no_payload(at, "source"));
                }
                self.media(Capability::Vision, field, 0);
            }
            DOCUMENT => self.document(c, at)?,
            TOOL_USE => {
                self.count_block(c, at)?;
                self.need(Capability::Tools, field);
            }
            TOOL_RESULT if !at.nested => {
                self.tool_result(c, at)?;
                self.need(Capability::Tools, field);
                return Ok(true);
            }
            THINKING => {
                c.begin_object()?;
                let (mut first, mut seen) = (true, Seen::default());
                while let Some(key) = c.next_key_word(&mut first)? {
                    seen.type_key(key, at.path)?;
                    let counts = (key == THINKING).then_some(&mut self.prompt);
                    c.value(counts)?;
                }
            }
            _ => {
                let mut buf = [0u8; 32];
                let kind = name.small(&mut buf);
                if kind == "redacted_thinking" {
                    // Encrypted thinking: opaque bytes, no prompt text (read for its `type`).
                    self.has_member(c, words::DATA, at)?;
                } else {
                    if kind.starts_with("web_search") {
                        self.need(Capability::WebSearch, field);
                    }
                    self.count_block(c, at)?;
                }
            }
        }
        Ok(false)
    }

    /// A `text` block: its `text` is the speaker's (or, in a tool result, the tool's).
    fn text_block(
        &mut self,
        c: &mut Cursor<'a>,
        at: Place<'_>,
        text: &mut MessageText<'a>,
    ) -> Result<(), RouteError> {
        c.begin_object()?;
        let (mut first, mut seen, mut found) = (true, Seen::default(), false);
        while let Some(key) = c.next_key_word(&mut first)? {
            if key != words::TEXT {
                seen.type_key(key, at.path)?;
                c.value(None)?;
                continue;
            }
            seen.once(0, || format!("{}.text", (at.path)()))?;
            if c.peek() != Some(b'"') {
                return Err(must_be(c, &format!("{}.text", (at.path)()), "a string"));
            }
            found = true;
            if at.nested {
                c.string(Some(&mut self.prompt))?;
            } else {
                let s = c.string(Some(&mut text.counts))?;
                self.piece(text, s);
            }
        }
        if !found {
            let p = format!("{}.text", (at.path)());
            return Err(invalid(&p, format!("`{p}` is required for a text block")));
        }
        Ok(())
    }

    /// A `tool_result` block: its `content` (a string or blocks) is the tool's text.
    fn tool_result(&mut self, c: &mut Cursor<'a>, at: Place<'_>) -> Result<(), RouteError> {
        c.begin_object()?;
        let (mut first, mut seen) = (true, Seen::default());
        while let Some(key) = c.next_key_word(&mut first)? {
            if key != words::CONTENT {
                seen.type_key(key, at.path)?;
                c.value(None)?;
                continue;
            }
            match c.peek() {
                Some(b'[') => {
                    c.begin_array()?;
                    let (mut first, mut n) = (true, 0u32);
                    let mut unused = MessageText::default();
                    while c.next_element(&mut first)? {
                        let path = || format!("{}.content[{n}]", (at.path)());
                        let place = Place {
                            path: &path,
                            nested: true,
                        };
                        self.block(c, place, &mut unused)?;
                        n += 1;
                    }
                }
                _ => {
                    c.value(Some(&mut self.prompt))?;
                }
            }
        }
        Ok(())
    }

    /// A `document` block: plain-text sources count as text, others (PDF, URL, file) as a
    /// file; its title and context count as text.
    fn document(&mut self, c: &mut Cursor<'a>, at: Place<'_>) -> Result<(), RouteError> {
        c.begin_object()?;
        let (mut first, mut has_source, mut seen) = (true, false, Seen::default());
        while let Some(key) = c.next_key_word(&mut first)? {
            if seen.type_key(key, at.path)? {
                c.value(None)?;
                continue;
            }
            match key {
                SOURCE => {
                    if c.peek() != Some(b'{') {
                        let p = format!("{}.source", (at.path)());
                        return Err(must_be(c, &p, "an object"));
                    }
                    has_source = true;
                    let path = || format!("{}.source", (at.path)());
                    let kind = type_ahead(c, None, path)?;
                    match kind.map(|(w, _)| w) {
                        Some(words::TEXT) => {
                            c.begin_object()?;
                            let mut first = true;
                            while let Some(key) = c.next_key_word(&mut first)? {
                                let counts = (key == words::DATA).then_some(&mut self.prompt);
                                c.value(counts)?;
                            }
                        }
                        // Blocks inside a tool result are read one level deep: a document
                        // there counts its content as text, so no body makes the reader
                        // look ahead over the same bytes more than twice.
                        Some(words::CONTENT) if at.nested => {
                            c.value(Some(&mut self.prompt))?;
                        }
                        Some(words::CONTENT) => {
                            let place = Place {
                                path: &path,
                                nested: true,
                            };
                            self.tool_result(c, place)?;
                        }
                        _ => {
                            let (_, bytes) = payload(c)?;
                            self.media(Capability::FileInput, self.asked.prompt, bytes);
                        }
                    }
                }
                _ => {
                    c.value(Some(&mut self.prompt))?;
                }
            }
        }
        if !has_source {
            return Err(no_payload(at, "source"));
        }
        self.need(Capability::FileInput, self.asked.prompt);
        Ok(())
    }

    /// Reads the object at the cursor; whether it has a non-null member `key`.
    fn has_member(
        &mut self,
        c: &mut Cursor<'a>,
        key: Word,
        at: Place<'_>,
    ) -> Result<bool, RouteError> {
        c.begin_object()?;
        let (mut first, mut found, mut seen) = (true, false, Seen::default());
        while let Some(k) = c.next_key_word(&mut first)? {
            seen.type_key(k, at.path)?;
            let v = c.value(None)?;
            found |= k == key && !matches!(v, Kind::Null);
        }
        Ok(found)
    }

    /// Reads the block at the cursor counting all of its text, its `type` given once.
    fn count_block(&mut self, c: &mut Cursor<'a>, at: Place<'_>) -> Result<(), RouteError> {
        c.begin_object()?;
        let (mut first, mut seen) = (true, Seen::default());
        while let Some(key) = c.next_key(&mut first, Some(&mut self.prompt))? {
            seen.type_key(key.word(), at.path)?;
            c.value(Some(&mut self.prompt))?;
        }
        Ok(())
    }
}

/// A block of a media type without its payload.
fn no_payload(at: Place<'_>, member: &str) -> RouteError {
    let p = format!("{}.{member}", (at.path)());
    invalid(&p, format!("`{p}` is required for this block type"))
}
