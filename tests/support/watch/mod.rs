//! The processes a test depends on (moto, etcd, the kube-apiserver, each operator), watched by
//! every wait of the harness: [`poll`] fails the test as soon as one of them has exited, naming
//! it, how it ended and the end of its log, instead of waiting out its timeout for something a
//! dead process can no longer do.
//!
//! nextest runs each test in its own process, so the register is per test. A process is watched
//! from its start until its [`Watch`] is dropped, [`Watch::suspend`]ed (a restart on purpose) or
//! its owner says it may exit (an operator being stopped).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where a watched process's PID is found.
#[derive(Clone, Debug)]
pub enum Pid {
    /// A child of this test process: it stays a zombie (state `Z`, its wait status in
    /// `/proc/PID/stat`) until its owner reaps it.
    Child(u32),
    /// A server started by a script into its own session (reaped by init): the PID is read from
    /// `file` at each look, and it is ours only while its command line names `marker`, so a
    /// recycled PID is never taken for it. No file: stopped on purpose.
    File { file: PathBuf, marker: String },
}

/// When a watched process's log is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Show {
    /// When it exits (a server: its log says why).
    OnExit,
    /// Also when a wait times out (an operator: its log says what it did meanwhile).
    OnTimeout,
}

struct Entry {
    id: u64,
    name: String,
    pid: Pid,
    log: PathBuf,
    show: Show,
    suspended: bool,
}

static WATCHED: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A process on the register; taken off when dropped.
#[derive(Debug)]
pub struct Watch {
    id: u64,
}

/// Puts process `name` on the register; its `log` is shown as `show` says.
pub fn watch(name: impl Into<String>, pid: Pid, log: impl Into<PathBuf>, show: Show) -> Watch {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    register().push(Entry {
        id,
        name: name.into(),
        pid,
        log: log.into(),
        show,
        suspended: false,
    });
    Watch { id }
}

fn register() -> std::sync::MutexGuard<'static, Vec<Entry>> {
    // A panic while holding the lock (a failed check) must not hide later failures.
    WATCHED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Watch {
    /// Stops watching until [`Self::resume`]: the process is about to exit on purpose.
    pub fn suspend(&self) {
        self.set_suspended(true);
    }

    pub fn resume(&self) {
        self.set_suspended(false);
    }

    fn set_suspended(&self, suspended: bool) {
        for entry in register().iter_mut().filter(|e| e.id == self.id) {
            entry.suspended = suspended;
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        register().retain(|e| e.id != self.id);
    }
}

/// Panics when a watched process has exited: its name, how it ended, and its log's last lines.
pub fn check(during: &str) {
    let dead = register()
        .iter()
        .filter(|e| !e.suspended)
        .find_map(|e| ended(&e.pid).map(|how| (e.name.clone(), how, e.log.clone())));
    if let Some((name, how, log)) = dead {
        panic!(
            "{name} {how} while waiting for {during}; last lines of {}:\n{}",
            log.display(),
            tail(&log, 40)
        );
    }
}

/// How the process ended (`exited with status 1`, `was killed by signal 9`, `exited`), or
/// `None` while it runs (or is stopped on purpose).
fn ended(pid: &Pid) -> Option<String> {
    match pid {
        Pid::Child(pid) => {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return Some("exited".to_string());
            };
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            // Field 3 is the state; field 52 the wait status of a zombie (proc(5)).
            if !matches!(fields.first(), Some(&"Z") | Some(&"X")) {
                return None;
            }
            Some(match fields.get(49).and_then(|s| s.parse::<i32>().ok()) {
                Some(status) if status & 0x7f == 0 => {
                    format!("exited with status {}", (status >> 8) & 0xff)
                }
                Some(status) => format!("was killed by signal {}", status & 0x7f),
                None => "exited".to_string(),
            })
        }
        Pid::File { file, marker } => {
            let pid = std::fs::read_to_string(file).ok()?;
            let pid = pid.trim();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = state
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']));
            let ours = String::from_utf8_lossy(&cmdline).contains(marker.as_str());
            (!ours || zombie).then(|| "exited".to_string())
        }
    }
}

/// The last `lines` lines of the file at `path` (empty when it cannot be read).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Calls `look` every `every` until it gives `Ok`, for `timeout` at most. Before each look every
/// watched process is checked ([`check`]). On timeout, panics with `what`, the last `Err` (what
/// was seen instead) and the logs shown [`Show::OnTimeout`].
pub async fn poll<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut look: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        check(what);
        match look().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() >= deadline => timed_out(what, timeout, &seen),
            Err(_) => tokio::time::sleep(every).await,
        }
    }
}

/// [`poll`] for code outside a runtime (or that must not yield), sleeping the thread.
pub fn poll_blocking<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut look: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        check(what);
        match look() {
            Ok(value) => return value,
            Err(seen) if Instant::now() >= deadline => timed_out(what, timeout, &seen),
            Err(_) => std::thread::sleep(every),
        }
    }
}

fn timed_out(what: &str, timeout: Duration, seen: &str) -> ! {
    check(what);
    let logs: Vec<String> = register()
        .iter()
        .filter(|e| e.show == Show::OnTimeout)
        .map(|e| {
            format!(
                "{} log ({}):\n{}",
                e.name,
                e.log.display(),
                tail(&e.log, 40)
            )
        })
        .collect();
    panic!(
        "{what} did not happen within {timeout:?}; {seen}\n{}",
        logs.join("\n---\n")
    );
}
