//! The `fluxroute` command line: a thin layer over the library.

#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fluxroute::{Api, CallerContext, CompiledPolicy, Severity};
use serde_json::{Value, json};

/// Routing-policy engine for LLM gateways.
#[derive(Parser)]
#[command(name = "fluxroute", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Let a policy's `catalog` name a file outside the policy's directory.
    #[arg(long, global = true)]
    catalog_anywhere: bool,
}

/// How every policy of this run is loaded (set once from the command line).
static LOAD: std::sync::OnceLock<fluxroute::LoadOptions> = std::sync::OnceLock::new();

fn options() -> fluxroute::LoadOptions {
    LOAD.get().copied().unwrap_or_default()
}

#[derive(Subcommand)]
enum Command {
    /// Route one request body and print the decision as JSON.
    Route(RouteArgs),
    /// Replay a JSONL request log (gzip or plain) and summarize cost, quality and model mix.
    Simulate(SimulateArgs),
    /// Print the `/v1/models` body.
    Models {
        /// Policy file (default: the embedded default policy).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// List only what this tenant may use.
        #[arg(long)]
        tenant: Option<String>,
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

#[derive(clap::Args)]
struct RouteArgs {
    /// Policy file (default: the embedded default policy).
    #[arg(long)]
    policy: Option<PathBuf>,
    #[command(flatten)]
    caller: CallerArgs,
    /// The request API the body is written in: chat, responses or messages (Anthropic).
    #[arg(long, default_value_t = Api::Chat)]
    api: Api,
    /// Add every rule and candidate with why it was kept or dropped.
    #[arg(long)]
    explain: bool,
    /// Also write the body to forward here: the request with only `model` replaced by the
    /// served model's id.
    #[arg(long, value_name = "FILE")]
    forward: Option<PathBuf>,
    /// Request body file, or `-` for stdin (the default).
    file: Option<PathBuf>,
}

#[derive(clap::Args)]
struct SimulateArgs {
    /// Policy file (default: the embedded default policy).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// A second policy to compare against.
    #[arg(long)]
    against: Option<PathBuf>,
    /// Write one `{"id", "decision"}` or `{"id", "error"}` line per record here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Summary format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Draw the two-model quality/cost curve as SVG (two-model evaluation sets only).
    #[arg(long)]
    plot: Option<PathBuf>,
    #[command(flatten)]
    caller: CallerArgs,
    /// The request API of bare bodies and of records without an `"api"` field.
    #[arg(long, default_value_t = Api::Chat)]
    api: Api,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// The log: JSONL, plain or gzip; `-` for stdin.
    log: PathBuf,
}

/// What the host knows about the caller (every request of a `simulate` run alike).
#[derive(clap::Args)]
struct CallerArgs {
    /// Tenant the requests belong to.
    #[arg(long)]
    tenant: Option<String>,
    /// Tag attached by the host; repeat for several.
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Backing model ids currently unavailable, comma-separated.
    #[arg(long, value_delimiter = ',')]
    unavailable: Vec<String>,
}

impl CallerArgs {
    /// The tags and unavailable ids as `CallerContext` borrows them, warning about ids the
    /// policy does not have.
    fn views(&self, policy: &CompiledPolicy) -> (Vec<&str>, Vec<&str>) {
        let tags = self.tags.iter().map(String::as_str).collect();
        let unavailable: Vec<&str> = self
            .unavailable
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
        (tags, unavailable)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Json,
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
    let mut options = fluxroute::LoadOptions::default();
    options.catalog_anywhere = cli.catalog_anywhere;
    let _ = LOAD.set(options);
    let result = match cli.command {
        Command::Route(args) => route(&args),
        Command::Simulate(args) => simulate(&args),
        Command::Models { policy, tenant } => load(policy.as_deref()).and_then(|p| {
            let listing = match tenant {
                Some(t) => p.models_for(Some(&t)),
                None => p.list_models(),
            };
            print_json(&listing).map(|()| 0)
        }),
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
    let loaded =
        CompiledPolicy::from_file_with(path, options()).map_err(|e| Failure(e.to_string()))?;
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

fn route(args: &RouteArgs) -> Result<u8, Failure> {
    let policy = load(args.policy.as_deref())?;
    let (tags, unavailable) = args.caller.views(&policy);
    let ctx = CallerContext {
        tenant: args.caller.tenant.as_deref(),
        tags: &tags,
        unavailable: &unavailable,
    };
    let body = read_body(args.file.as_deref(), policy.max_body_bytes())?;
    let features = match policy.classify_as(args.api, &body) {
        Ok(f) => f,
        Err(e) => return print_error(&e).map(|()| 2),
    };
    match policy.route(&features, &ctx) {
        Ok(decision) => {
            if let Some(path) = &args.forward {
                let mut forwarded = Vec::new();
                decision
                    .forward(&body, &mut forwarded)
                    .map_err(|e| Failure(format!("cannot forward the body: {e}")))?;
                std::fs::write(path, forwarded)
                    .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))?;
            }
            let mut out = decision.to_json();
            if args.explain
                && let Some(obj) = out.as_object_mut()
            {
                obj.insert("explain".into(), policy.explain(&features, &ctx));
            }
            print_json(&out).map(|()| 0)
        }
        Err(e) => {
            let mut out = error_json(&e);
            if args.explain
                && let Some(obj) = out.as_object_mut()
            {
                obj.insert("explain".into(), policy.explain(&features, &ctx));
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
    json!({"status": e.status(), "error": e.error_object()})
}

fn check(files: &[PathBuf], deny_warnings: bool) -> u8 {
    let mut failed = false;
    for path in files {
        // Read as the library reads policies: regular files only, with a size bound.
        let diagnostics = match CompiledPolicy::from_file_with(path, options()) {
            Ok(loaded) => loaded.warnings,
            Err(e) => e.diagnostics().to_vec(),
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

fn simulate(args: &SimulateArgs) -> Result<u8, Failure> {
    use std::io::IsTerminal;
    use std::time::{Duration, Instant};

    let policy = load(args.policy.as_deref())?;
    let against = args.against.as_deref().map(|p| load(Some(p))).transpose()?;
    let (tags, unavailable) = args.caller.views(&policy);
    let ctx = CallerContext {
        tenant: args.caller.tenant.as_deref(),
        tags: &tags,
        unavailable: &unavailable,
    };
    let (input, size) = fluxroute::open_log(&args.log)
        .map_err(|e| Failure(format!("cannot read {}: {e}", args.log.display())))?;
    let mut out_file = match &args.out {
        Some(p) => Some(io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(p)
                .map_err(|e| Failure(format!("cannot create {}: {e}", p.display())))?,
        )),
        None => None,
    };
    let mut sim = fluxroute::Simulation::new(&policy)
        .context(ctx)
        .api(args.api);
    if let Some(b) = &against {
        sim = sim.against(b);
    }
    let show = !args.quiet && io::stderr().is_terminal();
    let start = Instant::now();
    let mut last = start;
    let report = sim
        .run(
            input,
            out_file.as_mut().map(|w| w as &mut (dyn Write + Send)),
            |p| {
                if show && last.elapsed() >= Duration::from_millis(250) {
                    last = Instant::now();
                    let rate = p.records as f64 / start.elapsed().as_secs_f64().max(1e-9);
                    let pct = size.filter(|s| *s > 0).map_or(String::new(), |s| {
                        format!(
                            ", {:.1}% of {} MB",
                            p.bytes as f64 * 100.0 / s as f64,
                            s / 1_000_000
                        )
                    });
                    eprint!("\r{} records, {:.0} records/s{pct}   ", p.records, rate);
                }
            },
        )
        .map_err(|e| Failure(format!("simulation failed: {e}")))?;
    if show {
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "\r{} records in {secs:.2} s ({:.0} records/s)   ",
            report.records(),
            report.records() as f64 / secs.max(1e-9)
        );
    }
    if let (Some(path), Some(t)) = (&args.plot, report.tradeoff()) {
        t.plot_svg(
            path,
            &format!("{} on {}", policy.name(), args.log.display()),
        )
        .map_err(Failure)?;
    } else if let Some(path) = &args.plot {
        eprintln!(
            "fluxroute: warning: no two-model evaluation set in the log; {} not drawn",
            path.display()
        );
    }
    match args.format {
        Format::Json => print_json(&report.to_json())?,
        Format::Table => print!("{}", report.to_table()),
    }
    Ok(0)
}
