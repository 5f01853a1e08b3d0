//! Folders, files and ids as the Cloudify API sends them, and the tolerant parsing of them.
//!
//! Cloudify's JSON varies between releases and installs (../shared/cloudify-api.md §4): ids are
//! UUID strings or integers, the root is "0" or 0, `size` is localised text ("1.000,00 KB")
//! rather than a number, dates are naive `Y-m-d H:i:s` in the site's zone, and most fields may
//! be missing or null. Parsing therefore never fails on a field it can do without: a missing,
//! null or malformed field becomes `None` (or an empty name), unknown fields are ignored, and
//! only an entry without an `id` is dropped (with a warning), because nothing can address it.

use std::borrow::Cow;
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

/// Whether a size text is Botble's whole byte count below 1 KiB: "35,00 B", "1.023,00 B".
fn whole_bytes(text: &str) -> bool {
    let Some(whole) = text.trim().strip_suffix(",00 B") else {
        return false;
    };
    let digits = whole.replace('.', "");
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.parse::<u64>().is_ok_and(|n| n < 1024)
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
    if let Some(date) = parse_plain_date(text) {
        return Some(date);
    }
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

/// `Y-m-d H:i:s` exactly, as Cloudify writes every date, read without chrono's pattern
/// parser (two dates in every listed file); `None` for anything else.
fn parse_plain_date(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    let shape =
        b.len() == 19 && (b[4], b[7], b[10], b[13], b[16]) == (b'-', b'-', b' ', b':', b':');
    if !shape {
        return None;
    }
    let number = |from: usize, to: usize| {
        b[from..to].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(number(0, 4)?).ok()?;
    let date = chrono::NaiveDate::from_ymd_opt(year, number(5, 7)?, number(8, 10)?)?;
    date.and_hms_opt(number(11, 13)?, number(14, 16)?, number(17, 19)?)
}

/// A field of an entry as it came: borrowed from a JSON tree, or owned (read straight, so
/// that its text is moved instead of copied).
type Field<'a> = Option<Cow<'a, Value>>;

fn date_field(value: Field<'_>) -> Option<NaiveDateTime> {
    value?.as_str().and_then(parse_date)
}

fn text_field(value: Field<'_>) -> Option<String> {
    match value? {
        Cow::Owned(Value::String(s)) if !s.is_empty() => Some(s),
        Cow::Borrowed(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        value => match &*value {
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        },
    }
}

fn id_field(value: Field<'_>) -> Option<Id> {
    Id::from_json(&*value?)
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

    fn try_from(mut raw: RawFolder) -> Result<Folder, MissingId> {
        Folder::from_fields(|name| {
            let field = match name {
                "id" => raw.id.take(),
                "name" => raw.name.take(),
                "created_at" => raw.created_at.take(),
                "updated_at" => raw.updated_at.take(),
                _ => None,
            };
            field.map(Cow::Owned)
        })
    }
}

impl Folder {
    /// A folder from its JSON fields, whatever their types (`field` gives each by name, once).
    fn from_fields<'a>(mut field: impl FnMut(&str) -> Field<'a>) -> Result<Folder, MissingId> {
        Ok(Folder {
            id: id_field(field("id")).ok_or(MissingId)?,
            name: text_field(field("name")).unwrap_or_default(),
            created_at: date_field(field("created_at")),
            updated_at: date_field(field("updated_at")),
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

    fn try_from(mut raw: RawFile) -> Result<File, MissingId> {
        File::from_fields(|name| {
            let field = match name {
                "id" => raw.id.take(),
                "name" => raw.name.take(),
                "basename" => raw.basename.take(),
                "url" => raw.url.take(),
                "full_url" => raw.full_url.take(),
                "indirect_url" => raw.indirect_url.take(),
                "size" => raw.size.take(),
                "mime_type" => raw.mime_type.take(),
                "folder_id" => raw.folder_id.take(),
                "created_at" => raw.created_at.take(),
                "updated_at" => raw.updated_at.take(),
                _ => None,
            };
            field.map(Cow::Owned)
        })
    }
}

impl File {
    /// A file from its JSON fields, whatever their types (`field` gives each by name, once).
    fn from_fields<'a>(mut field: impl FnMut(&str) -> Field<'a>) -> Result<File, MissingId> {
        let full_url = text_field(field("full_url"));
        let indirect_url = match &full_url {
            Some(url) if !url.trim().is_empty() => None,
            _ => text_field(field("indirect_url")),
        };
        let size = field("size");
        let in_whole_bytes = size
            .as_ref()
            .and_then(|v| v.as_str())
            .is_some_and(whole_bytes);
        let mut file = File {
            id: id_field(field("id")).ok_or(MissingId)?,
            name: text_field(field("name")).unwrap_or_default(),
            basename: text_field(field("basename")),
            url: text_field(field("url")),
            full_url,
            indirect_url,
            size: size.and_then(|v| SizeHint::from_json(&v)),
            mime_type: text_field(field("mime_type")),
            folder_id: id_field(field("folder_id")),
            created_at: date_field(field("created_at")),
            updated_at: date_field(field("updated_at")),
        };
        // Below 1 KiB Botble writes the size in whole bytes ("35,00 B"): that is exact, unless
        // the server may have re-encoded the file since it recorded the size (a raster image).
        if let Some(SizeHint::Approx(n)) = file.size
            && in_whole_bytes
            && !file.may_be_reencoded()
        {
            file.size = Some(SizeHint::Exact(n));
        }
        Ok(file)
    }

    /// Whether the server may have re-encoded the stored object after it recorded the size
    /// (Cloudify re-encodes raster images by default): an image, or of unknown type.
    fn may_be_reencoded(&self) -> bool {
        const RASTER: &[&str] = &[
            "jpg", "jpeg", "png", "gif", "bmp", "webp", "jfif", "avif", "tif", "tiff", "heic",
        ];
        let mime = self.mime_type.as_deref().map(str::to_ascii_lowercase);
        let image_mime = mime.as_deref().is_some_and(|m| {
            m.starts_with("image/") && !matches!(m, "image/svg+xml" | "image/x-icon")
        });
        let extension = self.extension();
        let image_extension = extension.as_deref().is_some_and(|e| RASTER.contains(&e));
        image_mime || image_extension || (mime.is_none() && extension.is_none())
    }

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

/// A folder or file read from its JSON object in place: deserializing copies every field's
/// JSON first and its text again after, which was a tenth of a listing's work.
trait Entry: Sized {
    fn from_object(object: &serde_json::Map<String, Value>) -> Result<Self, MissingId>;
}

impl Entry for Folder {
    fn from_object(object: &serde_json::Map<String, Value>) -> Result<Folder, MissingId> {
        Folder::from_fields(|name| object.get(name).map(Cow::Borrowed))
    }
}

impl Entry for File {
    fn from_object(object: &serde_json::Map<String, Value>) -> Result<File, MissingId> {
        File::from_fields(|name| object.get(name).map(Cow::Borrowed))
    }
}

fn entries_from_json<T: Entry>(value: &Value, context: &str, kind: &str) -> Option<Vec<T>> {
    let items = value.as_array()?;
    let parsed = items
        .iter()
        .filter_map(|item| {
            let entry = match item.as_object() {
                Some(object) => T::from_object(object).map_err(|e| e.to_string()),
                None => Err("not an object".to_string()),
            };
            match entry {
                Ok(entry) => Some(entry),
                Err(e) => {
                    log::warn!("{context}: skipping a {kind} entry the server sent: {e}");
                    None
                }
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

/// The `error` flag of an envelope: `None` when missing or of no usable type.
fn error_flag(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => Some(n.as_f64() != Some(0.0)),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "false" | "0" | "" => Some(false),
            // botble/api sends `"error": "Unauthorized"`.
            _ => Some(true),
        },
        _ => None,
    }
}

impl FolderPage {
    /// A listing page's whole answer read straight into folders and files, when it is a
    /// success of the usual shape: an object whose `error` is false or missing and whose
    /// `data` [`FolderPage::from_json`] would take. Skips the JSON tree every other answer is
    /// read into first (two thirds of the work of reading a page: a page of 100 files is
    /// some 70 KB, mostly fields the mount does not use). `None` for anything else, which
    /// then goes the general way ([`Envelope`], [`FolderPage::from_json`]) and fails or
    /// succeeds as it always did.
    pub fn from_answer(body: &[u8], context: &str) -> Option<FolderPage> {
        let answer: PageAnswer = serde_json::from_slice(body).ok()?;
        if error_flag(answer.error.as_ref()) == Some(true) {
            return None;
        }
        let PageData { folders, files } = answer.data?;
        let (folders, files) = (folders.map(|f| f.0), files.map(|f| f.0));
        if folders.is_none() && files.is_none() {
            return None;
        }
        let mut page = Listing::default();
        for (entries, kind) in [(folders, "folder"), (files, "file")] {
            for entry in entries.into_iter().flatten() {
                let skipped = match entry {
                    Lenient::Folder(raw) => Folder::try_from(raw).map(|f| page.folders.push(f)),
                    Lenient::File(raw) => File::try_from(*raw).map(|f| page.files.push(f)),
                    Lenient::Other => {
                        log::warn!(
                            "{context}: skipping a {kind} entry the server sent: not an object"
                        );
                        continue;
                    }
                };
                if let Err(e) = skipped {
                    log::warn!("{context}: skipping a {kind} entry the server sent: {e}");
                }
            }
        }
        Some(FolderPage::WithFiles(page))
    }
}

/// The answer to a listing page as [`FolderPage::from_answer`] reads it. `data` must be an
/// object here (a plain array of folders goes the general way); any field of another type
/// than expected fails the whole read, which then goes the general way too.
#[derive(Deserialize)]
struct PageAnswer {
    #[serde(default)]
    error: Option<Value>,
    data: Option<PageData>,
}

/// `data` of a listing page: an object only (a derived struct would take an array too).
struct PageData {
    folders: Option<Entries<true>>,
    files: Option<Entries<false>>,
}

impl<'de> Deserialize<'de> for PageData {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> serde::de::Visitor<'de> for Object {
            type Value = PageData;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<PageData, A::Error> {
                let mut data = PageData {
                    folders: None,
                    files: None,
                };
                // A repeated key counts as its last value, as in a JSON tree.
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match &*key {
                        "folders" => data.folders = map.next_value()?,
                        "files" => data.files = map.next_value()?,
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(data)
            }
        }
        d.deserialize_map(Object)
    }
}

/// The entries of an array: folders (`FOLDERS`) or files, each kept as read, whatever it is.
struct Entries<const FOLDERS: bool>(Vec<Lenient>);

/// One array element: an object read as a folder or file (not yet checked for an id), or
/// anything else, which is skipped as [`FolderPage::from_json`] skips it.
enum Lenient {
    Folder(RawFolder),
    File(Box<RawFile>),
    Other,
}

impl<'de, const FOLDERS: bool> Deserialize<'de> for Entries<FOLDERS> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Array<const FOLDERS: bool>;
        impl<'de, const FOLDERS: bool> serde::de::Visitor<'de> for Array<FOLDERS> {
            type Value = Entries<FOLDERS>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of entries")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1000));
                while let Some(entry) = seq.next_element_seed(Element::<FOLDERS>)? {
                    out.push(entry);
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_seq(Array::<FOLDERS>)
    }
}

/// Reads one element of an [`Entries`] array.
struct Element<const FOLDERS: bool>;

impl<'de, const FOLDERS: bool> serde::de::DeserializeSeed<'de> for Element<FOLDERS> {
    type Value = Lenient;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Lenient, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, const FOLDERS: bool> serde::de::Visitor<'de> for Element<FOLDERS> {
    type Value = Lenient;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an entry")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Lenient, A::Error> {
        let map = serde::de::value::MapAccessDeserializer::new(map);
        Ok(if FOLDERS {
            Lenient::Folder(RawFolder::deserialize(map)?)
        } else {
            Lenient::File(Box::new(RawFile::deserialize(map)?))
        })
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Lenient, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Lenient::Other)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Lenient, E> {
        Ok(Lenient::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Lenient, E> {
        Ok(Lenient::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Lenient, E> {
        Ok(Lenient::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Lenient, E> {
        Ok(Lenient::Other)
    }

    fn visit_str<E>(self, _: &str) -> Result<Lenient, E> {
        Ok(Lenient::Other)
    }

    fn visit_unit<E>(self) -> Result<Lenient, E> {
        Ok(Lenient::Other)
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
        let error = error_flag(object.get("error"));
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
    fn a_size_in_whole_bytes_is_exact_unless_the_file_may_be_reencoded() {
        let size_of = |size: &str, basename: &str, mime: Option<&str>| {
            let file: File = serde_json::from_value(json!({
                "id": "a", "size": size, "basename": basename, "mime_type": mime
            }))
            .unwrap();
            file.size
        };
        let text = Some("text/plain");
        assert_eq!(size_of("35,00 B", "a.txt", text), Some(SizeHint::Exact(35)));
        assert_eq!(
            size_of("1.023,00 B", "a.txt", text),
            Some(SizeHint::Exact(1023))
        );
        assert_eq!(size_of("0,00 B", "a.pdf", None), Some(SizeHint::Exact(0)));
        assert_eq!(
            size_of("1,00 KB", "a.txt", text),
            Some(SizeHint::Approx(1024))
        );
        assert_eq!(
            size_of("35,50 B", "a.txt", text),
            Some(SizeHint::Approx(36))
        );
        assert_eq!(
            size_of("35.00 B", "a.txt", text),
            Some(SizeHint::Approx(35))
        );
        assert_eq!(
            size_of("35,00 B", "a.png", None),
            Some(SizeHint::Approx(35))
        );
        assert_eq!(
            size_of("35,00 B", "a.txt", Some("image/png")),
            Some(SizeHint::Approx(35))
        );
        assert_eq!(
            size_of("35,00 B", "a.svg", Some("image/svg+xml")),
            Some(SizeHint::Exact(35))
        );
        assert_eq!(
            size_of("35,00 B", "noext", None),
            Some(SizeHint::Approx(35))
        );
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
    fn plain_dates_read_as_chrono_reads_them() {
        let chrono = |t: &str| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").ok();
        for text in [
            "2026-02-04 15:26:17",
            "0001-01-01 00:00:00",
            "2024-02-29 23:59:59",
            "2025-02-29 10:00:00",
            "2026-13-01 10:00:00",
            "2026-02-04 24:00:00",
            "2026-02-04 15:26:1x",
            "2026/02/04 15:26:17",
            "+026-02-04 15:26:17",
        ] {
            let fast = parse_plain_date(text);
            assert!(fast.is_none() || fast == chrono(text), "{text}");
            assert_eq!(parse_date(text), chrono(text), "{text}");
        }
        assert!(parse_plain_date("2026-02-04 15:26:17").is_some());
        // A leap second is left to chrono.
        assert_eq!(parse_plain_date("2026-12-31 23:59:60"), None);
        assert!(parse_date("2026-12-31 23:59:60").is_some());
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

    /// A listing page's answer read the general way: the tree, the envelope, the page.
    fn general_page(body: &str) -> Option<FolderPage> {
        let envelope = Envelope::from_json(serde_json::from_str(body).ok()?)?;
        if envelope.error == Some(true) {
            return None;
        }
        FolderPage::from_json(envelope.data.as_ref()?, "t")
    }

    #[test]
    fn a_page_read_straight_is_the_page_read_the_general_way() {
        let file = full_file_json().to_string();
        let folder =
            r#"{"id": "d1", "name": "Docs", "color": null, "created_at": "2026-02-04 15:26:17"}"#;
        let odd_files = format!(
            r#"[{file}, "junk", null, 3, [1], {{"name": "no id"}}, {{"id": 5, "name": ["x"], "size": 12, "created_at": 7}}]"#
        );
        let bodies = [
            format!(
                r#"{{"error": false, "data": {{"folders": [{folder}], "files": [{file}]}}, "message": null}}"#
            ),
            format!(r#"{{"data": {{"files": {odd_files}, "extra": {{"a": [1, 2]}}}}}}"#),
            format!(
                r#"{{"error": 0, "data": {{"folders": [{folder}, {{"id": null}}], "files": null}}}}"#
            ),
            format!(r#"{{"error": "false", "data": {{"files": [{file}], "files": []}}}}"#),
            r#"{"error": false, "data": {"folders": [], "files": []}}"#.to_string(),
        ];
        for body in &bodies {
            let page = FolderPage::from_answer(body.as_bytes(), "t");
            assert!(page.is_some(), "{body}");
            assert_eq!(page, general_page(body), "{body}");
        }
        let Some(FolderPage::WithFiles(odd)) = FolderPage::from_answer(bodies[1].as_bytes(), "t")
        else {
            panic!("a page");
        };
        assert_eq!(odd.files.len(), 2, "the full file and id 5");
        assert_eq!(
            (odd.files[1].name.as_str(), odd.files[1].size),
            ("", Some(SizeHint::Exact(12)))
        );

        // Anything else is left to the general way, which decides as it always did.
        for body in [
            format!(r#"{{"error": true, "data": {{"files": [{file}]}}, "message": "no"}}"#),
            format!(r#"{{"error": "Unauthorized", "data": {{"files": [{file}]}}}}"#),
            r#"{"error": false, "data": null}"#.to_string(),
            r#"{"error": false}"#.to_string(),
            format!(r#"{{"error": false, "data": [{folder}]}}"#),
            format!(r#"[{folder}]"#),
            r#"{"error": false, "data": {"folders": {"id": 1}}}"#.to_string(),
            r#"{"error": false, "data": {"other": []}}"#.to_string(),
            r#"{"error": false, "data": "text"}"#.to_string(),
            r#"{"error": false, "data": {"files": [{"id": 1, "id": 2}]}}"#.to_string(),
            "not json".to_string(),
        ] {
            assert_eq!(
                FolderPage::from_answer(body.as_bytes(), "t"),
                None,
                "{body}"
            );
        }
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
