//! cloudify-server file bytes: `full_url` and `indirect_url` without a key, HEAD, lengths,
//! types, and Range edge cases (raw requests, so nothing is smoothed over by a client).

mod common;

use common::TestServer;
use reqwest::blocking::Client;
use reqwest::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};

const BODY: &[u8] = b"0123456789abcdefghij";

fn setup() -> (TestServer, String, String) {
    let srv = TestServer::default_server();
    let f = srv.client().put_file(None, "digits.txt", BODY);
    let full = f["full_url"].as_str().unwrap().to_string();
    let indirect = f["indirect_url"].as_str().unwrap().to_string();
    (srv, full, indirect)
}

fn get_range(url: &str, range: &str) -> (u16, Option<String>, Vec<u8>) {
    let resp = Client::new().get(url).header(RANGE, range).send().unwrap();
    let status = resp.status().as_u16();
    let cr = resp
        .headers()
        .get(CONTENT_RANGE)
        .map(|v| v.to_str().unwrap().to_string());
    (status, cr, resp.bytes().unwrap().to_vec())
}

#[test]
fn both_urls_serve_the_bytes_without_a_key() {
    let (_srv, full, indirect) = setup();
    for url in [&full, &indirect] {
        let resp = reqwest::blocking::get(url).unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        assert_eq!(resp.headers()[CONTENT_TYPE], "text/plain");
        assert_eq!(resp.headers()[ACCEPT_RANGES], "bytes");
        assert_eq!(resp.headers()[CONTENT_LENGTH], "20");
        assert_eq!(resp.bytes().unwrap(), BODY);
    }
}

#[test]
fn head_reports_length_without_a_body() {
    let (srv, full, indirect) = setup();
    for url in [&full, &indirect] {
        let resp = Client::new().head(url).send().unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()[CONTENT_LENGTH], "20");
        assert_eq!(resp.headers()[ACCEPT_RANGES], "bytes");
    }
    assert_eq!(srv.stats()["storage"]["bytes_sent"], 0);
}

#[test]
fn range_requests_cover_the_edges() {
    let (_srv, full, indirect) = setup();
    for url in [&full, &indirect] {
        let cases: [(&str, u16, Option<&str>, &[u8]); 8] = [
            ("bytes=0-0", 206, Some("bytes 0-0/20"), b"0"),
            ("bytes=5-9", 206, Some("bytes 5-9/20"), b"56789"),
            ("bytes=15-", 206, Some("bytes 15-19/20"), b"fghij"),
            ("bytes=15-99", 206, Some("bytes 15-19/20"), b"fghij"),
            ("bytes=-3", 206, Some("bytes 17-19/20"), b"hij"),
            ("bytes=-50", 206, Some("bytes 0-19/20"), BODY),
            ("bytes=20-", 416, Some("bytes */20"), b""),
            ("bytes=9-2", 200, None, BODY),
        ];
        for (range, status, cr, body) in cases {
            let got = get_range(url, range);
            assert_eq!(got.0, status, "{range}");
            assert_eq!(got.1.as_deref(), cr, "{range}");
            if status != 416 {
                assert_eq!(got.2, body, "{range}");
            }
        }
    }
}

#[test]
fn wrong_hash_unknown_paths_and_deleted_files_are_404() {
    let srv = TestServer::default_server();
    let api = srv.client();
    let f = api.put_file(None, "gone.txt", b"bye");
    let id = f["id"].as_str().unwrap();
    let bad = format!("{}/media/files/{}/{id}", srv.origin, "0".repeat(40));
    assert_eq!(reqwest::blocking::get(bad).unwrap().status(), 404);
    let none = format!("{}/storage/no/such.txt", srv.origin);
    assert_eq!(reqwest::blocking::get(none).unwrap().status(), 404);
    // Trash: the indirect route (live files only) stops; the stored object stays in place.
    api.patch(&format!("/files/{id}/trash"));
    let indirect = f["indirect_url"].as_str().unwrap();
    assert_eq!(reqwest::blocking::get(indirect).unwrap().status(), 404);
    let full = f["full_url"].as_str().unwrap();
    assert_eq!(reqwest::blocking::get(full).unwrap().status(), 200);
    api.delete(&format!("/files/{id}"));
    assert_eq!(reqwest::blocking::get(full).unwrap().status(), 404);
}

#[test]
fn public_url_sets_the_origin_of_file_urls() {
    let srv = TestServer::start(
        common::ServerOptions::default().args(["--public-url", "https://media.example.test/"]),
    );
    let f = srv.client().put_file(None, "x.txt", b"x");
    assert_eq!(f["full_url"], "https://media.example.test/storage/x.txt");
    let indirect = f["indirect_url"].as_str().unwrap();
    assert!(
        indirect.starts_with("https://media.example.test/media/files/"),
        "{indirect}"
    );
}
