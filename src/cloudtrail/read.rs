//! Reading CloudTrail files: finding them, decompressing them, and streaming their records.
//!
//! A file is decompressed whole into one reusable buffer (CloudTrail delivers files of at most a
//! few MB), and its records are deserialized one at a time, borrowing from that buffer: memory
//! follows the largest file, never the number of records. Every file is untrusted, so each
//! size is capped ([`MAX_FILE_BYTES`], [`MAX_DECOMPRESSED_BYTES`], [`MAX_RECORD_BYTES`],
//! [`MAX_RECORDS_PER_FILE`]); past a cap the file or record is skipped and counted, never read.

use super::Record;
use flate2::bufread::MultiGzDecoder;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Directories CloudTrail fills with files that hold no API calls, by the reason they count as.
const SKIPPED_DIRECTORIES: [(&str, &str); 2] = [
    ("CloudTrail-Digest", "digest-directory"),
    ("CloudTrail-Insight", "insight-directory"),
];

/// A trail file larger than this (as stored, compressed or not) is skipped unread
/// (`file-too-large`).
pub const MAX_FILE_BYTES: u64 = 32 << 20;
/// A file that decompresses past this is skipped (`decompressed-too-large`): a gzip bomb
/// costs at most this much memory.
pub const MAX_DECOMPRESSED_BYTES: usize = 128 << 20;
/// A record longer than this is skipped (`record-too-large`); CloudTrail's own are far smaller.
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// The records after this many in one file are skipped (`too-many-records`, once per file).
pub const MAX_RECORDS_PER_FILE: usize = 1_000_000;

/// The files to scan under `paths`, in sorted order so that every run reads the same files in the
/// same order. Directories are walked recursively for `.json` and `.json.gz` files; a file named
/// explicitly is taken whatever its name. Symbolic links to directories are not followed, which
/// rules out cycles. Skipped directories are counted into `skipped`.
pub(crate) fn collect_files(
    paths: &[PathBuf],
    skipped: &mut BTreeMap<String, u64>,
) -> Result<Vec<PathBuf>, (PathBuf, io::Error)> {
    let mut files = Vec::new();
    for path in paths {
        let meta = path.metadata().map_err(|e| (path.clone(), e))?;
        if meta.is_dir() {
            walk(path, &mut files, skipped)?;
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn walk(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    skipped: &mut BTreeMap<String, u64>,
) -> Result<(), (PathBuf, io::Error)> {
    let error = |e| (dir.to_path_buf(), e);
    let mut entries = std::fs::read_dir(dir)
        .map_err(error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(error)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| (path.clone(), e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() {
            match SKIPPED_DIRECTORIES.iter().find(|(dir, _)| *dir == name) {
                Some((_, reason)) => *skipped.entry(reason.to_string()).or_default() += 1,
                None => walk(&path, files, skipped)?,
            }
        } else if (name.ends_with(".json") || name.ends_with(".json.gz"))
            && (kind.is_file() || path.is_file())
        {
            files.push(path);
        }
    }
    Ok(())
}

/// The file's text: `bytes` themselves, or their gzip decompression (detected by the magic bytes
/// `1f 8b`, whatever the name) into `buffer`.
pub(crate) fn decompress<'b>(
    bytes: &'b [u8],
    buffer: &'b mut Vec<u8>,
) -> Result<&'b [u8], Unreadable> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        if bytes.len() > MAX_DECOMPRESSED_BYTES {
            return Err(Unreadable::TooLarge);
        }
        return Ok(bytes);
    }
    buffer.clear();
    // ISIZE, the last 4 bytes: the uncompressed size modulo 2^32 (of the last member only).
    // Untrusted: a wrong hint only costs reallocations.
    if let Some(trailer) = bytes.last_chunk::<4>() {
        let hint = u32::from_le_bytes(*trailer) as usize;
        buffer.reserve(hint.min(MAX_DECOMPRESSED_BYTES));
    }
    let limit = MAX_DECOMPRESSED_BYTES as u64 + 1;
    (MultiGzDecoder::new(bytes).take(limit))
        .read_to_end(buffer)
        .map_err(Unreadable::Gzip)?;
    if buffer.len() > MAX_DECOMPRESSED_BYTES {
        buffer.clear();
        buffer.shrink_to(MAX_DECOMPRESSED_BYTES);
        return Err(Unreadable::TooLarge);
    }
    Ok(buffer)
}

/// Why a file's text could not be had.
#[derive(Debug)]
pub(crate) enum Unreadable {
    Gzip(io::Error),
    /// It expands past [`MAX_DECOMPRESSED_BYTES`].
    TooLarge,
}

/// Why one record was not read.
#[derive(Debug)]
pub enum RecordError {
    Malformed(serde_json::Error),
    /// Longer than [`MAX_RECORD_BYTES`]; not parsed.
    TooLarge(usize),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            RecordError::Malformed(e) => e.fmt(f),
            RecordError::TooLarge(n) => {
                write!(
                    f,
                    "a record of {n} bytes, over the {MAX_RECORD_BYTES}-byte limit"
                )
            }
        }
    }
}

/// Why reading a file's records stopped early.
pub(crate) enum Stop<E> {
    /// The file's structure is broken, at the record with this index if inside the records.
    Malformed {
        index: Option<usize>,
        error: serde_json::Error,
    },
    /// The callback asked to stop.
    Callback(E),
    /// [`MAX_RECORDS_PER_FILE`] records were read; the rest are not.
    TooManyRecords,
}

/// Why the reader stopped while serde unwinds with an error of its own.
enum Halt<E> {
    Callback(E),
    TooManyRecords,
}

/// Calls `each` with every record of a file's text, in order, with its index. Three layouts are
/// read: CloudTrail's S3 files `{"Records":[…]}`, a JSON array of records, and JSON Lines (any
/// whitespace-separated sequence of record objects).
///
/// Each record is first delimited as raw JSON and only then deserialized, so a record of the
/// wrong shape is passed as `Err` and the records after it are still read. Broken JSON ends the
/// file with [`Stop::Malformed`], except between JSON Lines objects, where reading resumes on the
/// next line.
pub(crate) fn for_each_record<'a, E>(
    text: &'a [u8],
    each: impl FnMut(usize, Result<Record<'a>, RecordError>) -> Result<(), E>,
) -> Result<(), Stop<E>> {
    let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
    let mut reader = Records {
        each,
        next_index: 0,
        in_array: false,
        stopped: None,
    };
    let result = if is_document(text) {
        reader.document(text)
    } else {
        reader.lines(text)
    };
    match reader.stopped {
        Some(Halt::Callback(e)) => Err(Stop::Callback(e)),
        Some(Halt::TooManyRecords) => Err(Stop::TooManyRecords),
        None => result,
    }
}

/// Whether the text is one JSON document holding the records (an array, or an object whose first
/// key is `Records`, as CloudTrail writes it) rather than a sequence of records.
fn is_document(text: &[u8]) -> bool {
    match skip_whitespace(text).split_first() {
        Some((b'[', _)) => true,
        Some((b'{', rest)) => skip_whitespace(rest).starts_with(b"\"Records\""),
        _ => false,
    }
}

fn skip_whitespace(text: &[u8]) -> &[u8] {
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    &text[start..]
}

struct Records<F, E> {
    each: F,
    next_index: usize,
    /// Whether the document is inside its records array, where errors have a record index.
    in_array: bool,
    /// Why reading stopped, kept here while serde unwinds with an error of its own.
    stopped: Option<Halt<E>>,
}

impl<'a, F, E> Records<F, E>
where
    F: FnMut(usize, Result<Record<'a>, RecordError>) -> Result<(), E>,
{
    fn record(&mut self, raw: &'a RawValue) -> Result<(), Halt<E>> {
        let index = self.next_index;
        if index >= MAX_RECORDS_PER_FILE {
            return Err(Halt::TooManyRecords);
        }
        self.next_index += 1;
        let text = raw.get();
        // Derived struct deserializers also accept arrays: a record must be an object.
        let record = if text.len() > MAX_RECORD_BYTES {
            Err(RecordError::TooLarge(text.len()))
        } else if text.starts_with('{') {
            serde_json::from_str(text).map_err(RecordError::Malformed)
        } else {
            Err(RecordError::Malformed(de::Error::custom(
                "a record is not a JSON object",
            )))
        };
        (self.each)(index, record).map_err(Halt::Callback)
    }

    fn document(&mut self, text: &'a [u8]) -> Result<(), Stop<E>> {
        let mut de = serde_json::Deserializer::from_slice(text);
        let result = Document(&mut *self)
            .deserialize(&mut de)
            .and_then(|()| de.end());
        result.map_err(|error| Stop::Malformed {
            index: self.in_array.then_some(self.next_index),
            error,
        })
    }

    /// JSON Lines: after a value that is not JSON, resumes on the next line; the broken value
    /// counts as a record if it looks like one (starts with `{`), else the file is malformed.
    fn lines(&mut self, text: &'a [u8]) -> Result<(), Stop<E>> {
        let mut start = 0;
        while start < text.len() {
            let mut stream =
                serde_json::Deserializer::from_slice(&text[start..]).into_iter::<&RawValue>();
            loop {
                match stream.next() {
                    None => return Ok(()),
                    Some(Ok(raw)) => self.record(raw).map_err(|halt| match halt {
                        Halt::Callback(e) => Stop::Callback(e),
                        Halt::TooManyRecords => Stop::TooManyRecords,
                    })?,
                    Some(Err(error)) => {
                        let bad = skip_whitespace(&text[start + stream.byte_offset()..]);
                        if !bad.starts_with(b"{") {
                            return Err(Stop::Malformed {
                                index: Some(self.next_index),
                                error,
                            });
                        }
                        let index = self.next_index;
                        if index >= MAX_RECORDS_PER_FILE {
                            return Err(Stop::TooManyRecords);
                        }
                        self.next_index += 1;
                        (self.each)(index, Err(RecordError::Malformed(error)))
                            .map_err(Stop::Callback)?;
                        let bad_at = text.len() - bad.len();
                        start = memchr::memchr(b'\n', bad).map_or(text.len(), |n| bad_at + n + 1);
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The top-level document: a records array, or an object holding one under `Records`.
struct Document<'r, F, E>(&'r mut Records<F, E>);

impl<'de, F, E> DeserializeSeed<'de> for Document<'_, F, E>
where
    F: FnMut(usize, Result<Record<'de>, RecordError>) -> Result<(), E>,
{
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, F, E> Visitor<'de> for Document<'_, F, E>
where
    F: FnMut(usize, Result<Record<'de>, RecordError>) -> Result<(), E>,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"{"Records":[…]} or an array of records"#)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.in_array = true;
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            if let Err(halt) = self.0.record(raw) {
                self.0.stopped = Some(halt);
                return Err(de::Error::custom("stopped"));
            }
        }
        self.0.in_array = false;
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<&'de str>()? {
            if key == "Records" {
                map.next_value_seed(RecordArray(&mut *self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// The value of `Records`: an array, or `null` for none.
struct RecordArray<'r, F, E>(&'r mut Records<F, E>);

impl<'de, F, E> DeserializeSeed<'de> for RecordArray<'_, F, E>
where
    F: FnMut(usize, Result<Record<'de>, RecordError>) -> Result<(), E>,
{
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, F, E> Visitor<'de> for RecordArray<'_, F, E>
where
    F: FnMut(usize, Result<Record<'de>, RecordError>) -> Result<(), E>,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_none<Er: de::Error>(self) -> Result<(), Er> {
        Ok(())
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(Document(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    /// The event names read from `text`, with `!` for a record that did not deserialize, and the
    /// stop reason if any.
    fn names(text: &str) -> (Vec<String>, Option<String>) {
        let mut seen = Vec::new();
        let result = for_each_record(text.as_bytes(), |index, record| {
            assert_eq!(index, seen.len());
            seen.push(match record {
                Ok(r) => r.event_name.as_deref().unwrap_or("-").to_string(),
                Err(_) => "!".to_string(),
            });
            Ok::<_, ()>(())
        });
        let stop = match result {
            Ok(()) => None,
            Err(Stop::Malformed { index, .. }) => Some(format!("malformed at {index:?}")),
            Err(Stop::Callback(())) => Some("callback".to_string()),
            Err(Stop::TooManyRecords) => Some("too many".to_string()),
        };
        (seen, stop)
    }

    #[test]
    fn reads_the_three_layouts() {
        let s3 = r#"{"Records":[{"eventName":"A"},{"eventName":"B"}]}"#;
        assert_eq!(names(s3), (vec!["A".into(), "B".into()], None));
        let s3_spaced = "\u{feff}{ \n \"Records\" : [ {\"eventName\":\"A\"} ], \"x\": {} }";
        assert_eq!(names(s3_spaced), (vec!["A".into()], None));
        assert_eq!(names(r#"{"Records":null}"#), (vec![], None));
        let array = r#" [{"eventName":"A"}, {"eventName":"B"}] "#;
        assert_eq!(names(array), (vec!["A".into(), "B".into()], None));
        let lines = "\u{feff}{\"eventName\":\"A\"}\n\n{\"eventName\":\"B\"}\r\n{\n \"eventName\": \"C\"\n}\n";
        assert_eq!(
            names(lines),
            (vec!["A".into(), "B".into(), "C".into()], None)
        );
        assert_eq!(names(""), (vec![], None));
    }

    #[test]
    fn a_bad_record_does_not_lose_the_file() {
        // Wrong types are records that do not deserialize; the rest is read.
        let s3 = r#"{"Records":[{"eventName":"A"},{"eventName":7},[],{"eventName":"B"}]}"#;
        assert_eq!(
            names(s3),
            (vec!["A".into(), "!".into(), "!".into(), "B".into()], None)
        );
        // Broken JSON inside a document ends it, at the record where it broke.
        let broken = r#"{"Records":[{"eventName":"A"},{"eventName":"B""#;
        assert_eq!(
            names(broken),
            (vec!["A".into()], Some("malformed at Some(1)".into()))
        );
        // In JSON Lines, reading resumes on the next line.
        let lines =
            "{\"eventName\":\"A\"}\n{\"eventName\":\"B\n{\"eventName\":\"C\"}\n{\"eventName\":1}\n";
        assert_eq!(
            names(lines),
            (vec!["A".into(), "!".into(), "C".into(), "!".into()], None)
        );
        // Text that is not JSON at all is a malformed file.
        assert_eq!(
            names("hello\n{\"eventName\":\"A\"}"),
            (vec![], Some("malformed at Some(0)".into()))
        );
        assert_eq!(
            names(r#"{"Records":[]} trailing"#),
            (vec![], Some("malformed at None".into()))
        );
        assert_eq!(
            names(r#"{"Records":{"eventName":"A"}}"#).1,
            Some("malformed at None".into())
        );
    }

    #[test]
    fn the_callback_can_stop() {
        let mut count = 0;
        let result = for_each_record(br#"[{},{},{}]"#, |_, _| {
            count += 1;
            if count == 2 { Err("enough") } else { Ok(()) }
        });
        assert!(matches!(result, Err(Stop::Callback("enough"))));
        assert_eq!(count, 2);
    }

    #[test]
    fn decompresses_by_magic_bytes() {
        let text = br#"{"Records":[]}"#;
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(text).unwrap();
        let gz = gz.finish().unwrap();
        let mut buffer = Vec::new();
        assert_eq!(decompress(&gz, &mut buffer).unwrap(), text);
        assert_eq!(decompress(text, &mut buffer).unwrap(), text);
        assert!(decompress(&gz[..gz.len() - 6], &mut buffer).is_err());
    }
}
