//! The `fluxroute` command line: a thin layer over the library.

#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fluxroute::{CallerContext, CompiledPolicy, Severity};
use serde_json::{Value, json};

/// Routing-policy engine for LLM gateways.
#[derive(Parser)]
#[command(name = "fluxroute", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Route one request body and print the decision as JSON.
    Route {
        /// Policy file (default: the embedded default policy).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Tenant the request belongs to.
        #[arg(long)]
        tenant: Option<String>,
        /// Tag attached by the host; repeat for several.
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Backing model ids currently unavailable, comma-separated.
        #[arg(long, value_delimiter = ',')]
        unavailable: Vec<String>,
        /// Add every rule and candidate with why it was kept or dropped.
        #[arg(long)]
        explain: bool,
        /// Request body file, or `-` for stdin (the default).
        file: Option<PathBuf>,
    },
    /// Print the `/v1/models` body.
    Models {
        /// Policy file (default: the embedded default policy).
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Validate policy files; exit 0 when all are valid, 1 otherwise.
    Check {
        /// Treat warnings as errors.
        #[arg(long)]
        deny_warnings: bool,
        /// Policy files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// An operational failure: message on stderr, exit 1.
struct Failure(String);

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Route {
            policy,
            tenant,
            tags,
            unavailable,
            explain,
            file,
        } => route(
            policy.as_deref(),
            tenant.as_deref(),
            &tags,
            &unavailable,
            explain,
            file.as_deref(),
        ),
        Command::Models { policy } => {
            load(policy.as_deref()).and_then(|p| print_json(&p.models()).map(|()| 0))
        }
        Command::Check {
            deny_warnings,
            files,
        } => Ok(check(&files, deny_warnings)),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Failure(msg)) => {
            eprintln!("fluxroute: {msg}");
            ExitCode::from(1)
        }
    }
}

fn load(path: Option<&Path>) -> Result<CompiledPolicy, Failure> {
    let Some(path) = path else {
        return Ok(CompiledPolicy::embedded());
    };
    let loaded = CompiledPolicy::load(path).map_err(|e| Failure(e.to_string()))?;
    for w in &loaded.warnings {
        eprintln!("{w}");
    }
    Ok(loaded.policy)
}

fn print_json(value: &Value) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)
        .map_err(io::Error::from)
        .and_then(|()| writeln!(out))
        .map_err(|e| Failure(format!("cannot write output: {e}")))
}

fn read_body(file: Option<&Path>, limit: usize) -> Result<Vec<u8>, Failure> {
    // One byte over the limit is enough for classification to reject the body as too large.
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut body = Vec::new();
    let read = match file {
        None => io::stdin().lock().take(cap).read_to_end(&mut body),
        Some(p) if p == Path::new("-") => io::stdin().lock().take(cap).read_to_end(&mut body),
        Some(p) => std::fs::File::open(p).and_then(|f| f.take(cap).read_to_end(&mut body)),
    };
    read.map_err(|e| Failure(format!("cannot read request body: {e}")))?;
    Ok(body)
}

fn route(
    policy: Option<&Path>,
    tenant: Option<&str>,
    tags: &[String],
    unavailable: &[String],
    explain: bool,
    file: Option<&Path>,
) -> Result<u8, Failure> {
    let policy = load(policy)?;
    let unavailable: Vec<&str> = unavailable
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    for id in &unavailable {
        if !policy.model_ids().any(|m| m == *id) {
            eprintln!(
                "fluxroute: warning: --unavailable names `{id}`, which is not a model of this policy"
            );
        }
    }
    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    let ctx = CallerContext {
        tenant,
        tags: &tags,
        unavailable: &unavailable,
    };
    let body = read_body(file, policy.max_body_bytes())?;
    let features = match policy.classify(&body) {
        Ok(f) => f,
        Err(e) => return print_error(&e).map(|()| 2),
    };
    match policy.route(&features, &ctx) {
        Ok(decision) => {
            let mut out = decision.to_json();
            if explain {
                if let Some(obj) = out.as_object_mut() {
                    obj.insert("explain".into(), policy.explain(&features, &ctx));
                }
            }
            print_json(&out).map(|()| 0)
        }
        Err(e) => {
            let mut out = error_json(&e);
            if explain {
                if let Some(obj) = out.as_object_mut() {
                    obj.insert("explain".into(), policy.explain(&features, &ctx));
                }
            }
            print_json(&out).map(|()| 2)
        }
    }
}

fn print_error(e: &fluxroute::RouteError) -> Result<(), Failure> {
    print_json(&error_json(e))
}

/// `{"status": <http status>, "error": {...}}`.
fn error_json(e: &fluxroute::RouteError) -> Value {
    let mut body = e.body();
    let error = body.get_mut("error").map(Value::take).unwrap_or_default();
    json!({"status": e.status(), "error": error})
}

fn check(files: &[PathBuf], deny_warnings: bool) -> u8 {
    let mut failed = false;
    for path in files {
        let diagnostics = match std::fs::read_to_string(path) {
            Ok(text) => CompiledPolicy::validate(&text, &path.display().to_string()),
            Err(e) => {
                eprintln!("{}: error[io]: cannot read policy: {e}", path.display());
                failed = true;
                continue;
            }
        };
        let errors = diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        let warnings = diagnostics.len() - errors;
        for d in &diagnostics {
            eprintln!("{d}");
        }
        let bad = errors > 0 || (deny_warnings && warnings > 0);
        failed |= bad;
        println!(
            "{}: {} ({errors} error(s), {warnings} warning(s))",
            path.display(),
            if bad { "invalid" } else { "ok" }
        );
    }
    u8::from(failed)
}
