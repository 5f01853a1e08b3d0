//! cloudify-server listings: order, pagination edges in both flavours, `include_files`, and
//! the root listing's orphans.

mod common;

use common::{Api, ServerOptions, TestServer};
use serde_json::{Value, json};

const EDGES: [usize; 7] = [0, 1, 40, 41, 100, 101, 250];

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect()
}

/// Reads every page of `path` (which already has a `?`), as a client does: until a short page.
fn all_pages(api: &Api, path: &str, per_page: Option<usize>) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    let mut pages = 0;
    let size = per_page.unwrap_or(40).min(100);
    for page in 1.. {
        let pp = per_page
            .map(|n| format!("&per_page={n}"))
            .unwrap_or_default();
        let (status, body) = api.get(&format!("{path}&page={page}{pp}"));
        assert_eq!(status, 200, "{body}");
        let got = ids(&body["data"]);
        pages += 1;
        let short = got.len() < size;
        out.extend(got);
        if short {
            break;
        }
        assert!(page < 1000, "no end of pages");
    }
    (out, pages)
}

/// A folder holding `n` subfolders named f000.. (created in reverse, to prove sorting).
fn folder_with_children(api: &Api, n: usize) -> String {
    let parent = api.mkdir("0", &format!("parent {n}"));
    let pid = parent["id"].as_str().unwrap().to_string();
    for i in (0..n).rev() {
        api.mkdir(&pid, &format!("f{i:03}"));
    }
    pid
}

#[test]
fn folder_pagination_edges_2026() {
    let srv = TestServer::default_server();
    let api = srv.client();
    for n in EDGES {
        let pid = folder_with_children(&api, n);
        let path = format!("/folders?folder_id={pid}");
        let (all, pages) = all_pages(&api, &path, None);
        assert_eq!(all.len(), n, "n={n}");
        assert_eq!(pages, n / 40 + 1, "default per_page is 40 (n={n})");
        let mut dedup = all.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), n, "no repeats across pages (n={n})");
        let (all100, pages100) = all_pages(&api, &path, Some(100));
        assert_eq!(all100, all, "same order whatever the page size (n={n})");
        assert_eq!(pages100, n / 100 + 1);
        // The first page is in name order.
        let (_, first) = api.get(&format!("{path}&per_page=100"));
        let got = names(&first["data"]);
        let want: Vec<String> = (0..n.min(100)).map(|i| format!("f{i:03}")).collect();
        assert_eq!(got, want, "n={n}");
    }
}

#[test]
fn per_page_is_clamped_and_validated() {
    let srv = TestServer::default_server();
    let api = srv.client();
    let pid = folder_with_children(&api, 101);
    for pp in [101, 1000] {
        let (status, body) = api.get(&format!("/folders?folder_id={pid}&per_page={pp}"));
        assert_eq!(status, 200);
        assert_eq!(body["data"].as_array().unwrap().len(), 100, "per_page={pp}");
    }
    let (_, body) = api.get(&format!("/folders?folder_id={pid}&per_page=100&page=2"));
    assert_eq!(names(&body["data"]), ["f100"]);
    let (_, body) = api.get(&format!("/folders?folder_id={pid}&page=9"));
    assert_eq!(body["data"], json!([]));
    for bad in ["per_page=0", "per_page=x", "page=0", "page=-1"] {
        let (status, body) = api.get(&format!("/folders?folder_id={pid}&{bad}"));
        assert_eq!(status, 422, "{bad}: {body}");
        assert!(body["errors"].is_object());
    }
}

#[test]
fn file_pagination_edges_2026() {
    let srv = TestServer::default_server();
    let api = srv.client();
    for n in [0, 1, 40, 41, 101] {
        let parent = api.mkdir("0", &format!("files {n}"));
        let pid = parent["id"].as_str().unwrap().to_string();
        for i in 0..n {
            api.put_file(Some(&pid), &format!("x{i:03}.txt"), b"x");
        }
        let (all, pages) = all_pages(&api, &format!("/files?folder_id={pid}"), None);
        assert_eq!(all.len(), n);
        assert_eq!(pages, n / 40 + 1);
        let (_, body) = api.get(&format!("/folders/{pid}?per_page=100"));
        assert_eq!(body["data"]["files"].as_array().unwrap().len(), n.min(100));
    }
}

#[test]
fn include_files_paginates_folders_then_files() {
    let srv = TestServer::default_server();
    let api = srv.client();
    let parent = api.mkdir("0", "mixed");
    let pid = parent["id"].as_str().unwrap().to_string();
    for i in 0..30 {
        api.mkdir(&pid, &format!("d{i:02}"));
        api.put_file(Some(&pid), &format!("f{i:02}.txt"), b"f");
    }
    let page = |p: u32| {
        api.get(&format!(
            "/folders?folder_id={pid}&include_files=true&page={p}"
        ))
        .1
    };
    let first = page(1);
    assert_eq!(first["data"]["folders"].as_array().unwrap().len(), 30);
    let files1 = names(&first["data"]["files"]);
    assert_eq!(files1.len(), 10);
    assert_eq!(files1[0], "f00");
    let second = page(2);
    assert_eq!(second["data"]["folders"], json!([]));
    let files2 = names(&second["data"]["files"]);
    assert_eq!(files2.len(), 20);
    assert_eq!(files2[0], "f10");
    let third = page(3);
    assert_eq!(third["data"], json!({"folders": [], "files": []}));
    // Without include_files only folders, as a flat array.
    let (_, plain) = api.get(&format!("/folders?folder_id={pid}"));
    assert_eq!(plain["data"].as_array().unwrap().len(), 30);
}

#[test]
fn flavor_128_ignores_page_per_page_and_include_files() {
    let srv = TestServer::start(ServerOptions::default().args(["--flavor", "1.2.8"]));
    let api = srv.client();
    for n in EDGES {
        let pid = folder_with_children(&api, n);
        let p1 = api
            .get(&format!("/folders?folder_id={pid}&page=1&per_page=10"))
            .1;
        let p2 = api
            .get(&format!("/folders?folder_id={pid}&page=2&per_page=10"))
            .1;
        assert_eq!(ids(&p1["data"]).len(), n, "everything at once (n={n})");
        assert_eq!(p1["data"], p2["data"], "page is ignored (n={n})");
    }
    let parent = api.mkdir("0", "with files");
    let pid = parent["id"].as_str().unwrap().to_string();
    api.put_file(Some(&pid), "a.txt", b"a");
    api.mkdir(&pid, "sub");
    let (_, body) = api.get(&format!("/folders?folder_id={pid}&include_files=true"));
    assert_eq!(
        names(&body["data"]),
        ["sub"],
        "include_files is ignored: {body}"
    );
    let (status, _) = api.get(&format!("/files?folder_id={pid}&per_page=0"));
    assert_eq!(status, 200, "per_page is not even validated");
}

#[test]
fn listings_sort_case_and_accent_insensitively() {
    let srv = TestServer::default_server();
    let api = srv.client();
    for n in ["beta", "Alpha", "älpha two", "Gamma", "delta"] {
        api.mkdir("0", n);
    }
    for f in ["b.txt", "Á.txt", "c.txt", "A2.txt"] {
        api.put_file(None, f, b"x");
    }
    let (_, body) = api.get("/folders?include_files=true&per_page=100");
    assert_eq!(
        names(&body["data"]["folders"]),
        ["Alpha", "älpha two", "beta", "delta", "Gamma"]
    );
    assert_eq!(names(&body["data"]["files"]), ["Á", "A2", "b", "c"]);
}

#[test]
fn root_lists_orphans_and_unknown_folders_list_nothing() {
    let srv = TestServer::default_server();
    let api = srv.client();
    let bogus = "00000000-0000-0000-0000-00000000b065";
    let orphan = api.put_file(Some(bogus), "orphan.txt", b"o");
    assert_eq!(orphan["folder_id"], bogus);
    assert_eq!(orphan["url"], "orphan.txt", "stored at the disk root");
    let gone = api.mkdir("0", "Gone");
    let gone_id = gone["id"].as_str().unwrap().to_string();
    let (_, root) = api.get("/files");
    assert_eq!(names(&root["data"]), ["orphan"]);
    let (_, under_bogus) = api.get(&format!("/files?folder_id={bogus}"));
    assert_eq!(names(&under_bogus["data"]), ["orphan"]);
    let (_, none) = api.get(&format!("/folders?folder_id={bogus}"));
    assert_eq!(none["data"], json!([]));
    let (_, empty) = api.get("/folders?folder_id=");
    assert_eq!(empty["data"], json!([]));
    let (_, empty) = api.get("/files?folder_id=");
    assert_eq!(empty["data"], json!([]));
    api.delete(&format!("/folders/{gone_id}"));
    assert_eq!(api.get("/folders").1["data"], json!([]));
}
