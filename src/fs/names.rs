//! Display names: how Cloudify's folders and files are named in the mount.
//!
//! Cloudify stores a file's name without its extension (`name`) and the stored object's
//! slugged name with it (`basename`). The mount shows:
//!
//! 1. **Folders** under their `name`; **files** as `name` + "." + the extension of `basename`
//!    (or of the last segment of `url` when `basename` is missing). A file whose stored
//!    object has no extension shows as its bare `name`.
//! 2. **Invalid POSIX names are mapped**: "/" and NUL become "_"; an empty name becomes "_";
//!    "." becomes "_" and ".." becomes "__"; a name longer than 255 bytes is cut at a
//!    character boundary, keeping its extension.
//! 3. **Collisions are disambiguated.** Cloudify compares names case- and accent-insensitively
//!    (MySQL's `utf8mb4_unicode_ci`), lists a folder and a file of one name side by side, and
//!    shows files whose folder was trashed or deleted ("orphans") in the root. Two entries
//!    collide when their names are equal after lowercasing and removing the accents of Latin
//!    letters ("Été.txt" and "ete.TXT"). Of colliding entries, one keeps the plain name, in
//!    this order of preference: folders, then files that belong to the listed folder, then
//!    orphans; within each group, the server's listing order. Every other entry gets a suffix
//!    from its remote id before the extension: `name~<id8>.ext`, where `<id8>` is the last 8
//!    characters of the id without dashes (the random part of Cloudify's time-ordered UUIDs;
//!    the whole id when it is shorter). Should that collide too, `<idfull>` is used: the id
//!    without dashes when it has at most 16 characters, else the first 16 hex digits of its
//!    SHA-256. Should that collide as well, `<idfull>~2`, `<idfull>~3`, ... A suffix is thus
//!    at most a few dozen bytes and always survives the cut to 255 bytes, so candidates stay
//!    distinct however long the ids are, and the counter ends within as many steps as there
//!    are names in the folder.
//!
//! The mapping depends only on the listing, so a name stays the same as long as the folder's
//! content does.

use std::borrow::Cow;

use foldhash::{HashSet, HashSetExt};

use crate::api::{File, Folder, Id};

/// Longest file name Linux accepts, in bytes.
pub const NAME_MAX: usize = 255;

/// An extension longer than this is treated as part of the stem when a name must be cut.
const MAX_KEPT_EXTENSION: usize = 32;

/// One entry to be named, in the server's listing order.
pub struct Candidate<'a> {
    pub id: &'a Id,
    /// The name as Cloudify has it (a file's `name` without extension).
    pub stem: &'a str,
    /// A file's extension (without the dot).
    pub extension: Option<String>,
    /// Rank in the claim on a plain name: lower wins (see the module documentation).
    pub rank: u8,
}

impl<'a> Candidate<'a> {
    pub fn folder(folder: &'a Folder) -> Candidate<'a> {
        Candidate {
            id: &folder.id,
            stem: &folder.name,
            extension: None,
            rank: 0,
        }
    }

    /// A file of the listing of `listed`; files that belong elsewhere (root orphans) rank
    /// after the folder's own.
    pub fn file(file: &'a File, listed: &Id) -> Candidate<'a> {
        let own = match &file.folder_id {
            Some(folder) => folder == listed || (folder.is_root() && listed.is_root()),
            None => true,
        };
        Candidate {
            id: &file.id,
            stem: &file.name,
            extension: file.extension(),
            rank: if own { 1 } else { 2 },
        }
    }
}

/// Names every candidate; the result is in the candidates' order.
pub fn assign_names(candidates: &[Candidate<'_>]) -> Vec<String> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by_key(|&i| (candidates[i].rank, i)); // stable: server order within a rank

    let mut names: Vec<Option<String>> = vec![None; candidates.len()];
    let mut taken = HashSet::new();
    let mut losers = Vec::new();
    for &i in &order {
        let plain = display_name(candidates[i].stem, candidates[i].extension.as_deref(), "");
        if taken.insert(fold(&plain)) {
            names[i] = Some(plain);
        } else {
            losers.push(i);
        }
    }

    for i in losers {
        let c = &candidates[i];
        let name_with = |suffix: &str| display_name(c.stem, c.extension.as_deref(), suffix);
        // The counter names differ from each other after the cut (each suffix is kept whole),
        // so of `taken.len() + 1` of them at least one is free: the search always ends.
        let tries = 2 + taken.len() + 1;
        let mut tried = suffixes(c.id).take(tries).map(|suffix| name_with(&suffix));
        let name = tried
            .find(|name| taken.insert(fold(name)))
            .unwrap_or_else(|| name_with(&format!("~{}", long_id_part(c.id))));
        names[i] = Some(name);
    }
    names.into_iter().map(Option::unwrap_or_default).collect()
}

/// Ids longer than this are represented by a hash in suffixes.
const MAX_ID_IN_SUFFIX: usize = 16;

/// The id without dashes when short, else the first 16 hex digits of its SHA-256: bounded,
/// and different for different ids.
fn long_id_part(id: &Id) -> String {
    use sha2::Digest;
    let compact: String = id.as_str().chars().filter(|c| *c != '-').collect();
    if compact.chars().count() <= MAX_ID_IN_SUFFIX {
        return sanitize(&compact).into_owned();
    }
    let digest = sha2::Sha256::digest(id.as_str().as_bytes());
    hex::encode(&digest[..MAX_ID_IN_SUFFIX / 2])
}

/// The suffixes tried, in order, for an entry that lost its plain name; each is at most
/// 1 + 16 characters plus a counter, whatever the id's length.
fn suffixes(id: &Id) -> impl Iterator<Item = String> + use<> {
    let compact: String = id.as_str().chars().filter(|c| *c != '-').collect();
    let chars: Vec<char> = compact.chars().collect();
    let short: String = chars[chars.len().saturating_sub(8)..].iter().collect();
    let full = long_id_part(id);
    let first = [format!("~{}", sanitize(&short)), format!("~{full}")];
    first
        .into_iter()
        .chain((2u64..).map(move |n| format!("~{full}~{n}")))
}

/// `stem` + `suffix` + "." + `extension`, made a valid POSIX name of at most 255 bytes.
pub fn display_name(stem: &str, extension: Option<&str>, suffix: &str) -> String {
    let stem = sanitize(stem);
    let ext = extension.map(sanitize).filter(|e| !e.is_empty());
    let (stem, dot, ext) = match ext {
        Some(e) if e.len() <= MAX_KEPT_EXTENSION => (stem, ".", e),
        Some(e) => (Cow::Owned(format!("{stem}.{e}")), "", Cow::Borrowed("")),
        None => (stem, "", Cow::Borrowed("")),
    };
    let budget = NAME_MAX.saturating_sub(suffix.len() + dot.len() + ext.len());
    let name = format!("{}{suffix}{dot}{ext}", cut(&stem, budget));
    match name.as_str() {
        "" => "_".to_string(),
        "." => "_".to_string(),
        ".." => "__".to_string(),
        _ if name.len() <= NAME_MAX => name,
        _ => cut(&name, NAME_MAX).to_string(),
    }
}

/// Replaces the two bytes a POSIX name cannot hold.
fn sanitize(s: &str) -> Cow<'_, str> {
    if s.contains(['/', '\0']) {
        Cow::Owned(s.replace(['/', '\0'], "_"))
    } else {
        Cow::Borrowed(s)
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The key under which two names collide: lowercase, with the accents of Latin letters
/// removed ("É" and "e" are equal; "д" and "d" are not).
pub fn fold(name: &str) -> String {
    if name.is_ascii() {
        return name.to_ascii_lowercase();
    }
    let mut out = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        match latin_base(c) {
            Some(base) => out.push_str(base),
            None => out.push(c),
        }
    }
    out
}

/// The ASCII letters of an accented Latin letter ("é" -> "e", "ß" -> "ss"), `None` for any
/// other character.
fn latin_base(c: char) -> Option<&'static str> {
    let latin = matches!(c as u32, 0xC0..=0x24F | 0x1E00..=0x1EFF);
    if !latin || !c.is_alphabetic() {
        return None;
    }
    // The input is already lowercase; a transliteration with capitals is not an accent
    // removal, so such characters stay as they are.
    deunicode::deunicode_char(c)
        .filter(|s| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(id: &str, name: &str, basename: &str, folder: &str) -> File {
        File {
            id: Id::new(id),
            name: name.to_string(),
            basename: Some(basename.to_string()),
            url: Some(format!("x/{basename}")),
            full_url: None,
            indirect_url: None,
            size: None,
            mime_type: None,
            folder_id: Some(Id::new(folder)),
            created_at: None,
            updated_at: None,
        }
    }

    fn folder(id: &str, name: &str) -> Folder {
        Folder {
            id: Id::new(id),
            name: name.to_string(),
            created_at: None,
            updated_at: None,
        }
    }

    #[test]
    fn invalid_posix_names_are_mapped() {
        assert_eq!(display_name("a/b", Some("txt"), ""), "a_b.txt");
        assert_eq!(display_name("a\0b", None, ""), "a_b");
        assert_eq!(display_name("", None, ""), "_");
        assert_eq!(display_name(".", None, ""), "_");
        assert_eq!(display_name("..", None, ""), "__");
        assert_eq!(display_name("", Some("txt"), ""), ".txt");
    }

    #[test]
    fn long_names_are_cut_at_a_char_boundary_keeping_the_extension() {
        let stem = "é".repeat(200); // 400 bytes
        let name = display_name(&stem, Some("jpg"), "");
        assert!(name.len() <= NAME_MAX, "{}", name.len());
        assert!(name.ends_with(".jpg"));
        let suffixed = display_name(&stem, Some("jpg"), "~abcdef12");
        assert!(suffixed.len() <= NAME_MAX);
        assert!(suffixed.ends_with("~abcdef12.jpg"));
    }

    #[test]
    fn fold_ignores_case_and_latin_accents_only() {
        assert_eq!(fold("Été.TXT"), fold("ete.txt"));
        assert_eq!(fold("Straße"), "strasse");
        assert_ne!(fold("дом"), fold("dom"));
        assert_ne!(fold("北京"), fold("背景"));
    }

    #[test]
    fn collisions_get_stable_suffixes_folders_first() {
        let a = file(
            "0190aaaa-0000-7000-8000-00000000a1b2",
            "Photo",
            "photo.jpg",
            "0",
        );
        let b = file(
            "0190aaaa-0000-7000-8000-00000000c3d4",
            "photo",
            "photo-1.JPG",
            "0",
        );
        let d = folder("0190aaaa-0000-7000-8000-0000000000ff", "Photo.jpg");
        let root = Id::root();
        let cands = vec![
            Candidate::file(&a, &root),
            Candidate::file(&b, &root),
            Candidate::folder(&d),
        ];
        let names = assign_names(&cands);
        assert_eq!(names[2], "Photo.jpg"); // the folder keeps the plain name
        assert_eq!(names[0], "Photo~0000a1b2.jpg");
        assert_eq!(names[1], "photo~0000c3d4.jpg");
        assert_eq!(assign_names(&cands), names, "deterministic");
    }

    #[test]
    fn orphans_yield_the_plain_name_to_own_files() {
        let orphan = file("o1", "a", "a.txt", "gone-folder");
        let own = file("f1", "a", "a.txt", "0");
        let root = Id::root();
        let names = assign_names(&[
            Candidate::file(&orphan, &root),
            Candidate::file(&own, &root),
        ]);
        assert_eq!(names, vec!["a~o1.txt".to_string(), "a.txt".to_string()]);
    }

    #[test]
    fn long_ids_get_bounded_suffixes_and_distinct_names() {
        // Ids of 300 characters that differ only near their end, but not in their last 8
        // characters: the short suffix collides and the whole id would not fit in a name.
        let ids: Vec<String> = (0..4)
            .map(|i| format!("{}{i}{}", "7".repeat(290), "a".repeat(9)))
            .collect();
        let files: Vec<File> = ids
            .iter()
            .map(|id| file(id, "same", "same.txt", "0"))
            .collect();
        let root = Id::root();
        let cands: Vec<Candidate<'_>> = files.iter().map(|f| Candidate::file(f, &root)).collect();
        let names = assign_names(&cands);
        let unique: HashSet<_> = names.iter().map(|n| fold(n)).collect();
        assert_eq!(unique.len(), 4, "{names:?}");
        assert_eq!(names[0], "same.txt");
        for name in &names[1..] {
            assert!(name.len() <= 40, "suffix bounded: {name}");
            assert!(
                name.starts_with("same~") && name.ends_with(".txt"),
                "{name}"
            );
        }
        assert_eq!(assign_names(&cands), names, "deterministic");
    }

    #[test]
    fn a_repeated_long_id_ends_with_a_counter() {
        let id = "x".repeat(300);
        let files: Vec<File> = (0..4).map(|_| file(&id, "a", "a.txt", "0")).collect();
        let root = Id::root();
        let cands: Vec<Candidate<'_>> = files.iter().map(|f| Candidate::file(f, &root)).collect();
        let names = assign_names(&cands);
        let unique: HashSet<_> = names.iter().map(|n| fold(n)).collect();
        assert_eq!(unique.len(), 4, "{names:?}");
        assert!(names.iter().all(|n| n.len() <= NAME_MAX));
        assert!(names[3].ends_with("~2.txt"), "{names:?}");
    }

    #[test]
    fn suffix_that_collides_falls_back_to_the_full_id() {
        let x = file("12345678", "a", "a.txt", "0");
        let y = file("12345678", "a", "a.txt", "0"); // a server that repeats an id
        let z = file("99", "a~12345678", "a-12345678.txt", "0");
        let root = Id::root();
        let names = assign_names(&[
            Candidate::file(&x, &root),
            Candidate::file(&y, &root),
            Candidate::file(&z, &root),
        ]);
        let unique: HashSet<_> = names.iter().map(|n| fold(n)).collect();
        assert_eq!(unique.len(), 3, "{names:?}");
        assert_eq!(names[0], "a.txt");
        assert_eq!(names[2], "a~12345678.txt");
    }
}
