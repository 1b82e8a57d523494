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
    /// Train a complexity scorer from labelled routing-eval JSONL files and print its k-fold
    /// held-out APGR and CPT(50%) beside the length baseline and the policy's own score.
    Train(TrainArgs),
    /// Set a policy's class thresholds so that a share of a log's requests is `complex` or
    /// `reasoning`.
    Calibrate(CalibrateArgs),
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

#[derive(clap::Args)]
struct TrainArgs {
    /// Write the model file here.
    #[arg(long)]
    out: PathBuf,
    /// The weak model's id; repeat to take the mean of several. With neither --weak nor
    /// --strong, every record must name the same two models.
    #[arg(long)]
    weak: Vec<String>,
    /// The strong model's id.
    #[arg(long)]
    strong: Option<String>,
    /// Folds of the held-out figures.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Seed of the n-gram hash and of the folds.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// 2^BITS hashed n-gram buckets.
    #[arg(long, default_value_t = 12)]
    bits: u32,
    /// The policy whose signals the model weighs (default: the embedded default policy).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Labelled JSONL files (`{"id", "request", "quality"}`), plain or gzip.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(clap::Args)]
struct CalibrateArgs {
    /// The policy to calibrate (default: the embedded default policy; --write needs a file).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The share of the log's requests to put in the strong classes, in [0, 1].
    #[arg(long)]
    strong_share: f64,
    /// The share to put in `reasoning` (default: its part of the strong requests now).
    #[arg(long)]
    reasoning_share: Option<f64>,
    /// The share to put in `simple` (default: its part of the other requests now).
    #[arg(long)]
    simple_share: Option<f64>,
    /// Rewrite the policy file's thresholds in place.
    #[arg(long)]
    write: bool,
    /// The request API of bare bodies and of records without an `"api"` field.
    #[arg(long, default_value_t = Api::Chat)]
    api: Api,
    /// The log: JSONL, plain or gzip.
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
        Command::Train(args) => train(&args),
        Command::Calibrate(args) => calibrate(&args),
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
                obj.insert(
                    "explain".into(),
                    explain(&policy, &features, &ctx, args.api, &body),
                );
            }
            print_json(&out).map(|()| 0)
        }
        Err(e) => {
            let mut out = error_json(&e);
            if args.explain
                && let Some(obj) = out.as_object_mut()
            {
                obj.insert(
                    "explain".into(),
                    explain(&policy, &features, &ctx, args.api, &body),
                );
            }
            print_json(&out).map(|()| 2)
        }
    }
}

fn train(args: &TrainArgs) -> Result<u8, Failure> {
    let policy = load(args.policy.as_deref())?;
    let mut options = fluxroute::TrainOptions::default();
    options.weak.clone_from(&args.weak);
    options.strong.clone_from(&args.strong);
    options.folds = args.folds;
    options.seed = args.seed;
    options.bits = args.bits;
    let trained = fluxroute::train_scorer(&policy, &args.files, &options).map_err(Failure)?;
    std::fs::write(&args.out, &trained.text)
        .map_err(|e| Failure(format!("cannot write {}: {e}", args.out.display())))?;
    let cpt = |c: Option<f64>| c.map_or("-".to_owned(), |c| format!("{:.1}%", c * 100.0));
    println!("{}-fold held-out, by file: APGR (CPT(50%))", options.folds);
    println!(
        "{:<44} {:>7} {:>16} {:>16} {:>16}",
        "file", "pairs", "model", "length", "policy"
    );
    for f in &trained.files {
        let cell = |(a, c): (f64, Option<f64>)| format!("{a:.3} ({})", cpt(c));
        println!(
            "{:<44} {:>7} {:>16} {:>16} {:>16}",
            f.file,
            f.records,
            cell(f.model),
            cell(f.length),
            cell(f.policy)
        );
        if f.skipped > 0 {
            println!(
                "  {} record(s) skipped: no quality for both sides, or not classified",
                f.skipped
            );
        }
    }
    println!("wrote {}", args.out.display());
    Ok(0)
}

fn calibrate(args: &CalibrateArgs) -> Result<u8, Failure> {
    let policy = load(args.policy.as_deref())?;
    let shares = fluxroute::Shares {
        strong: args.strong_share,
        reasoning: args.reasoning_share,
        simple: args.simple_share,
    };
    let c = fluxroute::calibrate(&policy, &args.log, shares, args.api).map_err(Failure)?;
    let [standard, complex, reasoning] = c.thresholds;
    println!(
        "thresholds = {{ standard = {standard:.6}, complex = {complex:.6}, reasoning = {reasoning:.6} }}"
    );
    println!(
        "strong share on {}: {:.1}% of {} requests (asked {:.1}%; {} floored by signals)",
        args.log.display(),
        c.strong_share * 100.0,
        c.records,
        args.strong_share * 100.0,
        c.floored
    );
    if args.write {
        let path = args
            .policy
            .as_deref()
            .ok_or_else(|| Failure("--write needs --policy FILE".into()))?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
        let origin = path.display().to_string();
        let out = fluxroute::write_thresholds(&text, &origin, c.thresholds).map_err(Failure)?;
        std::fs::write(path, out)
            .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))?;
        println!("wrote {}", path.display());
    }
    Ok(0)
}

/// The explanation of a decision: rules and candidates, and with a trained scorer the terms
/// that moved the complexity score most (`score`, at most ten, largest first).
fn explain(
    policy: &CompiledPolicy,
    features: &fluxroute::RequestFeatures,
    ctx: &CallerContext<'_>,
    api: Api,
    body: &[u8],
) -> Value {
    let mut why = policy.explain(features, ctx);
    let terms = policy.explain_score(api, body).unwrap_or_default();
    if let (false, Some(obj)) = (terms.is_empty(), why.as_object_mut()) {
        let top: Vec<Value> = terms
            .iter()
            .take(10)
            .map(|t| json!({"feature": t.feature, "contribution": (f64::from(t.contribution) * 1e4).round() / 1e4}))
            .collect();
        obj.insert("score".into(), Value::Array(top));
    }
    why
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
