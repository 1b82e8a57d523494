//! The file watcher (feature `watch`): reloads on change, keeps serving on a bad edit.

#![cfg(feature = "watch")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use fluxroute::{CompiledPolicy, EMBEDDED_POLICY, Router, Watcher};

/// A router serving the default policy from a file of its own, in a fresh folder.
fn serving_a_file(name: &str) -> (std::path::PathBuf, std::path::PathBuf, Arc<Router>) {
    let dir = std::env::temp_dir().join(format!("fluxroute-watch-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("policy.toml");
    std::fs::write(&path, EMBEDDED_POLICY).unwrap();
    let router = Arc::new(Router::new(
        CompiledPolicy::from_file(&path).unwrap().policy,
    ));
    (dir, path, router)
}

#[test]
fn a_watcher_reloads_on_change_and_keeps_serving_on_a_bad_edit() {
    let (dir, path, router) = serving_a_file("reload");
    let first = router.load().fingerprint().to_owned();
    let (tx, rx) = mpsc::channel();
    let watcher = Watcher::start(router.clone(), &path, Duration::from_millis(20), move |r| {
        tx.send(
            r.map(|r| (r.changed, r.fingerprint))
                .map_err(|e| e.to_string()),
        )
        .unwrap();
    });
    let wait = || {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("no reload seen")
    };

    // A real change: a different description.
    let edited = EMBEDDED_POLICY.replace("Cost-aware routing", "Cost-aware routing, edited");
    std::fs::write(&path, &edited).unwrap();
    let (changed, fp) = wait().unwrap();
    assert!(changed);
    assert_ne!(fp, first);
    assert_eq!(router.load().fingerprint(), fp);

    // A broken edit is rejected with its diagnostics; the edited policy keeps serving.
    std::fs::write(&path, format!("{edited}\n[[models]]\nid = 3\n")).unwrap();
    let err = wait().unwrap_err();
    assert!(err.contains("policy.toml"), "{err}");
    assert_eq!(router.load().fingerprint(), fp);

    // Comments only: the file changed, the policy did not.
    std::fs::write(&path, format!("# a comment\n{edited}")).unwrap();
    let (changed, same) = wait().unwrap();
    assert!(!changed);
    assert_eq!(same, fp);

    watcher.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An editor that writes the policy in place, in pieces with short pauses: no piece of it is
/// ever loaded, only the finished file, once it holds still.
#[test]
fn a_policy_written_in_slow_chunks_is_loaded_only_when_whole() {
    use std::io::Write;
    let (dir, path, router) = serving_a_file("chunks");
    let first = router.load().fingerprint().to_owned();
    let edited = EMBEDDED_POLICY.replace("Cost-aware routing", "Cost-aware routing, rewritten");
    let want = CompiledPolicy::from_toml(&edited, "x")
        .unwrap()
        .policy
        .fingerprint()
        .to_owned();
    let (tx, rx) = mpsc::channel();
    let interval = Duration::from_millis(10);
    let watcher = Watcher::start_settled(
        router.clone(),
        path.clone(),
        vec![path.clone()],
        interval,
        Duration::from_millis(150),
        move |r| {
            tx.send(r.map(|r| r.fingerprint).map_err(|e| e.to_string()))
                .unwrap();
        },
    );
    // Pieces of 256 bytes, a pause of several polls after each (well under the quiet period).
    let mut file = std::fs::File::create(&path).unwrap();
    for chunk in edited.as_bytes().chunks(256) {
        file.write_all(chunk).unwrap();
        file.flush().unwrap();
        std::thread::sleep(Duration::from_millis(40));
        // Whatever serves meanwhile is the old policy or the finished new one.
        let serving = router.load().fingerprint().to_owned();
        assert!(
            serving == first || serving == want,
            "a partial policy served: {serving}"
        );
    }
    drop(file);
    let outcome = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("no reload seen");
    assert_eq!(outcome, Ok(want.clone()));
    // Nothing else was loaded, before or after.
    std::thread::sleep(Duration::from_millis(300));
    assert!(rx.try_recv().is_err());
    assert_eq!(router.load().fingerprint(), want);
    watcher.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}
