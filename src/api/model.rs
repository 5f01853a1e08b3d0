//! Folders, files and ids as the Cloudify API sends them, and the tolerant parsing of them.
//!
//! Cloudify's JSON varies between releases and installs (../shared/cloudify-api.md §4): ids are
//! UUID strings or integers, the root is "0" or 0, `size` is localised text ("1.000,00 KB")
//! rather than a number, dates are naive `Y-m-d H:i:s` in the site's zone, and most fields may
//! be missing or null. Parsing therefore never fails on a field it can do without: a missing,
//! null or malformed field becomes `None` (or an empty name), unknown fields are ignored, and
//! only an entry without an `id` is dropped (with a warning), because nothing can address it.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime};
use serde::Deserialize;
use serde_json::Value;

/// A remote object id. Cloudify uses UUID strings, a BIGINT install uses numbers; both are
/// kept as text. The root folder is "0".
///
/// Shared text: an id is held by its listing entry, its inode and the maps that find them,
/// and a clone costs a count, not a copy (100,000 listed files hold some 400,000 ids).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(Arc<str>);

impl Id {
    pub fn new(id: impl Into<String>) -> Id {
        Id(Arc::from(id.into()))
    }

    pub fn root() -> Id {
        Id(Arc::from("0"))
    }

    pub fn is_root(&self) -> bool {
        &*self.0 == "0" || self.0.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id from a JSON string or number; `None` for null, empty text and other types.
    pub fn from_json(value: &Value) -> Option<Id> {
        match value {
            Value::String(s) if !s.trim().is_empty() => Some(Id(Arc::from(s.trim()))),
            Value::Number(n) => Some(Id::new(n.to_string())),
            _ => None,
        }
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the listing says of a file's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeHint {
    /// A numeric `size`: taken as the exact byte count.
    Exact(u64),
    /// The localised text ("1.000,00 KB") converted to bytes: only approximate.
    Approx(u64),
}

impl SizeHint {
    /// The byte count, exact or not.
    pub fn bytes(self) -> u64 {
        match self {
            SizeHint::Exact(n) | SizeHint::Approx(n) => n,
        }
    }

    /// A JSON `size`: a non-negative integer is exact, text is parsed with [`parse_size`].
    pub fn from_json(value: &Value) -> Option<SizeHint> {
        match value {
            Value::Number(n) => n
                .as_u64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.is_finite() && *f >= 0.0)
                        .map(|f| f as u64)
                })
                .map(SizeHint::Exact),
            Value::String(s) => parse_size(s).map(SizeHint::Approx),
            _ => None,
        }
    }
}

/// Parses Cloudify's human size text ("1.000,00 KB", "522,10 KB", "0,00 B") into bytes.
///
/// Botble's `humanFilesize` writes two decimals with `,` as the decimal separator and `.` for
/// thousands, on a base of 1024. Other formatters might write "1,000.50 KB" or "1.5 MB", so the
/// separator that comes last and is followed by one or two digits only is taken as the decimal
/// one; when only `.` appears once it is a decimal point too. A bare number is bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let exponent = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" | "BYTES" => 0,
        "KB" | "KIB" | "K" => 1,
        "MB" | "MIB" | "M" => 2,
        "GB" | "GIB" | "G" => 3,
        "TB" | "TIB" | "T" => 4,
        "PB" | "PIB" | "P" => 5,
        _ => return None,
    };
    let value = parse_localised_number(number.trim())?;
    let bytes = value * 1024f64.powi(exponent);
    (bytes.is_finite() && bytes < u64::MAX as f64).then(|| bytes.round() as u64)
}

/// "1.000,00" -> 1000.0, "1,000.50" -> 1000.5, "522,10" -> 522.1, "1.5" -> 1.5.
fn parse_localised_number(number: &str) -> Option<f64> {
    if number.is_empty()
        || !number
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
    {
        return None;
    }
    let decimal = match (number.rfind(','), number.rfind('.')) {
        (Some(c), Some(d)) => Some(if c > d { ',' } else { '.' }),
        (Some(_), None) => Some(','),
        (None, Some(_)) if number.matches('.').count() == 1 => Some('.'),
        _ => None,
    };
    let normalised: String = number
        .chars()
        .filter_map(|c| match (c, decimal) {
            (c, Some(d)) if c == d => Some('.'),
            ('.' | ',', _) => None,
            (c, _) => Some(c),
        })
        .collect();
    normalised.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Parses a server date: naive `Y-m-d H:i:s` (Cloudify's format, in the site's zone), the same
/// with a `T` and fractional seconds, or RFC 3339 with a zone (converted to UTC, since the
/// model carries naive times).
pub fn parse_date(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(date) = NaiveDateTime::parse_from_str(text, format) {
            return Some(date);
        }
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|d| d.naive_utc())
        .or_else(|| {
            // "2026-02-04 15:26:17Z" and similar: RFC 3339 with a space.
            let with_t = text.replacen(' ', "T", 1);
            DateTime::parse_from_rfc3339(&with_t)
                .ok()
                .map(|d| d.naive_utc())
        })
}

fn date_field(value: &Option<Value>) -> Option<NaiveDateTime> {
    value.as_ref()?.as_str().and_then(parse_date)
}

fn text_field(value: &Option<Value>) -> Option<String> {
    match value.as_ref()? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn id_field(value: &Option<Value>) -> Option<Id> {
    value.as_ref().and_then(Id::from_json)
}

/// Why a folder or file entry could not be used.
#[derive(Debug, thiserror::Error)]
#[error("entry without an id")]
pub struct MissingId;

/// A folder as listed. Cloudify sends no `parent_id`: the parent is the folder whose listing
/// it came from.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "RawFolder")]
pub struct Folder {
    pub id: Id,
    pub name: String,
    pub created_at: Option<NaiveDateTime>,
    pub updated_at: Option<NaiveDateTime>,
}

/// Every field as whatever JSON came, so that a wrong type never fails the entry.
#[derive(Deserialize)]
struct RawFolder {
    id: Option<Value>,
    name: Option<Value>,
    created_at: Option<Value>,
    updated_at: Option<Value>,
}

impl TryFrom<RawFolder> for Folder {
    type Error = MissingId;

    fn try_from(raw: RawFolder) -> Result<Folder, MissingId> {
        Ok(Folder {
            id: id_field(&raw.id).ok_or(MissingId)?,
            name: text_field(&raw.name).unwrap_or_default(),
            created_at: date_field(&raw.created_at),
            updated_at: date_field(&raw.updated_at),
        })
    }
}

/// A file as listed.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "RawFile")]
pub struct File {
    pub id: Id,
    /// The original name without its extension, possibly with a "-N" suffix.
    pub name: String,
    /// The stored object's basename (slugged, lowercased, with extension).
    pub basename: Option<String>,
    /// Relative storage path, e.g. `documents/sub/image.jpg`.
    pub url: Option<String>,
    /// Absolute public URL of the bytes; `None` for private files.
    pub full_url: Option<String>,
    /// Absolute URL that serves the bytes without auth, also for private files. Kept only
    /// when `full_url` is missing (a private file): [`File::content_url`] prefers `full_url`,
    /// and this URL is long (some 120 bytes) in every file of every listing.
    pub indirect_url: Option<String>,
    pub size: Option<SizeHint>,
    pub mime_type: Option<String>,
    pub folder_id: Option<Id>,
    pub created_at: Option<NaiveDateTime>,
    pub updated_at: Option<NaiveDateTime>,
}

#[derive(Deserialize)]
struct RawFile {
    id: Option<Value>,
    name: Option<Value>,
    basename: Option<Value>,
    url: Option<Value>,
    full_url: Option<Value>,
    indirect_url: Option<Value>,
    size: Option<Value>,
    mime_type: Option<Value>,
    folder_id: Option<Value>,
    created_at: Option<Value>,
    updated_at: Option<Value>,
}

impl TryFrom<RawFile> for File {
    type Error = MissingId;

    fn try_from(raw: RawFile) -> Result<File, MissingId> {
        let full_url = text_field(&raw.full_url);
        let indirect_url = match &full_url {
            Some(url) if !url.trim().is_empty() => None,
            _ => text_field(&raw.indirect_url),
        };
        Ok(File {
            id: id_field(&raw.id).ok_or(MissingId)?,
            name: text_field(&raw.name).unwrap_or_default(),
            basename: text_field(&raw.basename),
            url: text_field(&raw.url),
            full_url,
            indirect_url,
            size: raw.size.as_ref().and_then(SizeHint::from_json),
            mime_type: text_field(&raw.mime_type),
            folder_id: id_field(&raw.folder_id),
            created_at: date_field(&raw.created_at),
            updated_at: date_field(&raw.updated_at),
        })
    }
}

impl File {
    /// Where the bytes are: `full_url`, or `indirect_url` for a private file.
    pub fn content_url(&self) -> Option<&str> {
        let usable = |u: &str| !u.trim().is_empty();
        let full = self.full_url.as_deref().filter(|u| usable(u));
        full.or(self.indirect_url.as_deref().filter(|u| usable(u)))
    }

    /// The lowercased extension of `basename`, else of the last segment of `url`.
    pub fn extension(&self) -> Option<String> {
        let from_basename = self.basename.as_deref().and_then(extension_of);
        from_basename.or_else(|| self.url.as_deref().and_then(extension_of))
    }
}

/// The lowercased extension of the last path segment, without query or fragment.
fn extension_of(path: &str) -> Option<String> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let last = path.rsplit(['/', '\\']).next().unwrap_or("");
    let (stem, ext) = last.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_lowercase())
}

/// One folder's content: subfolders and files, in the server's order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Listing {
    pub folders: Vec<Folder>,
    pub files: Vec<File>,
}

/// Parses a JSON array of folders, dropping (with a warning) entries without an id and
/// anything that is not an object. `None` when `value` is not an array.
pub fn folders_from_json(value: &Value, context: &str) -> Option<Vec<Folder>> {
    entries_from_json(value, context, "folder")
}

/// Parses a JSON array of files; see [`folders_from_json`].
pub fn files_from_json(value: &Value, context: &str) -> Option<Vec<File>> {
    entries_from_json(value, context, "file")
}

fn entries_from_json<T: serde::de::DeserializeOwned>(
    value: &Value,
    context: &str,
    kind: &str,
) -> Option<Vec<T>> {
    let items = value.as_array()?;
    let parsed = items
        .iter()
        .filter_map(|item| match T::deserialize(item) {
            Ok(entry) => Some(entry),
            Err(e) => {
                log::warn!("{context}: skipping a {kind} entry the server sent: {e}");
                None
            }
        })
        .collect();
    Some(parsed)
}

/// The `data` of a folder listing (`GET /media/folders`): a plain array of folders (1.2.8, or
/// `include_files` unsupported), or `{folders, files}` (2026 with `include_files=true`).
#[derive(Clone, Debug, PartialEq)]
pub enum FolderPage {
    /// Folders only; the files must be fetched from `GET /media/files`.
    FoldersOnly(Vec<Folder>),
    /// Folders and files of the page.
    WithFiles(Listing),
}

impl FolderPage {
    /// `None` when `data` is neither an array nor an object with a `folders` or `files` array.
    pub fn from_json(data: &Value, context: &str) -> Option<FolderPage> {
        if data.is_array() {
            return folders_from_json(data, context).map(FolderPage::FoldersOnly);
        }
        let object = data.as_object()?;
        let folders = object.get("folders").filter(|v| !v.is_null());
        let files = object.get("files").filter(|v| !v.is_null());
        if folders.is_none() && files.is_none() {
            return None;
        }
        let folders = match folders {
            Some(v) => folders_from_json(v, context)?,
            None => Vec::new(),
        };
        let files = match files {
            Some(v) => files_from_json(v, context)?,
            None => Vec::new(),
        };
        Some(FolderPage::WithFiles(Listing { folders, files }))
    }
}

/// The parts of a response body the client looks at. Cloudify answers with the Botble
/// envelope `{error, data, message}`; Laravel's own errors are `{message, errors}` (422) or
/// `{message}` (404, 403), plus `exception`, `file`, `line`, `trace` in debug mode.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Envelope {
    /// The `error` flag: `Some(true)` for a refusal, `None` when the body has none.
    pub error: Option<bool>,
    /// `data`, `None` when absent or null.
    pub data: Option<Value>,
    /// `message`, else the first validation error, else the `error` text of other APIs.
    pub message: Option<String>,
}

impl Envelope {
    /// Reads the envelope from a parsed body. A bare array counts as `data` (a server that
    /// does not wrap). `None` when the body is neither an object nor an array.
    pub fn from_json(body: Value) -> Option<Envelope> {
        let mut object = match body {
            Value::Object(o) => o,
            array @ Value::Array(_) => {
                return Some(Envelope {
                    error: None,
                    data: Some(array),
                    message: None,
                });
            }
            _ => return None,
        };
        let error = match object.get("error") {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::Number(n)) => Some(n.as_f64() != Some(0.0)),
            Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "false" | "0" | "" => Some(false),
                // botble/api sends `"error": "Unauthorized"`.
                _ => Some(true),
            },
            _ => None,
        };
        let message = Self::message_of(&object);
        let data = object.remove("data").filter(|d| !d.is_null());
        Some(Envelope {
            error,
            data,
            message,
        })
    }

    fn message_of(object: &serde_json::Map<String, Value>) -> Option<String> {
        let text = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let first_validation_error = || {
            let errors = object.get("errors")?.as_object()?;
            errors.values().find_map(|v| match v {
                Value::Array(list) => text(list.first()),
                other => text(Some(other)),
            })
        };
        text(object.get("message"))
            .or_else(first_validation_error)
            .or_else(|| text(object.get("error")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_in_cloudify_format() {
        assert_eq!(parse_size("1.000,00 KB"), Some(1_024_000));
        assert_eq!(parse_size("522,10 KB"), Some(534_630));
        assert_eq!(parse_size("0,00 B"), Some(0));
        assert_eq!(parse_size("1,00 MB"), Some(1_048_576));
        assert_eq!(parse_size("2,50 GB"), Some(2_684_354_560));
        assert_eq!(parse_size("1.023,99 B"), Some(1024));
        assert_eq!(parse_size("  7,00 b "), Some(7));
    }

    #[test]
    fn sizes_in_other_formats() {
        assert_eq!(parse_size("1,000.50 KB"), Some(1_024_512));
        assert_eq!(parse_size("1.5 MB"), Some(1_572_864));
        assert_eq!(parse_size("1.000.000 B"), Some(1_000_000));
        assert_eq!(parse_size("12345"), Some(12345));
    }

    #[test]
    fn malformed_sizes_are_none() {
        for text in [
            "",
            "KB",
            "abc",
            "1,00 XB",
            "-1,00 KB",
            "1,00 KB extra",
            "∞ B",
        ] {
            assert_eq!(parse_size(text), None, "{text:?}");
        }
    }

    #[test]
    fn size_hint_from_number_is_exact_and_from_text_approx() {
        assert_eq!(
            SizeHint::from_json(&json!(1234)),
            Some(SizeHint::Exact(1234))
        );
        assert_eq!(
            SizeHint::from_json(&json!("1,00 KB")),
            Some(SizeHint::Approx(1024))
        );
        assert_eq!(SizeHint::from_json(&json!(-5)), None);
        assert_eq!(SizeHint::from_json(&json!(null)), None);
        assert_eq!(SizeHint::from_json(&json!([1])), None);
    }

    #[test]
    fn dates_naive_and_iso() {
        let expected = NaiveDateTime::parse_from_str("2026-02-04 15:26:17", "%Y-%m-%d %H:%M:%S")
            .expect("test date");
        assert_eq!(parse_date("2026-02-04 15:26:17"), Some(expected));
        assert_eq!(parse_date("2026-02-04T15:26:17"), Some(expected));
        assert_eq!(parse_date("2026-02-04T15:26:17Z"), Some(expected));
        assert_eq!(parse_date("2026-02-04T15:26:17.000000Z"), Some(expected));
        assert_eq!(parse_date("2026-02-04T17:26:17+02:00"), Some(expected));
        assert_eq!(
            parse_date("2026-02-04 15:26:17.5").map(|d| d.and_utc().timestamp()),
            { Some(expected.and_utc().timestamp()) }
        );
        assert_eq!(parse_date("04/02/2026"), None);
        assert_eq!(parse_date(""), None);
    }

    #[test]
    fn ids_as_strings_or_numbers() {
        assert_eq!(Id::from_json(&json!("abc")), Some(Id::new("abc")));
        assert_eq!(Id::from_json(&json!(42)), Some(Id::new("42")));
        assert_eq!(Id::from_json(&json!(0)).map(|i| i.is_root()), Some(true));
        assert_eq!(Id::from_json(&json!("0")).map(|i| i.is_root()), Some(true));
        assert_eq!(Id::from_json(&json!("")), None);
        assert_eq!(Id::from_json(&json!(null)), None);
        assert_eq!(Id::from_json(&json!(true)), None);
    }

    fn full_file_json() -> Value {
        json!({
            "id": "0195c7d2-aaaa-7000-8000-000000000001",
            "name": "Report-1",
            "basename": "report-1.PDF",
            "url": "documents/report-1.pdf",
            "full_url": "https://cdn.example.com/storage/documents/report-1.pdf",
            "type": "document",
            "icon": "<svg/>",
            "thumb": null,
            "size": "522,10 KB",
            "mime_type": "application/pdf",
            "created_at": "2026-02-04 15:26:17",
            "updated_at": "2026-02-04 15:26:18",
            "options": [],
            "folder_id": "0",
            "preview_url": null,
            "indirect_url": "https://media.example.com/media/files/abc/0195",
            "alt": "Report-1",
            "something_new": {"nested": true}
        })
    }

    #[test]
    fn file_with_every_field() {
        let file: File = serde_json::from_value(full_file_json()).expect("file parses");
        assert_eq!(file.id.as_str(), "0195c7d2-aaaa-7000-8000-000000000001");
        assert_eq!(file.name, "Report-1");
        assert_eq!(file.size, Some(SizeHint::Approx(534_630)));
        assert_eq!(file.folder_id, Some(Id::root()));
        assert_eq!(file.extension().as_deref(), Some("pdf"));
        assert_eq!(
            file.content_url(),
            Some("https://cdn.example.com/storage/documents/report-1.pdf")
        );
        assert!(file.updated_at > file.created_at);
    }

    #[test]
    fn file_with_wrong_types_and_nulls_still_parses() {
        let file: File = serde_json::from_value(json!({
            "id": 17,
            "name": null,
            "basename": 5,
            "url": null,
            "full_url": null,
            "size": {"bytes": 3},
            "folder_id": 0,
            "created_at": "yesterday",
            "updated_at": 12
        }))
        .expect("file parses");
        assert_eq!(file.id, Id::new("17"));
        assert_eq!(file.name, "");
        assert_eq!(file.size, None);
        assert_eq!(file.folder_id, Some(Id::root()));
        assert_eq!(file.created_at, None);
        assert_eq!(file.updated_at, None);
        assert_eq!(file.content_url(), None);
        assert_eq!(file.extension(), None);
    }

    #[test]
    fn content_url_falls_back_to_indirect_url() {
        for missing in [Value::Null, json!(""), json!("  ")] {
            let mut value = full_file_json();
            value["full_url"] = missing;
            let file: File = serde_json::from_value(value).expect("file parses");
            assert_eq!(
                file.content_url(),
                Some("https://media.example.com/media/files/abc/0195")
            );
        }
        let file: File = serde_json::from_value(full_file_json()).expect("file parses");
        assert_eq!(file.indirect_url, None, "not kept beside a full_url");
    }

    #[test]
    fn extension_from_url_when_basename_missing() {
        let mut value = full_file_json();
        value["basename"] = Value::Null;
        value["url"] = json!("a.b/photos/Summer.JPEG?v=2");
        let file: File = serde_json::from_value(value).expect("file parses");
        assert_eq!(file.extension().as_deref(), Some("jpeg"));
    }

    #[test]
    fn no_extension_without_a_dot_or_with_a_leading_dot_only() {
        let file: File =
            serde_json::from_value(json!({"id": "x", "basename": "README", "url": ".hidden"}))
                .expect("file parses");
        assert_eq!(file.extension(), None);
    }

    #[test]
    fn entries_without_id_are_skipped() {
        let list = json!([{"name": "no id"}, {"id": "a", "name": "A"}, "junk", {"id": null}]);
        let folders = folders_from_json(&list, "test").expect("an array");
        assert_eq!(folders.len(), 1);
        assert_eq!(folders[0].name, "A");
        assert!(folders_from_json(&json!({"id": "a"}), "test").is_none());
    }

    #[test]
    fn folder_page_plain_array_or_object() {
        let plain = json!([{"id": "a", "name": "A", "color": null}]);
        match FolderPage::from_json(&plain, "t") {
            Some(FolderPage::FoldersOnly(f)) => assert_eq!(f.len(), 1),
            other => panic!("unexpected {other:?}"),
        }
        let with_files = json!({"folders": [{"id": 1, "name": "A"}], "files": [{"id": 2}]});
        match FolderPage::from_json(&with_files, "t") {
            Some(FolderPage::WithFiles(l)) => {
                assert_eq!(l.folders[0].id, Id::new("1"));
                assert_eq!(l.files[0].id, Id::new("2"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let files_only = json!({"files": []});
        assert!(matches!(
            FolderPage::from_json(&files_only, "t"),
            Some(FolderPage::WithFiles(_))
        ));
        assert_eq!(FolderPage::from_json(&json!({"id": "a"}), "t"), None);
        assert_eq!(FolderPage::from_json(&json!("text"), "t"), None);
    }

    #[test]
    fn envelope_shapes() {
        let ok = Envelope::from_json(json!({"error": false, "data": [1], "message": null}))
            .expect("object");
        assert_eq!(ok.error, Some(false));
        assert_eq!(ok.data, Some(json!([1])));
        assert_eq!(ok.message, None);

        let refused = Envelope::from_json(json!({
            "error": true, "data": null,
            "message": "The file type is not allowed."
        }))
        .expect("object");
        assert_eq!(refused.error, Some(true));
        assert_eq!(refused.data, None);
        assert_eq!(
            refused.message.as_deref(),
            Some("The file type is not allowed.")
        );

        let laravel = Envelope::from_json(json!({
            "message": "", "errors": {"name": ["The name has invalid character(s)."]}
        }))
        .expect("object");
        assert_eq!(laravel.error, None);
        assert_eq!(
            laravel.message.as_deref(),
            Some("The name has invalid character(s).")
        );

        let debug = Envelope::from_json(json!({
            "message": "No query results", "exception": "X", "file": "/a.php",
            "line": 3, "trace": [{"file": "/b.php"}]
        }))
        .expect("object");
        assert_eq!(debug.message.as_deref(), Some("No query results"));

        let other_api = Envelope::from_json(json!({"error": "Unauthorized"})).expect("object");
        assert_eq!(other_api.error, Some(true));
        assert_eq!(other_api.message.as_deref(), Some("Unauthorized"));

        let bare = Envelope::from_json(json!([{"id": 1}])).expect("array");
        assert_eq!(bare.error, None);
        assert!(bare.data.is_some());

        assert_eq!(Envelope::from_json(json!("text")), None);
        assert_eq!(Envelope::from_json(json!(3)), None);
    }
}
