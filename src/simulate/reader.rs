//! Reading a log: lines a batch at a time with a cap on each (so no line, and no log without
//! newlines, makes memory grow without bound), gzip undone, and each line read as a record.

use std::collections::BTreeMap;
use std::io::{self, BufRead};
use std::ops::Range;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::clip;
use crate::features::Api;

/// Records routed per batch: large enough to keep every core busy, small enough to keep
/// memory flat.
const BATCH: usize = 8192;
/// A batch also ends once its lines hold this many bytes, so logs of large bodies stay flat too.
const BATCH_BYTES: usize = 16 << 20;

/// The largest quality label read (in absolute value): scores are 0..1 or a judge's scale, and
/// a label past this (1e308, say) would poison every sum it enters. Larger ones make the
/// record's `quality` malformed.
const MAX_QUALITY: f64 = 1e6;
/// The most tokens a `usage` count may claim; more make the record's `usage` malformed.
const MAX_USAGE_TOKENS: u64 = u32::MAX as u64;

/// One log line as a record: a bare request body, or `{"id", "request", "api"?, "quality"?,
/// "usage"?}`.
pub(crate) struct Record<'t> {
    pub id: String,
    pub body: &'t [u8],
    /// The request API the record names (`None`: the run's), or the value it gave that names
    /// none.
    pub api: Result<Option<Api>, String>,
    /// Quality labels by model id, in id order.
    pub quality: Vec<(String, f64)>,
    pub usage: Option<Usage>,
    /// Fields present but malformed (`quality`, `usage`), ignored and counted.
    pub ignored: Vec<&'static str>,
}

/// The tokens a record says its request actually used, as Chat Completions names them
/// (`prompt_tokens`, `completion_tokens`) or as the Responses and Anthropic APIs do
/// (`input_tokens`, `output_tokens`).
#[derive(Deserialize)]
pub(crate) struct Usage {
    #[serde(alias = "input_tokens")]
    pub prompt_tokens: u64,
    #[serde(default, alias = "output_tokens")]
    pub completion_tokens: u64,
}

#[derive(Deserialize)]
struct Wrapper<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    request: Option<&'a RawValue>,
    #[serde(borrow, default)]
    api: Option<&'a RawValue>,
    #[serde(borrow, default)]
    quality: Option<&'a RawValue>,
    #[serde(borrow, default)]
    usage: Option<&'a RawValue>,
}

impl<'t> Record<'t> {
    /// Reads line number `line`; a line that is not a wrapper is the body itself (a
    /// wrapper's id still names it), and a record without an id is named `line:N`.
    pub fn parse(line: u64, text: &'t [u8]) -> Self {
        let mut ignored = Vec::new();
        // Only an object is a wrapper (serde would also read an array as one, by position).
        let object = text.trim_ascii_start().first() == Some(&b'{');
        let wrapper = object
            .then(|| serde_json::from_slice::<Wrapper<'_>>(text).ok())
            .flatten();
        let (id, body, quality, usage, api) = match &wrapper {
            Some(w) if w.request.is_some() => (
                w.id.and_then(id_text)
                    .unwrap_or_else(|| format!("line:{line}")),
                w.request.map_or(text, |r| r.get().as_bytes()),
                w.quality,
                w.usage,
                w.api,
            ),
            _ => (
                wrapper
                    .as_ref()
                    .and_then(|w| w.id)
                    .and_then(id_text)
                    .unwrap_or_else(|| format!("line:{line}")),
                text,
                None,
                None,
                None,
            ),
        };
        let api = match api {
            None => Ok(None),
            Some(raw) => serde_json::from_str::<&str>(raw.get())
                .ok()
                .and_then(|name| name.parse::<Api>().ok())
                .map(Some)
                .ok_or_else(|| clip::name(raw.get()).into_owned()),
        };
        let quality = quality.map_or_else(Vec::new, |q| {
            let parsed = serde_json::from_str::<BTreeMap<String, f64>>(q.get())
                .ok()
                .filter(|m| m.values().all(|q| q.is_finite() && q.abs() <= MAX_QUALITY));
            parsed.map_or_else(
                || {
                    ignored.push("quality");
                    Vec::new()
                },
                |m| m.into_iter().collect(),
            )
        });
        let usage = usage.and_then(|u| {
            let parsed = serde_json::from_str::<Usage>(u.get()).ok().filter(|u| {
                u.prompt_tokens <= MAX_USAGE_TOKENS && u.completion_tokens <= MAX_USAGE_TOKENS
            });
            if parsed.is_none() {
                ignored.push("usage");
            }
            parsed
        });
        Record {
            id,
            body,
            api,
            quality,
            usage,
            ignored,
        }
    }
}

/// The longest log line read for a policy whose bodies may be `max_body_bytes` long: a record
/// is its body plus a little wrapping (id, quality labels, usage).
pub(super) fn line_cap(max_body_bytes: usize) -> usize {
    max_body_bytes.saturating_add(1 << 16)
}

/// Calls `f` with each record of a log (JSONL, plain or gzip; blank lines skipped), in order,
/// or `None` for a line longer than [`line_cap`] of `max_body_bytes` (skipped unread).
pub(crate) fn for_each_record(
    path: &std::path::Path,
    max_body_bytes: usize,
    mut f: impl FnMut(Option<Record<'_>>),
) -> Result<(), String> {
    let fail = |e: io::Error| format!("cannot read {}: {e}", path.display());
    let (input, _) = open_log(path).map_err(fail)?;
    let mut reader = LogReader::new(input, line_cap(max_body_bytes));
    loop {
        let batch = reader.batch().map_err(fail)?;
        if batch.is_empty() {
            return Ok(());
        }
        for (n, range) in &batch.lines {
            f(range.as_ref().map(|r| {
                Record::parse(
                    *n,
                    trim_newline(batch.data.get(r.clone()).unwrap_or_default()),
                )
            }));
        }
    }
}

/// Reads the log a batch at a time.
pub(super) struct LogReader<R> {
    input: R,
    /// The longest line kept; longer ones are skipped and reported.
    cap: usize,
    line: u64,
    /// Bytes read so far.
    pub bytes: u64,
    /// Blank lines skipped so far.
    pub blank: u64,
    done: bool,
}

impl<R: BufRead> LogReader<R> {
    /// A reader of `input` that keeps lines of at most `cap` bytes.
    pub fn new(input: R, cap: usize) -> Self {
        LogReader {
            input,
            cap,
            line: 0,
            bytes: 0,
            blank: 0,
            done: false,
        }
    }

    /// The next batch of non-blank lines with their numbers; empty at the end.
    pub fn batch(&mut self) -> io::Result<Batch> {
        let mut batch = Batch::default();
        while !self.done && batch.lines.len() < BATCH && batch.data.len() < BATCH_BYTES {
            let mut n = 0;
            let range = match read_line(&mut self.input, self.cap, &mut batch.data, &mut n)? {
                Read::End => {
                    self.done = true;
                    break;
                }
                Read::Line(range) => Some(range),
                Read::TooLong => None,
            };
            self.bytes += n as u64;
            self.line += 1;
            let blank = range.as_ref().is_some_and(|r| {
                batch
                    .data
                    .get(r.clone())
                    .unwrap_or_default()
                    .iter()
                    .all(u8::is_ascii_whitespace)
            });
            if blank {
                self.blank += 1;
                if let Some(r) = range {
                    batch.data.truncate(r.start);
                }
                continue;
            }
            batch.lines.push((self.line, range));
        }
        Ok(batch)
    }
}

/// Lines read together: one buffer, and each line's number and range in it (`None`: the line
/// was longer than the cap and skipped).
#[derive(Default)]
pub(super) struct Batch {
    pub data: Vec<u8>,
    pub lines: Vec<(u64, Option<Range<usize>>)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// One line of the log, read with a cap on its length.
enum Read {
    End,
    /// The line (with its newline) is the given range of the batch's buffer.
    Line(Range<usize>),
    /// Longer than the cap: the rest of it was skipped.
    TooLong,
}

/// Reads one line of at most `cap` bytes onto the end of `buf` (longer lines are skipped to
/// their end, so a log with no newlines cannot make the reader allocate without bound).
/// Bytes are kept as read: a line that is not UTF-8 fails classification as `invalid_json`.
fn read_line<R: BufRead>(
    input: &mut R,
    cap: usize,
    buf: &mut Vec<u8>,
    consumed: &mut usize,
) -> io::Result<Read> {
    let start = buf.len();
    let mut too_long = false;
    *consumed = 0;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        let (take, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if !too_long {
            if buf.len() - start + take > cap {
                too_long = true;
                buf.truncate(start);
            } else {
                buf.extend_from_slice(chunk.get(..take).unwrap_or_default());
            }
        }
        input.consume(take);
        *consumed += take;
        if done {
            break;
        }
    }
    Ok(match (*consumed, too_long) {
        (0, _) => Read::End,
        (_, true) => Read::TooLong,
        _ => Read::Line(start..buf.len()),
    })
}

/// Opens a log file or `-` (stdin), undoing gzip when the data starts with its magic bytes.
/// Returns the reader and the file's size when known (for progress).
pub fn open_log(path: &std::path::Path) -> io::Result<(Box<dyn BufRead + Send>, Option<u64>)> {
    let (mut reader, size): (Box<dyn BufRead + Send>, Option<u64>) =
        if path == std::path::Path::new("-") {
            (Box::new(io::BufReader::new(io::stdin())), None)
        } else {
            let file = std::fs::File::open(path)?;
            let size = file.metadata().ok().map(|m| m.len());
            (Box::new(io::BufReader::with_capacity(1 << 20, file)), size)
        };
    let gzip = reader.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    if gzip {
        let decoder = flate2::bufread::MultiGzDecoder::new(reader);
        // The size of compressed input says nothing about the records: no percentage.
        return Ok((
            Box::new(io::BufReader::with_capacity(1 << 20, decoder)),
            None,
        ));
    }
    Ok((reader, size))
}

/// A record's id as text: a string as is, a number as written.
fn id_text(raw: &RawValue) -> Option<String> {
    match serde_json::from_str::<Value>(raw.get()).ok()? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A line without its line ending.
pub(super) fn trim_newline(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = line {
        line = rest;
    }
    line
}
