//! Reload on file change (cargo feature `watch`): a background thread polls the policy file
//! (and any other files it names, such as an included catalog) and reloads the router when
//! one changes. Polling needs no platform notification API, works on every file system
//! (network mounts included) and sees editors' atomic renames, at the cost of reading each
//! file once per interval (policies are small).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::policy::PolicyError;
use crate::router::{Reloaded, Router};

/// A file's modification time and a hash of its bytes: a change to either is a change, even
/// one within the file system's timestamp resolution. `None` while the file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(Option<(Option<SystemTime>, u64)>);

impl Stamp {
    fn of(path: &Path) -> Stamp {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        // Bounded, regular files only: as a reload would read it.
        Stamp(crate::policy::read_bounded(path).ok().map(|text| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            text.hash(&mut h);
            (modified, h.finish())
        }))
    }
}

/// How long files must hold still before [`Watcher::start`] loads them.
const DEFAULT_QUIET: Duration = Duration::from_millis(500);

/// A running watcher; dropping it (or calling [`Watcher::stop`]) ends the thread.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use fluxroute::{CompiledPolicy, Router, Watcher};
///
/// let path = std::path::Path::new("policies/default.toml");
/// let router = Arc::new(Router::new(CompiledPolicy::from_file(path)?.policy));
/// let _watcher = Watcher::start(router.clone(), path, Duration::from_secs(1), |outcome| {
///     match outcome {
///         Ok(r) if r.changed => eprintln!("policy reloaded: {}", r.fingerprint),
///         Ok(_) => {}
///         // The old policy keeps serving; the error lists every diagnostic.
///         Err(e) => eprintln!("policy rejected, still serving the old one:\n{e}"),
///     }
/// });
/// // ... serve requests through `router` ...
/// # Ok::<(), fluxroute::PolicyError>(())
/// ```
#[derive(Debug)]
pub struct Watcher {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Watches `path` every `interval`; on a change that has held still for half a second (or
    /// `interval`, when longer), reloads `router` from it and passes the outcome to `on_reload`.
    pub fn start(
        router: Arc<Router>,
        path: impl Into<PathBuf>,
        interval: Duration,
        on_reload: impl FnMut(Result<Reloaded, PolicyError>) + Send + 'static,
    ) -> Watcher {
        let path = path.into();
        Watcher::start_with(router, path.clone(), vec![path], interval, on_reload)
    }

    /// Like [`Watcher::start`], reloading from `policy` when any of `files` changes (list the
    /// policy itself and, say, the catalog it includes). A change is loaded once the files
    /// have held still for half a second, or for `interval` when that is longer (see
    /// [`Watcher::start_settled`]).
    pub fn start_with(
        router: Arc<Router>,
        policy: PathBuf,
        files: Vec<PathBuf>,
        interval: Duration,
        on_reload: impl FnMut(Result<Reloaded, PolicyError>) + Send + 'static,
    ) -> Watcher {
        let quiet = interval.max(DEFAULT_QUIET);
        Watcher::start_settled(router, policy, files, interval, quiet, on_reload)
    }

    /// Like [`Watcher::start_with`], reloading only once the files have stayed the same for
    /// `quiet` (and across two polls at least): an editor or a copy writing the file in place,
    /// in pieces, is never read half-written as long as its pauses are shorter than `quiet`.
    /// Replacing the file atomically (write a new file, then rename it over the old one) needs
    /// no quiet period at all, and is the way to deploy.
    pub fn start_settled(
        router: Arc<Router>,
        policy: PathBuf,
        files: Vec<PathBuf>,
        interval: Duration,
        quiet: Duration,
        mut on_reload: impl FnMut(Result<Reloaded, PolicyError>) + Send + 'static,
    ) -> Watcher {
        let (stop, stopped) = mpsc::channel::<()>();
        // Taken before returning, so a change made right after `start` is seen.
        let mut stamps: Vec<Stamp> = files.iter().map(|f| Stamp::of(f)).collect();
        // The files as last seen while they were still changing, and since when they look so.
        let mut changing: Option<(Vec<Stamp>, Instant)> = None;
        let thread = std::thread::spawn(move || {
            loop {
                match stopped.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
                let now: Vec<Stamp> = files.iter().map(|f| Stamp::of(f)).collect();
                if now == stamps {
                    changing = None;
                    continue;
                }
                // A change is loaded once it has held still across polls for `quiet`.
                match &changing {
                    Some((seen, since)) if *seen == now => {
                        if since.elapsed() >= quiet {
                            stamps = now;
                            changing = None;
                            on_reload(router.reload(&policy));
                        }
                    }
                    _ => changing = Some((now, Instant::now())),
                }
            }
        });
        Watcher {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stops watching and waits for the thread to end.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The thread may have ended already; either way it stops.
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.halt();
    }
}
