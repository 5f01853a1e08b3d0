//! When to ask for the next page of a listing.
//!
//! The 2026 API pages lists (`per_page` up to 100, no total); 1.2.8 ignores `page` and sends
//! everything on every page. So a listing goes on while a page is full (at least `PER_PAGE`
//! entries) and brought something new; a short page or one that only repeats ids ends it, and
//! repeated entries are dropped.

use foldhash::HashSet;

use super::{Id, Listing};

/// Entries asked for per page (the 2026 maximum).
pub const PER_PAGE: usize = 100;

/// The ids seen so far in one folder's listing. Folders and files are tracked apart: a
/// BIGINT install numbers them independently, so a folder and a file may share an id.
#[derive(Debug, Default)]
pub struct PageRule {
    folders: HashSet<Id>,
    files: HashSet<Id>,
}

impl PageRule {
    /// Adds the page's new entries to `listing`; returns whether to fetch the next page.
    pub fn absorb(&mut self, page: Listing, listing: &mut Listing) -> bool {
        let count = page.folders.len() + page.files.len();
        let before = listing.folders.len() + listing.files.len();
        for folder in page.folders {
            if self.folders.insert(folder.id.clone()) {
                listing.folders.push(folder);
            }
        }
        for file in page.files {
            if self.files.insert(file.id.clone()) {
                listing.files.push(file);
            }
        }
        let new = listing.folders.len() + listing.files.len() - before;
        count >= PER_PAGE && new > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{File, Folder};

    fn folder(id: usize) -> Folder {
        Folder {
            id: Id::new(id.to_string()),
            name: format!("f{id}"),
            created_at: None,
            updated_at: None,
        }
    }

    fn file(id: usize) -> File {
        serde_json::from_value(serde_json::json!({"id": id, "name": format!("x{id}")}))
            .expect("file")
    }

    fn page(folders: std::ops::Range<usize>, files: std::ops::Range<usize>) -> Listing {
        Listing {
            folders: folders.map(folder).collect(),
            files: files.map(file).collect(),
        }
    }

    #[test]
    fn full_pages_continue_and_a_short_page_stops() {
        let mut rule = PageRule::default();
        let mut listing = Listing::default();
        assert!(rule.absorb(page(0..30, 0..70), &mut listing));
        assert!(rule.absorb(page(0..0, 70..170), &mut listing));
        assert!(!rule.absorb(page(0..0, 170..180), &mut listing));
        assert_eq!(listing.folders.len(), 30);
        assert_eq!(listing.files.len(), 180);
    }

    #[test]
    fn a_repeated_page_stops_and_adds_nothing() {
        let mut rule = PageRule::default();
        let mut listing = Listing::default();
        assert!(rule.absorb(page(0..5, 0..250), &mut listing));
        assert!(!rule.absorb(page(0..5, 0..250), &mut listing));
        assert_eq!(listing.folders.len(), 5);
        assert_eq!(listing.files.len(), 250);
    }

    #[test]
    fn duplicates_within_a_page_are_dropped() {
        let mut rule = PageRule::default();
        let mut listing = Listing::default();
        let mut dup = page(0..2, 0..2);
        dup.files.push(file(1));
        assert!(!rule.absorb(dup, &mut listing));
        assert_eq!(listing.files.len(), 2);
    }

    #[test]
    fn a_folder_and_a_file_may_share_an_id() {
        let mut rule = PageRule::default();
        let mut listing = Listing::default();
        rule.absorb(page(7..8, 7..8), &mut listing);
        assert_eq!((listing.folders.len(), listing.files.len()), (1, 1));
    }

    #[test]
    fn an_empty_page_stops() {
        let mut rule = PageRule::default();
        assert!(!rule.absorb(Listing::default(), &mut Listing::default()));
    }
}
