//! The reference gateway over the fluxroute engine.
//!
//! `POST /v1/chat/completions`, `/v1/responses` and `/v1/messages` are classified and routed by
//! the policy, forwarded byte for byte (only `model` replaced) to the served model's
//! OpenAI-compatible upstream, and streamed back unchanged (SSE included) with `X-Flux-Model`,
//! `X-Flux-Routed` and `X-Flux-Policy`. A `flux-auto` or tier request whose upstream answers
//! 429 or 5xx, or cannot be reached, is retried on the decision's next fallback; pinned and
//! passthrough requests never are. `GET /v1/models` lists the routable names, `GET /metrics`
//! serves Prometheus metrics. The policy reloads when its file changes and on SIGHUP; SIGINT
//! and SIGTERM shut down gracefully.

mod config;
mod metrics;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router as Routes;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use clap::Parser;
use fluxroute::{Api, CallerContext, CompiledPolicy, Decision, Mode, RouteError, Router, Watcher};

use config::Config;
use metrics::Metrics;

/// The reference gateway over the fluxroute engine.
#[derive(Parser)]
#[command(name = "fluxroute-gateway", version, about)]
struct Args {
    /// Policy file (default: the embedded default policy, which cannot be reloaded).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Gateway configuration: upstreams per provider and API keys per tenant.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Send every provider to this base URL (for example `http://127.0.0.1:9000/v1`).
    #[arg(long)]
    upstream: Option<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Seconds an upstream has to answer before the next fallback is tried.
    #[arg(long, default_value_t = 600)]
    upstream_timeout: u64,
}

/// The largest body read from a client; the policy's own limit is applied on top.
const MAX_BODY: usize = 64 << 20;

struct App {
    router: Arc<Router>,
    config: Config,
    upstream: Option<String>,
    client: reqwest::Client,
    metrics: Metrics,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fluxroute-gateway: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let policy = match &args.policy {
        Some(path) => {
            CompiledPolicy::from_file(path)
                .map_err(|e| format!("cannot load {}:\n{e}", path.display()))?
                .policy
        }
        None => CompiledPolicy::embedded(),
    };
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let router = Arc::new(Router::new(policy));
    let metrics = Metrics::new().map_err(|e| format!("metrics: {e}"))?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.upstream_timeout))
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    let app = Arc::new(App {
        router: Arc::clone(&router),
        config,
        upstream: args.upstream.clone(),
        client,
        metrics,
    });

    // Reload on file change and on SIGHUP; a bad edit keeps the old policy serving.
    let _watcher = args.policy.as_ref().map(|path| {
        let metrics = app.metrics.clone();
        Watcher::start(
            Arc::clone(&router),
            path.clone(),
            Duration::from_secs(1),
            move |r| report_reload(&metrics, r),
        )
    });
    if let Some(path) = args.policy.clone() {
        let (router, metrics) = (Arc::clone(&router), app.metrics.clone());
        tokio::spawn(async move { reload_on_sighup(router, path, metrics).await });
    }

    let routes = Routes::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/responses", post(responses))
        .route("/v1/messages", post(messages))
        .route("/v1/models", get(models))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!("fluxroute-gateway listening on http://{bound}");
    // Answers go out as headers, then body chunks: without TCP_NODELAY, Nagle's algorithm and
    // the client's delayed ACK hold each small chunk back by up to 40 ms.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, routes)
        .with_graceful_shutdown(shutdown())
        .await
        .map_err(|e| e.to_string())
}

fn report_reload(metrics: &Metrics, outcome: Result<fluxroute::Reloaded, fluxroute::PolicyError>) {
    match outcome {
        Ok(r) => {
            metrics.reloads.with_label_values(&["ok"]).inc();
            if r.changed {
                eprintln!("policy reloaded: {}", r.fingerprint);
            }
        }
        Err(e) => {
            metrics.reloads.with_label_values(&["rejected"]).inc();
            eprintln!("policy rejected, the old one keeps serving:\n{e}");
        }
    }
}

#[cfg(unix)]
async fn reload_on_sighup(router: Arc<Router>, path: PathBuf, metrics: Metrics) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        let (router, path) = (Arc::clone(&router), path.clone());
        let outcome = tokio::task::spawn_blocking(move || router.reload(&path)).await;
        if let Ok(outcome) = outcome {
            report_reload(&metrics, outcome);
        }
    }
}

#[cfg(not(unix))]
async fn reload_on_sighup(_: Arc<Router>, _: PathBuf, _: Metrics) {}

/// Resolves on SIGINT or SIGTERM: in-flight requests finish, new connections are refused.
async fn shutdown() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    eprintln!("shutting down");
}

async fn chat(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    serve(app, Api::Chat, headers, body).await
}

async fn responses(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    serve(app, Api::Responses, headers, body).await
}

async fn messages(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    serve(app, Api::Messages, headers, body).await
}

/// The bearer token (or Anthropic `x-api-key`) of a request.
fn api_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    bearer.or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
}

async fn serve(app: Arc<App>, api: Api, headers: HeaderMap, body: Bytes) -> Response {
    let policy: Arc<CompiledPolicy> = Arc::clone(&app.router.load());
    let tenant = api_key(&headers).and_then(|k| app.config.tenant_of(k));
    let ctx = CallerContext {
        tenant,
        tags: &[],
        unavailable: &[],
    };
    let decided = policy
        .classify_as(api, &body)
        .and_then(|f| policy.route(&f, &ctx));
    let decision = match decided {
        Ok(d) => d,
        Err(e) => return app.rejected(&policy, &e),
    };
    app.metrics
        .decisions
        .with_label_values(&[decision.mode().as_str(), decision.model(), decision.tier()])
        .inc();
    // Only auto and tier decisions have fallbacks: a pinned request is tried once.
    let candidates: Vec<&str> = decision.candidates().collect();
    for (i, model) in candidates.iter().copied().enumerate() {
        let last = i + 1 == candidates.len();
        // Each attempt's body is handed to the client, so each is written afresh.
        let mut forwarded = Vec::new();
        if let Err(e) = decision.forward_to(model, &body, &mut forwarded) {
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "forward_failed",
                &e.to_string(),
                None,
            );
        }
        let url = app.url_for(&policy, model, api);
        let started = Instant::now();
        let sent = app
            .client
            .post(&url)
            .headers(upstream_headers(
                &headers,
                app.config.key_for(&policy, model),
                api,
            ))
            .body(forwarded)
            .send()
            .await;
        let elapsed = started.elapsed().as_secs_f64();
        match sent {
            Ok(upstream) => {
                let status = upstream.status();
                app.metrics
                    .upstream
                    .with_label_values(&[model, status.as_str()])
                    .observe(elapsed);
                let retry = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                if retry && !last && routed_mode(&decision) {
                    app.metrics.failovers.with_label_values(&[model]).inc();
                    continue;
                }
                return relay(upstream, &decision, model);
            }
            Err(e) => {
                app.metrics
                    .upstream
                    .with_label_values(&[model, "unreachable"])
                    .observe(elapsed);
                if !last && routed_mode(&decision) {
                    app.metrics.failovers.with_label_values(&[model]).inc();
                    continue;
                }
                let mut r = error_response(
                    StatusCode::BAD_GATEWAY,
                    "upstream_unreachable",
                    &format!("the upstream of `{model}` cannot be reached: {e}"),
                    None,
                );
                set_flux_headers(r.headers_mut(), decision.headers_for(model));
                return r;
            }
        }
    }
    error_response(
        StatusCode::BAD_GATEWAY,
        "upstream_unreachable",
        "no upstream answered",
        None,
    )
}

fn routed_mode(d: &Decision<'_>) -> bool {
    matches!(d.mode(), Mode::Auto | Mode::Tier)
}

/// The headers sent upstream: the provider's key (or the client's) as a bearer token, and for
/// the Messages API also as `x-api-key`, as Anthropic takes it; the content type; Anthropic's
/// version and beta headers as the client sent them.
fn upstream_headers(client: &HeaderMap, key: Option<String>, api: Api) -> HeaderMap {
    let mut out = HeaderMap::new();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for name in [
        "anthropic-version",
        "anthropic-beta",
        "openai-organization",
        "openai-project",
    ] {
        if let Some(v) = client.get(name) {
            out.insert(HeaderName::from_static(name), v.clone());
        }
    }
    let Some(key) = key.or_else(|| api_key(client).map(str::to_owned)) else {
        return out;
    };
    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {key}")) {
        out.insert(header::AUTHORIZATION, value);
    }
    if api == Api::Messages
        && let Ok(value) = HeaderValue::from_str(&key)
    {
        out.insert("x-api-key", value);
    }
    out
}

/// The upstream's response, streamed through unchanged, with the transparency headers.
fn relay(upstream: reqwest::Response, d: &Decision<'_>, model: &str) -> Response {
    let status =
        StatusCode::from_u16(upstream.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = HeaderMap::new();
    for name in [header::CONTENT_TYPE, header::CACHE_CONTROL] {
        if let Some(v) = upstream.headers().get(name.as_str())
            && let Ok(v) = HeaderValue::from_bytes(v.as_bytes())
        {
            headers.insert(name, v);
        }
    }
    set_flux_headers(&mut headers, d.headers_for(model));
    let mut response = Response::new(Body::from_stream(upstream.bytes_stream()));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn set_flux_headers(out: &mut HeaderMap, headers: Option<[(&'static str, &str); 3]>) {
    for (name, value) in headers.into_iter().flatten() {
        if let Ok(v) = HeaderValue::from_str(value) {
            out.insert(HeaderName::from_static(lower(name)), v);
        }
    }
}

/// Header names as HTTP/2 requires them (HTTP/1 clients match them case-insensitively).
fn lower(name: &'static str) -> &'static str {
    match name {
        "X-Flux-Model" => "x-flux-model",
        "X-Flux-Routed" => "x-flux-routed",
        _ => "x-flux-policy",
    }
}

fn error_response(status: StatusCode, code: &str, message: &str, param: Option<&str>) -> Response {
    let body = serde_json::json!({"error": {
        "message": message, "type": "api_error", "param": param, "code": code}});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

impl App {
    /// A rejected request: its status and OpenAI-shaped body, with the policy that decided.
    fn rejected(&self, policy: &CompiledPolicy, e: &RouteError) -> Response {
        self.metrics
            .errors
            .with_label_values(&[e.code().as_str()])
            .inc();
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let mut r = (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            e.body().to_string(),
        )
            .into_response();
        let tag = format!("{}@{}", policy.name(), policy.fingerprint());
        if let Ok(v) = HeaderValue::from_str(&tag) {
            r.headers_mut().insert("x-flux-policy", v);
        }
        r
    }

    /// Where `model` is served: `--upstream`, else the model's `api_base` meta, else its
    /// provider's base URL; the endpoint path follows the base URL's `/v1`.
    fn url_for(&self, policy: &CompiledPolicy, model: &str, api: Api) -> String {
        let base = self
            .upstream
            .clone()
            .or_else(|| {
                policy
                    .model_meta(model)
                    .and_then(|m| m.get("api_base"))
                    .map(str::to_owned)
            })
            .or_else(|| {
                policy
                    .model_provider(model)
                    .and_then(|p| self.config.base_url(p))
            })
            .unwrap_or_else(|| "https://api.openai.com/v1".to_owned());
        let path = api.path().strip_prefix("/v1").unwrap_or(api.path());
        format!("{}{path}", base.trim_end_matches('/'))
    }
}

async fn models(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let tenant = api_key(&headers).and_then(|k| app.config.tenant_of(k));
    let listing = app.router.load().models_for(tenant);
    (
        [(header::CONTENT_TYPE, "application/json")],
        listing.to_string(),
    )
        .into_response()
}

async fn metrics_text(State(app): State<Arc<App>>) -> Response {
    match app.metrics.render() {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
