//! The classify bench's request bodies and its `serde` yardstick, shared with
//! `examples/classify_profile.rs`.

use std::borrow::Cow;

use fluxroute::Api;
use serde::Deserialize;

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    #[allow(dead_code)]
    model: Cow<'a, str>,
    #[serde(borrow)]
    messages: Vec<Message<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    #[allow(dead_code)]
    role: Cow<'a, str>,
    #[serde(borrow, default)]
    #[allow(dead_code)]
    content: Option<Cow<'a, str>>,
}

/// What a straightforward implementation pays just to parse: `serde_json::from_slice` into a
/// borrowed struct (`model`, `messages` with `role` and `content`). The number of messages.
pub fn serde_baseline(bytes: &[u8]) -> Option<usize> {
    serde_json::from_slice::<Body<'_>>(bytes)
        .ok()
        .map(|b| b.messages.len())
}

const TURN_USER: &str = r#"{"role": "user", "content": "Why does this fail?\n```rust\nfn parse(s: &str) -> Result<u32, String> {\n    s.trim().parse::<u32>().map_err(|e| format!(\"bad \\\"{s}\\\": {e}\"))\n}\n```\nThe caf\u00e9 owner says it worked before — 日本語のログも見てください."}"#;
const TURN_ASSISTANT: &str = r#"{"role": "assistant", "content": "The input has a trailing \"\\r\" from Windows line endings; `trim()` removes it, so the error is elsewhere: the value 4294967296 overflows `u32`. Use `u64` or check the range first.\n\n1. Log the raw bytes.\n2. Parse as u64.\n3. Convert with `try_from`."}"#;
const TOOLS: &str = r#""tools": [{"type": "function", "function": {"name": "run_tests", "description": "Run the test suite and return failures", "parameters": {"type": "object", "properties": {"filter": {"type": "string"}}}}}]"#;

const SYSTEM: &str = "You are a careful senior engineer. Answer with code when it helps.";
const TOOL_NAME: &str =
    r#""name": "run_tests", "description": "Run the test suite and return failures""#;
const TOOL_SCHEMA: &str = r#"{"type": "object", "properties": {"filter": {"type": "string"}}}"#;

/// A realistic Chat Completions body of about `size` bytes: a system prompt, turns with code
/// and escapes, tools.
#[allow(dead_code)]
pub fn body(size: usize) -> Vec<u8> {
    body_in(Api::Chat, size)
}

/// The same conversation as [`body`] (the same turns) written for `api`: the system prompt as `instructions`
/// (Responses) or `system` (Anthropic), the same turns, the same tool in the API's form.
pub fn body_in(api: Api, size: usize) -> Vec<u8> {
    let (head, tail) = match api {
        Api::Chat => (
            format!(
                r#"{{"model": "flux-auto", "messages": [{{"role": "system", "content": "{SYSTEM}"}}, "#
            ),
            format!(r#"], {TOOLS}}}"#),
        ),
        Api::Responses => (
            format!(r#"{{"model": "flux-auto", "instructions": "{SYSTEM}", "input": ["#),
            format!(
                r#"], "tools": [{{"type": "function", {TOOL_NAME}, "parameters": {TOOL_SCHEMA}}}]}}"#
            ),
        ),
        Api::Messages => (
            format!(
                r#"{{"model": "flux-auto", "max_tokens": 4096, "system": "{SYSTEM}", "messages": ["#
            ),
            format!(r#"], "tools": [{{{TOOL_NAME}, "input_schema": {TOOL_SCHEMA}}}]}}"#),
        ),
    };
    // As many turns as the chat body has, whatever the API's framing.
    let mut turns = Vec::new();
    let chat_head = format!(
        r#"{{"model": "flux-auto", "messages": [{{"role": "system", "content": "{SYSTEM}"}}, "#
    );
    let mut len = chat_head.len() + TOOLS.len() + 8;
    while len < size || turns.len() < 2 {
        let t = if turns.len() % 2 == 0 {
            TURN_USER
        } else {
            TURN_ASSISTANT
        };
        len += t.len() + 2;
        turns.push(t);
    }
    if turns.len() % 2 == 0 {
        turns.pop();
    }
    format!("{head}{}{tail}", turns.join(", ")).into_bytes()
}

/// A conversation of `n` short messages: the JSON walk between strings dominates.
#[allow(dead_code)]
pub fn many_messages(n: usize) -> Vec<u8> {
    let messages: Vec<&str> = (0..n)
        .map(|i| {
            if i % 2 == 0 {
                r#"{"role": "user", "content": "Is it done yet?"}"#
            } else {
                r#"{"role": "assistant", "content": "Not yet, a minute."}"#
            }
        })
        .collect();
    format!(
        r#"{{"model": "flux-auto", "messages": [{}]}}"#,
        messages.join(", ")
    )
    .into_bytes()
}

/// One user message of about `size` bytes: the user turn's text pasted over and over, as a
/// long document with a question. Patterns see its head and tail windows.
#[allow(dead_code)]
pub fn long_user(size: usize) -> Vec<u8> {
    let content = TURN_USER
        .split_once(r#""content": ""#)
        .and_then(|(_, c)| c.strip_suffix(r#""}"#))
        .unwrap_or(TURN_USER);
    let head = r#"{"model": "flux-auto", "messages": [{"role": "user", "content": ""#;
    let mut text = String::new();
    while head.len() + text.len() < size {
        text.push_str(content);
        text.push_str(r"\n\n");
    }
    format!("{head}{text}\"}}]}}").into_bytes()
}

/// About `size` bytes of Chinese chat with every non-ASCII character written as a `\u`
/// escape, as Python's `json.dumps` writes it by default.
#[allow(dead_code)]
pub fn escaped_cjk(size: usize) -> Vec<u8> {
    const TEXT: &str = "请帮我分析一下这段代码的性能问题，并给出优化建议。服务在高并发下延迟很高，日志显示数据库连接池经常耗尽。";
    let escaped: String = TEXT
        .chars()
        .map(|c| format!("\\u{:04x}", u32::from(c)))
        .collect();
    let turn = |role: &str| format!(r#"{{"role": "{role}", "content": "{escaped}{escaped}"}}"#);
    let (user, assistant) = (turn("user"), turn("assistant"));
    let mut turns = vec![user.clone()];
    let mut len = user.len() + 40;
    while len < size {
        let t = if turns.len() % 2 == 0 {
            &user
        } else {
            &assistant
        };
        len += t.len() + 2;
        turns.push(t.clone());
    }
    if turns.len() % 2 == 0 {
        turns.pop();
    }
    format!(
        r#"{{"model": "flux-auto", "messages": [{}]}}"#,
        turns.join(", ")
    )
    .into_bytes()
}
