//! What an upload's bytes are, judged as PHP's finfo would for the types Cloudify allows,
//! and the MIME type and Cloudify "type" that go with an extension.
//!
//! The product checks the sniffed type against the allowed extensions (Laravel `mimes`), so
//! an empty file ("application/x-empty") or JSON content ("application/json") is refused even
//! when it is named `.txt`. Plain text and CSV both sniff as text/plain, which maps to `txt`.

/// Extensions the content may carry; empty when it is nothing the server recognises.
pub fn sniff(head: &[u8], total_len: u64) -> Vec<&'static str> {
    if total_len == 0 {
        return Vec::new();
    }
    if let Some(exts) = sniff_magic(head) {
        return exts.to_vec();
    }
    sniff_text(head, total_len)
}

fn sniff_magic(h: &[u8]) -> Option<&'static [&'static str]> {
    let at = |off: usize, sig: &[u8]| h.len() >= off + sig.len() && &h[off..off + sig.len()] == sig;
    let table: &[(bool, &'static [&'static str])] = &[
        (at(0, b"\xFF\xD8\xFF"), &["jpg", "jpeg", "jfif"]),
        (at(0, b"\x89PNG\r\n\x1a\n"), &["png"]),
        (at(0, b"GIF87a") || at(0, b"GIF89a"), &["gif"]),
        (at(0, b"BM") && h.len() >= 14, &["bmp"]),
        (at(0, b"RIFF") && at(8, b"WEBP"), &["webp"]),
        (at(0, b"RIFF") && at(8, b"WAVE"), &["wav"]),
        (at(0, b"RIFF") && at(8, b"AVI "), &["avi"]),
        (at(4, b"ftypavif") || at(4, b"ftypavis"), &["avif"]),
        (at(4, b"ftypqt"), &["mov"]),
        (at(4, b"ftypM4V"), &["m4v", "mp4"]),
        (at(4, b"ftyp"), &["mp4", "m4v", "mov"]),
        (at(0, b"\x1A\x45\xDF\xA3"), &["webm"]),
        (at(0, b"ID3"), &["mp3", "mpga"]),
        (at(0, b"%PDF-"), &["pdf"]),
        (
            at(0, b"PK\x03\x04") || at(0, b"PK\x05\x06"),
            &["zip", "docx", "xlsx", "pptx"],
        ),
        (
            at(0, b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"),
            &["doc", "xls", "ppt"],
        ),
        (at(0, b"Rar!\x1A\x07"), &["rar", "x-rar"]),
        (at(0, b"\x1F\x8B"), &["gz"]),
        (at(0, b"\x7FELF"), &["elf"]),
        (
            h.len() >= 2 && h[0] == 0xFF && (h[1] & 0xE0) == 0xE0 && (h[1] & 0x06) != 0,
            &["mp3", "mpga"],
        ),
    ];
    table.iter().find(|(hit, _)| *hit).map(|(_, exts)| *exts)
}

/// Text: UTF-8 (a cut last character allowed) without NULs. JSON, HTML, XML and SVG text is
/// reported as such, the rest as plain text.
fn sniff_text(head: &[u8], total_len: u64) -> Vec<&'static str> {
    if head.contains(&0) {
        return Vec::new();
    }
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()])
            .expect("the prefix up to valid_up_to is valid UTF-8"),
        Err(_) => return Vec::new(),
    };
    let trimmed = text.trim_start_matches('\u{FEFF}').trim_start();
    let lower: String = trimmed
        .chars()
        .take(64)
        .collect::<String>()
        .to_ascii_lowercase();
    if looks_like_json(trimmed, head.len() as u64 == total_len) {
        vec!["json"]
    } else if lower.starts_with("<!doctype html") || lower.starts_with("<html") {
        vec!["html"]
    } else if lower.starts_with("<svg") || (lower.starts_with("<?xml") && trimmed.contains("<svg"))
    {
        vec!["svg"]
    } else if lower.starts_with("<?xml") {
        vec!["xml"]
    } else {
        vec!["txt", "csv"]
    }
}

/// finfo calls text JSON when it parses as an object or array. When only the head is known,
/// an object or array opening is taken as JSON.
fn looks_like_json(text: &str, complete: bool) -> bool {
    if !(text.starts_with('{') || text.starts_with('[')) {
        return false;
    }
    if !complete {
        return true;
    }
    matches!(
        serde_json::from_str::<serde_json::Value>(text),
        Ok(serde_json::Value::Object(_) | serde_json::Value::Array(_))
    )
}

/// The MIME type Laravel records for a stored extension.
pub fn mime_for_extension(ext: &str) -> &'static str {
    match ext {
        "jpg" | "jpeg" | "jfif" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "svg" => "image/svg+xml",
        "txt" => "text/plain",
        "csv" => "text/csv",
        "html" => "text/html",
        "xml" => "application/xml",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "rar" | "x-rar" => "application/x-rar",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "mp3" | "mpga" => "audio/mpeg",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "m4v" => "video/x-m4v",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        _ => "application/octet-stream",
    }
}

/// Cloudify's coarse type of a MIME type: image, video, audio, zip or document.
pub fn media_type(mime: &str) -> &'static str {
    if mime.starts_with("image/") {
        "image"
    } else if mime.starts_with("video/") {
        "video"
    } else if mime.starts_with("audio/") {
        "audio"
    } else if mime == "application/zip" || mime == "application/x-rar" {
        "zip"
    } else {
        "document"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_csv_sniff_as_text_json_does_not() {
        assert_eq!(sniff(b"hello\n", 6), vec!["txt", "csv"]);
        assert_eq!(sniff(b"a,b\n1,2\n", 8), vec!["txt", "csv"]);
        assert_eq!(sniff(b"{\"a\": 1}", 8), vec!["json"]);
        assert_eq!(sniff(b"{not json", 9), vec!["txt", "csv"]);
        assert!(sniff(b"", 0).is_empty());
        assert!(sniff(b"\x00\x01\x02", 3).is_empty());
    }

    #[test]
    fn magic_numbers_are_recognised() {
        assert_eq!(sniff(b"%PDF-1.7 ...", 100), vec!["pdf"]);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n....", 100), vec!["png"]);
        assert!(sniff(b"PK\x03\x04....", 100).contains(&"docx"));
    }
}
