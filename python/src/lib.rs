//! Python bindings of the fluxroute engine: `fluxroute.Router`, its decisions, and the errors a
//! gateway returns. Routing runs with the interpreter released.

use std::path::PathBuf;
use std::sync::Arc;

use fluxroute::{Api, CallerContext, CompiledPolicy, Diagnostic, RequestFeatures, RouteError};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

create_exception!(
    _fluxroute,
    FluxRouteError,
    PyException,
    "A rejected request: `code`, `status`, `param`, `message` and the OpenAI-shaped `body`."
);
create_exception!(
    _fluxroute,
    PolicyError,
    PyValueError,
    "A policy that does not load: `diagnostics` lists every problem with its location."
);

/// A JSON value as Python objects, through the standard `json` module.
fn to_python(py: Python<'_>, value: &serde_json::Value) -> PyResult<Py<PyAny>> {
    let json = py.import("json")?;
    Ok(json.call_method1("loads", (value.to_string(),))?.unbind())
}

/// A rejection as a `RouteError` exception carrying its parts.
fn route_error(py: Python<'_>, e: &RouteError) -> PyErr {
    let err = FluxRouteError::new_err(e.message().to_owned());
    let value = err.value(py);
    let set = || -> PyResult<()> {
        value.setattr("code", e.code().as_str())?;
        value.setattr("status", e.status())?;
        value.setattr("param", e.param())?;
        value.setattr("message", e.message())?;
        value.setattr("body", to_python(py, &e.body())?)?;
        Ok(())
    };
    match set() {
        Ok(()) => err,
        Err(other) => other,
    }
}

fn diagnostic_dict<'py>(py: Python<'py>, d: &Diagnostic) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("severity", d.severity.as_str())?;
    out.set_item("kind", d.kind.as_str())?;
    out.set_item("message", &d.message)?;
    out.set_item("origin", &d.origin)?;
    out.set_item("line", d.line)?;
    out.set_item("column", d.column)?;
    out.set_item("path", &d.path)?;
    out.set_item("text", d.to_string())?;
    Ok(out)
}

fn policy_error(py: Python<'_>, e: &fluxroute::PolicyError) -> PyErr {
    let err = PolicyError::new_err(e.to_string());
    let list: PyResult<Vec<_>> = e
        .diagnostics()
        .iter()
        .map(|d| diagnostic_dict(py, d))
        .collect();
    match list.and_then(|l| err.value(py).setattr("diagnostics", l)) {
        Ok(()) => err,
        Err(other) => other,
    }
}

fn parse_api(api: &str) -> PyResult<Api> {
    api.parse::<Api>()
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// A request body as bytes: `bytes`/`bytearray` as given, `str` as UTF-8, anything else
/// (a `dict`) through `json.dumps`.
fn body_bytes(py: Python<'_>, body: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = body.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(s) = body.cast::<PyString>() {
        return Ok(s.to_cow()?.as_bytes().to_vec());
    }
    if let Ok(v) = body.extract::<Vec<u8>>() {
        return Ok(v);
    }
    let text: String = py
        .import("json")?
        .call_method1("dumps", (body,))?
        .extract()?;
    Ok(text.into_bytes())
}

/// What the host knows about the caller, owned so a decision can be routed again.
#[derive(Clone, Default)]
struct Caller {
    tenant: Option<String>,
    tags: Vec<String>,
    unavailable: Vec<String>,
}

impl Caller {
    fn with<T>(&self, f: impl FnOnce(&CallerContext<'_>) -> T) -> T {
        let tags: Vec<&str> = self.tags.iter().map(String::as_str).collect();
        let unavailable: Vec<&str> = self.unavailable.iter().map(String::as_str).collect();
        f(&CallerContext {
            tenant: self.tenant.as_deref(),
            tags: &tags,
            unavailable: &unavailable,
        })
    }
}

/// The routing engine with a hot-swappable policy.
#[pyclass(frozen, module = "fluxroute")]
struct Router {
    inner: fluxroute::Router,
    path: Option<PathBuf>,
}

#[pymethods]
impl Router {
    /// A router serving the policy at `policy_path`, or the embedded default policy.
    #[new]
    #[pyo3(signature = (policy_path=None))]
    fn new(py: Python<'_>, policy_path: Option<PathBuf>) -> PyResult<Self> {
        let policy = match &policy_path {
            Some(path) => {
                let loaded = py.detach(|| CompiledPolicy::from_file(path));
                loaded.map_err(|e| policy_error(py, &e))?.policy
            }
            None => CompiledPolicy::embedded(),
        };
        Ok(Router {
            inner: fluxroute::Router::new(policy),
            path: policy_path,
        })
    }

    /// Classifies and routes one request body (`bytes`, `str` or a `dict`) of `api`
    /// (`"chat"`, `"responses"` or `"messages"`); raises `RouteError` when it is rejected.
    #[pyo3(signature = (body, tenant=None, tags=Vec::new(), unavailable=Vec::new(), api="chat"))]
    fn route(
        &self,
        py: Python<'_>,
        body: &Bound<'_, PyAny>,
        tenant: Option<String>,
        tags: Vec<String>,
        unavailable: Vec<String>,
        api: &str,
    ) -> PyResult<Decision> {
        let api = parse_api(api)?;
        let bytes = body_bytes(py, body)?;
        let caller = Caller {
            tenant,
            tags,
            unavailable,
        };
        let policy: Arc<CompiledPolicy> = Arc::clone(&self.inner.load());
        let outcome = py.detach(|| {
            let features = policy.classify_as(api, &bytes)?;
            let json = caller.with(|ctx| policy.route(&features, ctx).map(|d| d.to_json()))?;
            Ok::<_, RouteError>((features, json))
        });
        let (features, json) = outcome.map_err(|e| route_error(py, &e))?;
        Ok(Decision {
            policy,
            features,
            caller,
            body: bytes,
            json,
        })
    }

    /// The `/v1/models` body, as the tenant sees it when one is named.
    #[pyo3(signature = (tenant=None))]
    fn models(&self, py: Python<'_>, tenant: Option<&str>) -> PyResult<Py<PyAny>> {
        to_python(py, &self.inner.load().models_for(tenant))
    }

    /// Reloads the policy file the router was made from; the old policy keeps serving when the
    /// new one does not load (`PolicyError`). Returns `{changed, fingerprint, warnings}`.
    fn reload<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let Some(path) = &self.path else {
            return Err(PyValueError::new_err(
                "this router serves the embedded policy; there is no file to reload",
            ));
        };
        let reloaded = py
            .detach(|| self.inner.reload(path))
            .map_err(|e| policy_error(py, &e))?;
        let out = PyDict::new(py);
        out.set_item("changed", reloaded.changed)?;
        out.set_item("fingerprint", reloaded.fingerprint)?;
        let warnings: PyResult<Vec<_>> = reloaded
            .warnings
            .iter()
            .map(|d| diagnostic_dict(py, d))
            .collect();
        out.set_item("warnings", warnings?)?;
        Ok(out)
    }

    /// Validates a policy file (default: the one this router serves; the embedded policy when
    /// it has none) without swapping it in: every diagnostic, errors and warnings.
    #[pyo3(signature = (path=None))]
    fn check<'py>(
        &self,
        py: Python<'py>,
        path: Option<PathBuf>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        match path.or_else(|| self.path.clone()) {
            Some(path) => check(py, path),
            None => CompiledPolicy::validate(fluxroute::EMBEDDED_POLICY, "<embedded>")
                .iter()
                .map(|d| diagnostic_dict(py, d))
                .collect(),
        }
    }

    /// The serving policy's name.
    #[getter]
    fn policy_name(&self) -> String {
        self.inner.load().name().to_owned()
    }

    /// The serving policy's fingerprint.
    #[getter]
    fn fingerprint(&self) -> String {
        self.inner.load().fingerprint().to_owned()
    }
}

/// A routing decision: the served model, why, the headers to set, and the body to forward.
#[pyclass(frozen, module = "fluxroute")]
struct Decision {
    policy: Arc<CompiledPolicy>,
    features: RequestFeatures,
    caller: Caller,
    body: Vec<u8>,
    json: serde_json::Value,
}

impl Decision {
    /// Runs `f` on the library's decision, routed again (routing is a pure function of the
    /// features, the caller and the policy, so it is the same decision).
    fn with<T>(&self, f: impl FnOnce(&fluxroute::Decision<'_>) -> T) -> PyResult<T> {
        self.caller
            .with(|ctx| self.policy.route(&self.features, ctx).map(|d| f(&d)))
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }

    fn field(&self, name: &str) -> &serde_json::Value {
        self.json.get(name).unwrap_or(&serde_json::Value::Null)
    }
}

#[pymethods]
impl Decision {
    /// The backing model that serves the request.
    #[getter]
    fn model(&self) -> &str {
        self.field("model").as_str().unwrap_or_default()
    }

    /// The name the caller asked for.
    #[getter]
    fn requested(&self) -> &str {
        self.field("requested").as_str().unwrap_or_default()
    }

    /// `"auto"`, `"tier"`, `"pinned"`, `"passthrough"` or `"redirect"`.
    #[getter]
    fn mode(&self) -> &str {
        self.field("mode").as_str().unwrap_or_default()
    }

    /// Whether the served model is not the one the caller named.
    #[getter]
    fn routed(&self) -> bool {
        self.field("routed").as_bool().unwrap_or_default()
    }

    /// The served model's tier.
    #[getter]
    fn tier(&self) -> &str {
        self.field("tier").as_str().unwrap_or_default()
    }

    /// The rule that decided, `"default"`, or `None` for names served as they are.
    #[getter]
    fn rule(&self) -> Option<&str> {
        self.field("rule").as_str()
    }

    /// The eligible fallbacks, in order (auto and tier only).
    #[getter]
    fn fallbacks(&self) -> Vec<String> {
        self.field("fallbacks")
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `X-Flux-Model`, `X-Flux-Routed` and `X-Flux-Policy`.
    #[getter]
    fn headers(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_python(py, self.field("headers"))
    }

    /// What routing read: prompt tokens, output, capabilities, complexity and its score.
    #[getter]
    fn features(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_python(py, self.field("features"))
    }

    /// The estimated cost of the request on the served model, in USD.
    #[getter]
    fn cost(&self) -> f64 {
        self.field("estimated_cost_usd")
            .as_f64()
            .unwrap_or_default()
    }

    /// The served model's `[models.meta]` strings.
    #[getter]
    fn meta(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let meta = self.with(|d| serde_json::to_value(d.meta()).unwrap_or_default())?;
        to_python(py, &meta)
    }

    /// The headers for a response served by `model` (the served model or a fallback, after a
    /// failover); `None` for any other model.
    fn headers_for(&self, py: Python<'_>, model: &str) -> PyResult<Option<Py<PyAny>>> {
        let headers = self.with(|d| {
            d.headers_for(model).map(|h| {
                h.iter()
                    .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
                    .collect::<serde_json::Map<_, _>>()
            })
        })?;
        headers
            .map(|h| to_python(py, &serde_json::Value::Object(h)))
            .transpose()
    }

    /// The request body with only `model` replaced by `model` (default: the served model; or a
    /// fallback after a failover): every other byte as the caller sent it.
    #[pyo3(signature = (model=None))]
    fn forward<'py>(&self, py: Python<'py>, model: Option<&str>) -> PyResult<Bound<'py, PyBytes>> {
        let mut out = Vec::with_capacity(self.body.len() + 64);
        let written = self.with(|d| {
            let target = model.unwrap_or(d.model());
            d.forward_to(target, &self.body, &mut out)
        })?;
        written.map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(PyBytes::new(py, &out))
    }

    /// The decision as the contract's JSON object.
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_python(py, &self.json)
    }

    fn __repr__(&self) -> String {
        format!(
            "Decision(requested={:?}, model={:?}, mode={:?}, routed={})",
            self.requested(),
            self.model(),
            self.mode(),
            if self.routed() { "True" } else { "False" }
        )
    }
}

/// Validates policy files: a list of diagnostics (errors and warnings) per file, empty when the
/// file is clean.
#[pyfunction]
fn check(py: Python<'_>, path: PathBuf) -> PyResult<Vec<Bound<'_, PyDict>>> {
    let diagnostics = py.detach(|| match CompiledPolicy::from_file(&path) {
        Ok(loaded) => loaded.warnings,
        Err(e) => e.diagnostics().to_vec(),
    });
    diagnostics.iter().map(|d| diagnostic_dict(py, d)).collect()
}

#[pymodule]
fn _fluxroute(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Router>()?;
    m.add_class::<Decision>()?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add("RouteError", m.py().get_type::<FluxRouteError>())?;
    m.add("PolicyError", m.py().get_type::<PolicyError>())?;
    m.add("EMBEDDED_POLICY", fluxroute::EMBEDDED_POLICY)?;
    Ok(())
}
