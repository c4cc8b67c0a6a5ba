//! Scanning CloudTrail files into a [`Usage`]: files in parallel, each into its own `Usage`,
//! merged at the end (merging is order-independent, so the result does not depend on threads).

use super::Record;
use super::mapping::{map_record, profile_role};
use super::read::{self, RecordError, Stop, Unreadable};
use super::select::{self, PrincipalFilter, When, Window};
use crate::time::Instant;
use crate::usage::{ScanStats, Usage};
use rayon::prelude::*;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The skip reason of a record dated after [`ScanOptions::not_after`].
pub const FUTURE_EVENT_TIME: &str = "future-event-time";

/// What to scan for.
#[derive(Clone, Debug, Default)]
pub struct ScanOptions {
    /// Whose records to use; `None` uses every record.
    pub principal: Option<PrincipalFilter>,
    /// Inclusive lower bound on `eventTime`, in nanoseconds since the epoch.
    pub from: Option<Instant>,
    /// Exclusive upper bound on `eventTime`.
    pub to: Option<Instant>,
    /// Whether a malformed file or record is an error rather than a skip.
    pub strict: bool,
    /// Threads to read files with; 0 uses every core.
    pub threads: usize,
    /// Show `files done/total` on stderr while scanning (the CLI sets it for a terminal).
    pub progress: bool,
    /// Latest `eventTime` believed (now plus a little clock skew): later records are forged
    /// or from a broken clock, and are skipped as `future-event-time`.
    pub not_after: Option<Instant>,
    /// Principal keys (ARNs) some resource asked about: a sink bounding its principals keeps
    /// these first, so a flood of others cannot push them out.
    pub prefer: std::sync::Arc<std::collections::BTreeSet<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// A malformed file or record under `strict`; `index` is the record's, when known.
    #[error("{file}: {}{reason}", index.map_or(String::new(), |i| format!("record {i}: ")))]
    Strict {
        file: String,
        index: Option<usize>,
        reason: String,
    },
}

/// Where a scan puts what it finds: one principal's [`Usage`], or a trail's facts for every
/// principal by day (`sources::facts::FileFacts`).
pub trait Sink: Default + Send + 'static {
    /// The scan's own counts: files, records, and skips not tied to a kept record.
    fn stats(&mut self) -> &mut ScanStats;
    /// Adds `other`; the result does not depend on the order of merges.
    fn merge(&mut self, other: Self);
    /// Whether `record` is one to keep (checked first, before its time is read).
    fn wants(&self, record: &Record, principal: Option<&PrincipalFilter>) -> bool;
    /// The usage a kept record inside the window, at `time`, adds to; else the reason it is
    /// skipped (its time cannot be placed, a bound is reached).
    fn usage_for(
        &mut self,
        record: &Record,
        time: &str,
        opts: &ScanOptions,
    ) -> Result<&mut Usage, &'static str>;
    /// Whatever principal made it, a call inside the window showed that instance profile
    /// `profile` holds role `role` (both ARNs).
    fn profile_role(&mut self, profile: &str, role: &str);
}

impl Sink for Usage {
    fn stats(&mut self) -> &mut ScanStats {
        &mut self.stats
    }

    fn merge(&mut self, other: Self) {
        Usage::merge(self, other);
    }

    fn wants(&self, record: &Record, principal: Option<&PrincipalFilter>) -> bool {
        principal.is_none_or(|p| p.matches(record))
    }

    fn usage_for(
        &mut self,
        _: &Record,
        _: &str,
        _: &ScanOptions,
    ) -> Result<&mut Usage, &'static str> {
        Ok(self)
    }

    fn profile_role(&mut self, profile: &str, role: &str) {
        crate::usage::add_profile_role(&mut self.profile_roles, profile, role, &mut self.stats);
    }
}

/// Scans local files and directories (recursively, in sorted order) for one principal.
pub fn scan_paths(paths: &[PathBuf], opts: &ScanOptions) -> Result<Usage, ScanError> {
    scan_paths_into(paths, opts)
}

/// Scans local files and directories (recursively, in sorted order) into any [`Sink`].
pub fn scan_paths_into<S: Sink + Sync>(
    paths: &[PathBuf],
    opts: &ScanOptions,
) -> Result<S, ScanError> {
    let mut sink = S::default();
    let files = read::collect_files(paths, &mut sink.stats().skipped)
        .map_err(|(path, source)| ScanError::Io { path, source })?;
    let scanner = Scanner::new(opts);
    // Under `strict`, the error reported is the first in file order, whichever thread finds one
    // first: files after a failed one are skipped, files before it still run.
    let first_failure = AtomicUsize::new(usize::MAX);
    let progress = Progress::new(opts.progress, files.len());
    let scan = || {
        files
            .par_iter()
            .enumerate()
            .map_init(
                || (Vec::new(), Vec::new()),
                |(raw, text), (i, path)| {
                    if i > first_failure.load(Ordering::Relaxed) {
                        return Ok(S::default());
                    }
                    let mut found = S::default();
                    let result = scanner.file(path, raw, text, &mut found);
                    progress.file_done();
                    result.map(|()| found).map_err(|e| {
                        first_failure.fetch_min(i, Ordering::Relaxed);
                        (i, e)
                    })
                },
            )
            .reduce(
                || Ok(S::default()),
                |a, b| match (a, b) {
                    (Ok(mut a), Ok(b)) => {
                        a.merge(b);
                        Ok(a)
                    }
                    (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
                    (Err(a), Err(b)) => Err(if a.0 < b.0 { a } else { b }),
                },
            )
    };
    let scanned = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .map_err(|e| ScanError::Io {
            path: PathBuf::from("<thread pool>"),
            source: io::Error::other(e),
        })?
        .install(scan)
        .map_err(|(_, e)| e);
    progress.finish();
    sink.merge(scanned?);
    Ok(sink)
}

/// A `done/total files` counter on stderr, redrawn about 200 times over a scan at most.
struct Progress {
    enabled: bool,
    total: usize,
    done: AtomicUsize,
}

impl Progress {
    fn new(enabled: bool, total: usize) -> Self {
        Progress {
            enabled: enabled && total > 1,
            total,
            done: AtomicUsize::new(0),
        }
    }

    fn file_done(&self) {
        if !self.enabled {
            return;
        }
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if done == self.total || done.is_multiple_of((self.total / 200).max(1)) {
            eprint!("\rscanning CloudTrail: {done}/{} files", self.total);
        }
    }

    fn finish(&self) {
        if self.enabled {
            eprint!("\r\x1b[2K");
        }
    }
}

/// Scans one file's bytes (gzip or not, detected by its magic bytes) into `sink`: the building
/// block for sources other than local files. `name` identifies the file in errors.
pub fn scan_file_bytes<S: Sink>(
    name: &str,
    bytes: &[u8],
    opts: &ScanOptions,
    sink: &mut S,
) -> Result<(), ScanError> {
    Scanner::new(opts).bytes(name, bytes, &mut Vec::new(), sink)
}

/// Adds `calls` identical calls, each as `record` says, into `sink` as the scan of a file
/// holding them would: the building block for sources that count identical calls (Athena's
/// grouped rows). `record`'s `eventTime` stands for all of them.
pub fn scan_calls<S: Sink>(record: &Record, calls: u64, opts: &ScanOptions, sink: &mut S) {
    let stats = sink.stats();
    stats.records_scanned = stats.records_scanned.saturating_add(calls);
    Scanner::new(opts).calls(record, calls, sink);
}

/// The options, prepared once for every file.
struct Scanner<'o> {
    opts: &'o ScanOptions,
    window: Window,
    /// Up to [`ScanOptions::not_after`]: outside it, a record is from the future.
    believed: Window,
}

impl<'o> Scanner<'o> {
    fn new(opts: &'o ScanOptions) -> Self {
        Self {
            opts,
            window: Window::new(opts.from, opts.to),
            believed: Window::new(None, opts.not_after.map(|t| t + 1)),
        }
    }

    /// Reads the file at `path` into `raw` (buffers are reused from file to file) and scans it.
    fn file<S: Sink>(
        &self,
        path: &std::path::Path,
        raw: &mut Vec<u8>,
        text: &mut Vec<u8>,
        sink: &mut S,
    ) -> Result<(), ScanError> {
        let io_error = |source| ScanError::Io {
            path: path.to_path_buf(),
            source,
        };
        raw.clear();
        let mut file = std::fs::File::open(path).map_err(io_error)?;
        // One byte past the cap is enough to know the file is skipped.
        io::Read::read_to_end(
            &mut io::Read::take(&mut file, read::MAX_FILE_BYTES + 1),
            raw,
        )
        .map_err(io_error)?;
        self.bytes(&path.display().to_string(), raw, text, sink)
    }

    fn bytes<S: Sink>(
        &self,
        name: &str,
        bytes: &[u8],
        buffer: &mut Vec<u8>,
        sink: &mut S,
    ) -> Result<(), ScanError> {
        sink.stats().files_scanned += 1;
        let strict = |index, reason: String| ScanError::Strict {
            file: name.to_string(),
            index,
            reason,
        };
        if bytes.len() as u64 > read::MAX_FILE_BYTES {
            if self.opts.strict {
                let limit = read::MAX_FILE_BYTES;
                let reason = format!("{} bytes, over the {limit}-byte limit", bytes.len());
                return Err(strict(None, reason));
            }
            sink.stats().skip("file-too-large");
            return Ok(());
        }
        let text = match read::decompress(bytes, buffer) {
            Ok(text) => text,
            Err(e) if self.opts.strict => {
                let reason = match e {
                    Unreadable::Gzip(e) => format!("gzip: {e}"),
                    Unreadable::TooLarge => format!(
                        "decompresses past the {}-byte limit",
                        read::MAX_DECOMPRESSED_BYTES
                    ),
                };
                return Err(strict(None, reason));
            }
            Err(Unreadable::Gzip(_)) => {
                sink.stats().skip("malformed-file");
                return Ok(());
            }
            Err(Unreadable::TooLarge) => {
                sink.stats().skip("decompressed-too-large");
                return Ok(());
            }
        };
        let result = read::for_each_record(text, |index, record| {
            let stats = sink.stats();
            stats.records_scanned = stats.records_scanned.saturating_add(1);
            match record {
                Ok(record) => self.record(&record, sink),
                Err(e) if self.opts.strict => return Err(strict(Some(index), e.to_string())),
                Err(RecordError::TooLarge(_)) => sink.stats().skip("record-too-large"),
                Err(RecordError::Malformed(_)) => sink.stats().skip("malformed-record"),
            }
            Ok(())
        });
        match result {
            Ok(()) => Ok(()),
            Err(Stop::Callback(e)) => Err(e),
            Err(Stop::TooManyRecords) if self.opts.strict => Err(strict(
                None,
                format!("more than {} records", read::MAX_RECORDS_PER_FILE),
            )),
            Err(Stop::TooManyRecords) => {
                sink.stats().skip("too-many-records");
                Ok(())
            }
            Err(Stop::Malformed { index, error }) if self.opts.strict => {
                Err(strict(index, error.to_string()))
            }
            Err(Stop::Malformed { .. }) => {
                sink.stats().skip("malformed-file");
                Ok(())
            }
        }
    }

    /// Chooses the record or not, and adds what it used, or was denied, to `sink`.
    fn record<S: Sink>(&self, record: &Record, sink: &mut S) {
        self.calls(record, 1, sink);
    }

    /// [`Scanner::record`] for `calls` identical calls.
    fn calls<S: Sink>(&self, record: &Record, calls: u64, sink: &mut S) {
        let time = record.event_time.as_deref();
        if let Some((profile, role)) = profile_role(record)
            && self.window.check(time) == When::Inside
        {
            sink.profile_role(&profile, &role);
        }
        if !sink.wants(record, self.opts.principal.as_ref()) {
            return;
        }
        match self.window.check(time) {
            When::Inside => {}
            When::Outside => return,
            When::Missing => return sink.stats().skip_many("no-event-time", calls),
            When::Invalid => return sink.stats().skip_many("invalid-event-time", calls),
        }
        if self.believed.check(time) == When::Outside {
            return sink.stats().skip_many(FUTURE_EVENT_TIME, calls);
        }
        let time = time.unwrap_or_default();
        let usage = match sink.usage_for(record, time, self.opts) {
            Ok(usage) => usage,
            Err(reason) => return sink.stats().skip_many(reason, calls),
        };
        if calls == 1 {
            add_call(record, time, usage);
        } else {
            let mut one = Usage::default();
            add_call(record, time, &mut one);
            usage.merge(one.times(calls));
        }
    }
}

/// What one call of `record`, at `time`, used or was denied.
pub(crate) fn add_call(record: &Record, time: &str, usage: &mut Usage) {
    if let Some(reason) = select::pseudo_event(record) {
        return usage.skip(reason);
    }
    usage.stats.records_matched = usage.stats.records_matched.saturating_add(1);
    let source = record.event_source.as_deref().unwrap_or_default();
    let name = record.event_name.as_deref().unwrap_or_default();
    if let Some(code) = record
        .error_code
        .as_deref()
        .filter(|c| select::is_denied(c))
    {
        usage.record_denied(source, name, code, time);
        // What it asked for, when the mapper can tell: never granted from here, only
        // restored within what the role held (the operator's restore).
        if let Ok(mapping) = map_record(record) {
            let refused = crate::usage::Refused {
                event_id: record.event_id.as_deref().unwrap_or_default(),
                source_ip: record.source_ip_address.as_deref().unwrap_or_default(),
            };
            for grant in &mapping.grants {
                let action = grant.action.full_name();
                usage.record_denied_grant(&action, &grant.resource, &refused, time);
            }
        }
        return;
    }
    match map_record(record) {
        Ok(mapping) => {
            for grant in &mapping.grants {
                let condition = grant.condition.map(|c| (c.key, c.value));
                let action = grant.action.full_name();
                usage.record_use_under(&action, &grant.resource, condition, time);
            }
            for profile in &mapping.instance_profiles {
                usage.record_instance_profile(profile, time);
            }
            for note in mapping.notes {
                usage.note(note);
            }
        }
        Err(_) => usage.record_unmapped(source, name, time),
    }
}
