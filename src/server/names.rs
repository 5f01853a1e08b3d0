//! Names as Cloudify makes them: the folder-name rule, the collation used to compare names
//! (case-, accent- and trailing-space-insensitive, like MySQL's utf8mb4_unicode_ci), slugs,
//! "-1", "-2" suffixes, and how an uploaded file's name splits into stem and extension.

use std::collections::HashSet;

/// Laravel's TrimStrings middleware: Unicode whitespace and a few invisible marks.
pub fn trim_input(s: &str) -> &str {
    let invisible =
        |c: char| c.is_whitespace() || matches!(c, '\u{FEFF}' | '\u{200B}' | '\u{200E}');
    s.trim_matches(invisible)
}

/// The folder-name rule `^[\pL\s _\-0-9]+$`: letters, whitespace, `_`, `-`, ASCII digits.
pub fn folder_name_is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| {
            c.is_whitespace()
                || c == '_'
                || c == '-'
                || c.is_ascii_digit()
                || (c.is_alphabetic() && !c.is_numeric())
        })
}

/// The comparison key of a name: two names are "equal" to the server when their keys are.
/// Accents are dropped for letters that transliterate to one or two ASCII letters ("É" ->
/// "e"), everything is lowercased, trailing spaces are ignored (MySQL PAD SPACE).
pub fn fold_key(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
            continue;
        }
        match deunicode::deunicode_char(c) {
            Some(t)
                if c.is_alphabetic()
                    && (1..=2).contains(&t.len())
                    && t.chars().all(|a| a.is_ascii_alphabetic()) =>
            {
                out.push_str(&t.to_ascii_lowercase())
            }
            _ => out.extend(c.to_lowercase()),
        }
    }
    out.truncate(out.trim_end_matches(' ').len());
    out
}

/// Laravel's `Str::slug`: transliterate to ASCII, lowercase, `@` -> "at", runs of anything
/// that is not a letter or digit become one "-", no "-" at either end.
pub fn slug(name: &str) -> String {
    let ascii = deunicode::deunicode(&name.replace('@', "-at-")).to_ascii_lowercase();
    let mut out = String::with_capacity(ascii.len());
    let mut pending_dash = false;
    for c in ascii.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c);
        } else {
            pending_dash = true;
        }
    }
    out
}

/// The first of `base`, `base-1`, `base-2`, ... whose key is not in `taken` (keys as made by
/// `key`). This is the loop of the product's `createName`/`createSlug`.
pub fn unique_name(base: &str, taken: &HashSet<String>, key: impl Fn(&str) -> String) -> String {
    if !taken.contains(&key(base)) {
        return base.to_string();
    }
    (1u64..)
        .map(|i| format!("{base}-{i}"))
        .find(|candidate| !taken.contains(&key(candidate)))
        .expect("an unbounded counter always finds a free name")
}

/// A client filename as PHP sees it: only what follows the last `/` or `\`.
pub fn client_basename(filename: &str) -> &str {
    filename.rsplit(['/', '\\']).next().unwrap_or(filename)
}

/// PHP's `pathinfo`: (FILENAME, extension) split on the last dot; `.bashrc` has an empty
/// stem and the extension "bashrc"; a name without a dot has no extension.
pub fn split_extension(name: &str) -> (&str, Option<&str>) {
    match name.rfind('.') {
        Some(i) => (&name[..i], Some(&name[i + 1..])),
        None => (name, None),
    }
}

/// Cuts `s` to at most `max` characters.
pub fn cut_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_follow_the_character_rule() {
        for ok in ["Docs", "Über Straße", "a_b-c 12", "tab\there", "日本"] {
            assert!(folder_name_is_valid(ok), "{ok}");
        }
        for bad in [
            "a.b", "a/b", "(x)", "it's", "a&b", "a+b", "😀", "e\u{301}", "١٢", "",
        ] {
            assert!(!folder_name_is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn keys_ignore_case_accents_and_trailing_spaces() {
        assert_eq!(fold_key("Éte "), fold_key("ete"));
        assert_eq!(fold_key("DOCS"), "docs");
        assert_ne!(fold_key(" a"), fold_key("a"));
        assert_ne!(fold_key("日本"), fold_key("ri ben"));
    }

    #[test]
    fn slugs_are_ascii_lowercase_dashed() {
        assert_eq!(slug("Hello World!"), "hello-world");
        assert_eq!(slug("  Café  au lait "), "cafe-au-lait");
        assert_eq!(slug("a@b"), "a-at-b");
        assert_eq!(slug("!!!"), "");
    }

    #[test]
    fn unique_names_take_the_first_free_suffix() {
        let taken: HashSet<String> = ["docs", "docs-1"].iter().map(|s| s.to_string()).collect();
        assert_eq!(unique_name("Docs", &taken, fold_key), "Docs-2");
        assert_eq!(unique_name("Other", &taken, fold_key), "Other");
    }

    #[test]
    fn filenames_split_like_php() {
        assert_eq!(client_basename("a\\b.txt"), "b.txt");
        assert_eq!(client_basename("x/y/z.pdf"), "z.pdf");
        assert_eq!(split_extension("a.tar.gz"), ("a.tar", Some("gz")));
        assert_eq!(split_extension(".bashrc"), ("", Some("bashrc")));
        assert_eq!(split_extension("README"), ("README", None));
    }
}
