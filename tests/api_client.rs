//! The HTTP client against scripted servers: paging rules, error mapping, retries, and where
//! the API key goes. Each test runs its own tiny HTTP/1.1 server on a loopback port that
//! answers from a closure and records every request.

use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use cloudify_fs::api::{ApiError, Client, ClientConfig, File, Id, Remote, SizeHint};
use serde_json::{Value, json};

mod common;
use common::http::{Seen, read_request};

const KEY: &str = "0123456789ABCDEF0123456789ABCDEF01234567";

/// What the scripted server sends back.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send only this many body bytes, then keep the connection open without sending more.
    stall_after: Option<usize>,
    /// Close the connection without answering at all.
    hang_up: bool,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
            stall_after: None,
            hang_up: false,
        }
    }

    fn ok(data: Value) -> Reply {
        Reply::json(200, json!({"error": false, "data": data, "message": null}))
    }

    fn raw(status: u16, content_type: &str, body: &[u8]) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.to_vec(),
            stall_after: None,
            hang_up: false,
        }
    }

    fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// The scripted server; stops accepting and releases stalled connections when dropped.
struct Scripted {
    origin: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    /// Dropping the sender wakes connections that are holding a stalled response.
    release: Option<mpsc::Sender<()>>,
    port: u16,
}

impl Scripted {
    fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (release, released) = mpsc::channel::<()>();
        let released = Arc::new(Mutex::new(released));
        let handler: Arc<Handler> = Arc::new(handler);
        let (seen2, stop2) = (seen.clone(), stop.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (handler, seen, released) = (handler.clone(), seen2.clone(), released.clone());
                thread::spawn(move || serve(stream, &*handler, &seen, &released));
            }
        });
        Scripted {
            origin: format!("http://127.0.0.1:{port}"),
            seen,
            stop,
            release: Some(release),
            port,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }

    fn client(&self) -> Client {
        client_for(&self.origin, |_| {})
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.release.take();
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn client_for(base: &str, adjust: impl FnOnce(&mut ClientConfig)) -> Client {
    let mut config = ClientConfig::new(base, KEY);
    config.retries = 2;
    config.rate_per_minute = None;
    config.timeout = Duration::from_secs(20);
    adjust(&mut config);
    Client::new(config).expect("client")
}

fn serve(
    stream: TcpStream,
    handler: &Handler,
    seen: &Mutex<Vec<Seen>>,
    released: &Mutex<mpsc::Receiver<()>>,
) {
    let mut writer = stream.try_clone().expect("clone stream");
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        seen.lock().expect("seen").push(request.clone());
        let reply = handler(&request);
        if reply.hang_up {
            return;
        }
        let mut head = format!("HTTP/1.1 {} Scripted\r\n", reply.status);
        for (name, value) in &reply.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let has_length = reply
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
        if !has_length {
            head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
        }
        head.push_str("\r\n");
        let body: &[u8] = if request.method == "HEAD" {
            &[]
        } else {
            &reply.body[..reply
                .stall_after
                .unwrap_or(reply.body.len())
                .min(reply.body.len())]
        };
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(body).is_err() {
            return;
        }
        let _ = writer.flush();
        if reply.stall_after.is_some() {
            // Hold the connection open, silent, until the test is over.
            let _ = released
                .lock()
                .expect("release")
                .recv_timeout(Duration::from_secs(120));
            return;
        }
    }
}

fn folder_json(id: usize) -> Value {
    json!({"id": format!("d{id}"), "name": format!("Folder {id}"), "color": null,
           "created_at": "2026-02-04 15:26:17", "updated_at": "2026-02-04 15:26:17"})
}

fn file_json(id: usize, full_url: Option<&str>) -> Value {
    json!({"id": format!("f{id}"), "name": format!("file {id}"), "basename": format!("file-{id}.txt"),
           "url": format!("file-{id}.txt"), "full_url": full_url, "size": "1,00 KB",
           "folder_id": "0", "indirect_url": null, "mime_type": "text/plain"})
}

fn api_page(seen: &Seen) -> usize {
    seen.query()
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
}

fn page_of(total: usize, page: usize, per_page: usize) -> std::ops::Range<usize> {
    let start = ((page - 1) * per_page).min(total);
    start..(start + per_page).min(total)
}

// ---- paging ----

#[test]
fn listing_pages_until_a_short_page() {
    // 2026 flavour: 30 folders then 220 files, the union paged by 100.
    let server = Scripted::start(|seen| {
        let range = page_of(250, api_page(seen), 100);
        let folders: Vec<Value> = range.clone().filter(|i| *i < 30).map(folder_json).collect();
        let files: Vec<Value> = range
            .filter(|i| *i >= 30)
            .map(|i| file_json(i, None))
            .collect();
        Reply::ok(json!({"folders": folders, "files": files}))
    });
    let listing = server
        .client()
        .list_folder(&Id::new("abc"))
        .expect("listing");
    assert_eq!(listing.folders.len(), 30);
    assert_eq!(listing.files.len(), 220);
    assert_eq!(listing.files[0].size, Some(SizeHint::Approx(1024)));

    let seen = server.seen();
    assert_eq!(seen.len(), 3, "pages 1, 2 and the short page 3");
    for (n, request) in seen.iter().enumerate() {
        assert_eq!(request.method, "GET");
        assert_eq!(request.path(), "/api/v1/media/folders");
        let query = request.query();
        assert_eq!(query["folder_id"], "abc");
        assert_eq!(query["include_files"], "true");
        assert_eq!(query["per_page"], "100");
        assert_eq!(query["page"], (n + 1).to_string());
    }
}

#[test]
fn root_listing_omits_folder_id() {
    let server = Scripted::start(|_| Reply::ok(json!({"folders": [], "files": []})));
    let listing = server.client().list_folder(&Id::root()).expect("listing");
    assert!(listing.folders.is_empty() && listing.files.is_empty());
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert!(
        !seen[0].query().contains_key("folder_id"),
        "{}",
        seen[0].target
    );
}

#[test]
fn server_ignoring_page_is_read_once_and_files_come_from_media_files() {
    // 1.2.8: a plain array of all folders on every page, files only from /media/files.
    let server = Scripted::start(|seen| match seen.path() {
        "/api/v1/media/folders" => Reply::ok(Value::Array((0..120).map(folder_json).collect())),
        "/api/v1/media/files" => {
            Reply::ok(Value::Array((0..250).map(|i| file_json(i, None)).collect()))
        }
        _ => Reply::json(404, json!({"message": "no route"})),
    });
    let listing = server.client().list_folder(&Id::new("7")).expect("listing");
    assert_eq!(listing.folders.len(), 120);
    assert_eq!(listing.files.len(), 250);

    let paths: Vec<String> = server
        .seen()
        .iter()
        .map(|s| format!("{} page {}", s.path(), api_page(s)))
        .collect();
    assert_eq!(
        paths,
        [
            "/api/v1/media/folders page 1",
            "/api/v1/media/folders page 2",
            "/api/v1/media/files page 1",
            "/api/v1/media/files page 2",
        ]
    );
    let files_query = server.seen()[2].query();
    assert_eq!(files_query["folder_id"], "7");
    assert_eq!(files_query["per_page"], "100");
}

#[test]
fn never_ending_listing_is_cut_at_the_page_cap() {
    let server = Scripted::start(|seen| {
        let page = api_page(seen);
        let files: Vec<Value> = page_of(usize::MAX / 2, page, 100)
            .map(|i| file_json(i, None))
            .collect();
        Reply::ok(json!({"folders": [], "files": files}))
    });
    let client = client_for(&server.origin, |c| c.max_pages = 5);
    let listing = client.list_folder(&Id::root()).expect("listing");
    assert_eq!(listing.files.len(), 500);
    assert_eq!(server.seen().len(), 5);
}

#[test]
fn entries_without_id_are_skipped_and_numeric_ids_kept() {
    let server = Scripted::start(|_| {
        Reply::ok(
            json!({"folders": [{"name": "no id"}, {"id": 5, "name": "Five"}],
                         "files": [{"id": 0, "name": "zero", "size": 12, "folder_id": 0}]}),
        )
    });
    let listing = server.client().list_folder(&Id::root()).expect("listing");
    assert_eq!(listing.folders.len(), 1);
    assert_eq!(listing.folders[0].id, Id::new("5"));
    assert_eq!(listing.files[0].size, Some(SizeHint::Exact(12)));
    assert_eq!(listing.files[0].folder_id, Some(Id::root()));
}

// ---- headers and the key ----

#[test]
fn api_calls_carry_accept_and_key() {
    let server = Scripted::start(|_| Reply::ok(json!({"id": "x", "name": "X"})));
    let client = server.client();
    client.get_folder(&Id::new("x")).expect("folder");
    client.trash_folder(&Id::new("x")).expect("trash");
    client.delete_file(&Id::new("y")).expect("delete");
    for seen in server.seen() {
        assert_eq!(
            seen.header("accept"),
            Some("application/json"),
            "{}",
            seen.target
        );
        assert_eq!(seen.header("x-api-key"), Some(KEY), "{}", seen.target);
    }
    let targets: Vec<String> = server
        .seen()
        .iter()
        .map(|s| format!("{} {}", s.method, s.target))
        .collect();
    assert_eq!(
        targets,
        [
            "GET /api/v1/media/folders/x",
            "PATCH /api/v1/media/folders/x/trash",
            "DELETE /api/v1/media/files/y",
        ]
    );
}

#[test]
fn site_url_and_api_url_reach_the_same_endpoint() {
    let server = Scripted::start(|_| Reply::ok(json!({"folders": [], "files": []})));
    for base in [
        server.origin.clone(),
        format!("{}/", server.origin),
        format!("{}/api/v1", server.origin),
        format!("{}/api/v1/", server.origin),
    ] {
        client_for(&base, |_| {})
            .list_folder(&Id::root())
            .expect(&base);
    }
    assert!(
        server
            .seen()
            .iter()
            .all(|s| s.path() == "/api/v1/media/folders")
    );
}

#[test]
fn redirect_from_the_api_is_not_followed() {
    let elsewhere = Scripted::start(|_| Reply::ok(json!([])));
    let target = format!("{}/login", elsewhere.origin);
    let api =
        Scripted::start(move |_| Reply::raw(302, "text/html", b"").header("Location", &target));
    let error = api
        .client()
        .list_folder(&Id::root())
        .expect_err("a redirect is an error");
    assert!(matches!(error, ApiError::Protocol { .. }), "{error}");
    assert!(error.to_string().contains("Accept"), "{error}");
    assert_eq!(api.seen().len(), 1, "a redirect is not retried");
    assert!(elsewhere.seen().is_empty(), "the key went to another host");
}

#[test]
fn downloads_from_another_host_get_no_key() {
    let content: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let body = content.clone();
    let storage = Scripted::start(move |seen| {
        let range = seen.header("range").unwrap_or("").to_string();
        let start: usize = range
            .trim_start_matches("bytes=")
            .split('-')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Reply::raw(206, "application/octet-stream", &body[start..])
            .header("Content-Range", &format!("bytes {start}-999/1000"))
    });
    let api = Scripted::start(|_| Reply::ok(json!([])));
    let file = file_with_url(&format!("{}/storage/a.bin?sig=secret", storage.origin));

    let mut download = api.client().download(&file, 600, None).expect("download");
    assert_eq!(download.start, 600);
    assert_eq!(download.total_len, Some(1000));
    let mut got = Vec::new();
    download.body.read_to_end(&mut got).expect("body");
    assert_eq!(got, content[600..]);

    let seen = storage.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("range"), Some("bytes=600-"));
    assert_eq!(seen[0].header("x-api-key"), None);
    assert!(api.seen().is_empty());
}

#[test]
fn storage_redirects_are_followed_without_key() {
    let cdn = Scripted::start(|_| Reply::raw(200, "text/plain", b"hello"));
    let target = format!("{}/real", cdn.origin);
    let site =
        Scripted::start(move |_| Reply::raw(302, "text/plain", b"").header("Location", &target));
    let file = file_with_url(&format!("{}/media/files/x/y", site.origin));
    let mut download = site.client().download(&file, 0, Some(5)).expect("download");
    let mut got = String::new();
    download.body.read_to_string(&mut got).expect("body");
    assert_eq!(got, "hello");
    for seen in site.seen().iter().chain(cdn.seen().iter()) {
        assert_eq!(seen.header("x-api-key"), None, "{}", seen.target);
    }
    assert_eq!(cdn.seen()[0].header("range"), Some("bytes=0-4"));
}

fn file_with_url(url: &str) -> File {
    serde_json::from_value(json!({"id": "f1", "name": "a", "basename": "a.bin",
                                  "full_url": url, "indirect_url": null}))
    .expect("file")
}

// ---- downloads ----

#[test]
fn storage_ignoring_range_sends_the_whole_file_from_zero() {
    let storage = Scripted::start(|_| Reply::raw(200, "text/plain", b"0123456789"));
    let file = file_with_url(&format!("{}/x.txt", storage.origin));
    let mut download = storage.client().download(&file, 4, None).expect("download");
    assert_eq!(download.start, 0);
    assert_eq!(download.total_len, Some(10));
    let mut got = Vec::new();
    download.body.read_to_end(&mut got).expect("body");
    assert_eq!(got, b"0123456789");
}

#[test]
fn range_past_the_end_is_an_empty_body() {
    let storage = Scripted::start(|_| {
        Reply::raw(416, "text/plain", b"").header("Content-Range", "bytes */10")
    });
    let file = file_with_url(&format!("{}/x.txt", storage.origin));
    let mut download = storage
        .client()
        .download(&file, 10, None)
        .expect("download");
    assert_eq!(download.start, 10);
    assert_eq!(download.total_len, Some(10));
    let mut got = Vec::new();
    download.body.read_to_end(&mut got).expect("body");
    assert!(got.is_empty());
}

#[test]
fn a_stalled_download_fails_instead_of_hanging() {
    let storage = Scripted::start(|_| {
        let mut reply = Reply::raw(200, "application/octet-stream", &[7u8; 100_000]);
        reply.stall_after = Some(10_000);
        reply
    });
    let file = file_with_url(&format!("{}/big.bin", storage.origin));
    let client = client_for(&storage.origin, |c| c.timeout = Duration::from_secs(2));
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let result = client
            .download(&file, 0, None)
            .map(|mut d| {
                let mut sink = Vec::new();
                let read = d.body.read_to_end(&mut sink);
                (read.is_err(), sink.len())
            })
            .map_err(|e| e.to_string());
        let _ = tx.send(result);
    });
    let (failed, got) = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the read returned")
        .expect("the download started");
    assert!(failed, "a stalled body must end in an error");
    assert_eq!(got, 10_000);
}

#[test]
fn content_length_from_head_or_a_one_byte_range() {
    let storage = Scripted::start(|seen| match (seen.method.as_str(), seen.path()) {
        ("HEAD", "/head-ok") => Reply::raw(200, "text/plain", &[0; 1234]),
        ("HEAD", _) => Reply::raw(405, "text/plain", b""),
        ("GET", _) => Reply::raw(206, "text/plain", b"x").header("Content-Range", "bytes 0-0/4321"),
        _ => Reply::raw(500, "text/plain", b""),
    });
    let client = storage.client();
    let head_ok = file_with_url(&format!("{}/head-ok", storage.origin));
    assert_eq!(client.content_length(&head_ok).expect("length"), Some(1234));
    let no_head = file_with_url(&format!("{}/no-head", storage.origin));
    assert_eq!(client.content_length(&no_head).expect("length"), Some(4321));
    assert!(
        storage
            .seen()
            .iter()
            .all(|s| s.header("x-api-key").is_none())
    );
}

// ---- errors ----

fn error_for(reply: impl Fn() -> Reply + Send + Sync + 'static) -> (ApiError, usize) {
    let server = Scripted::start(move |_| reply());
    let error = server
        .client()
        .get_folder(&Id::new("x"))
        .expect_err("an error");
    assert!(!error.to_string().contains(KEY));
    assert!(!format!("{error:?}").contains(KEY));
    (error, server.seen().len())
}

#[test]
fn statuses_map_to_error_kinds() {
    let (e, n) = error_for(|| Reply::json(401, json!({"message": "Unauthenticated."})));
    assert!(
        matches!(e, ApiError::Unauthorized { status: 401, .. }),
        "{e}"
    );
    assert_eq!(n, 1);
    let (e, _) = error_for(|| Reply::json(403, json!({"message": "This action is unauthorized."})));
    assert!(
        matches!(e, ApiError::Unauthorized { status: 403, .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains("This action is unauthorized."),
        "{e}"
    );
    let (e, n) = error_for(|| Reply::raw(404, "text/html", b"<html>Not Found</html>"));
    assert!(matches!(e, ApiError::NotFound { .. }), "{e}");
    assert_eq!(n, 1);
    let (e, _) = error_for(|| {
        Reply::json(
            422,
            json!({"message": "The name field is required.",
                                "errors": {"name": ["The name field is required."]}}),
        )
    });
    assert!(matches!(e, ApiError::Invalid { .. }), "{e}");
    assert!(e.to_string().contains("The name field is required."), "{e}");
    let (e, _) = error_for(|| Reply::json(413, json!({"message": "The POST data is too large."})));
    assert!(matches!(e, ApiError::TooLarge { .. }), "{e}");
}

#[test]
fn error_context_names_the_call_without_the_key() {
    let (e, _) = error_for(|| Reply::json(404, json!({"message": "No query results"})));
    assert_eq!(e.context(), "GET /media/folders/x");
    assert!(!e.context().contains("127.0.0.1"));
}

#[test]
fn soft_errors_with_http_200_are_classified() {
    let refusal = |message: &'static str| {
        move || {
            Reply::json(
                200,
                json!({"error": true, "data": null, "message": message}),
            )
        }
    };
    let (e, n) = error_for(refusal(
        "The file type is not allowed. Please upload a valid file format.",
    ));
    assert!(matches!(e, ApiError::TypeNotAllowed { .. }), "{e}");
    assert_eq!(n, 1, "a refusal is not retried");
    let (e, _) = error_for(refusal("File is too big. Max file upload is 2 MB"));
    assert!(matches!(e, ApiError::TooLarge { .. }), "{e}");
    let (e, _) = error_for(refusal("Error when deleting selected item(s)"));
    assert!(matches!(e, ApiError::Refused { .. }), "{e}");
}

#[test]
fn answers_that_are_not_the_api_are_protocol_errors() {
    let (e, _) = error_for(|| Reply::raw(200, "text/html", b"<!DOCTYPE html><html></html>"));
    assert!(matches!(e, ApiError::Protocol { .. }), "{e}");
    assert!(e.to_string().contains("not JSON"), "{e}");
    let (e, _) = error_for(|| Reply::json(200, json!({"hello": "world"})));
    assert!(matches!(e, ApiError::Protocol { .. }), "{e}");
    let (e, _) = error_for(|| Reply::ok(json!("a string")));
    assert!(matches!(e, ApiError::Protocol { .. }), "{e}");
}

#[test]
fn server_errors_are_retried_then_reported() {
    let (e, n) = error_for(|| Reply::json(500, json!({"message": "Server Error"})));
    assert!(matches!(e, ApiError::Server { status: 500, .. }), "{e}");
    assert!(e.is_transient());
    assert_eq!(n, 3, "one try and two retries");
}

#[test]
fn rate_limit_is_retried_then_reported() {
    let (e, n) = error_for(|| {
        Reply::json(429, json!({"error": true, "message": "Too Many Attempts."}))
            .header("Retry-After", "0")
    });
    assert!(matches!(e, ApiError::RateLimited { .. }), "{e}");
    assert_eq!(n, 3);
}

#[test]
fn retry_after_is_honoured_and_the_call_then_succeeds() {
    for retry_after in ["1", "Sun, 06 Nov 1994 08:49:37 GMT"] {
        let calls = Arc::new(Mutex::new(0));
        let counter = calls.clone();
        let server = Scripted::start(move |_| {
            let mut calls = counter.lock().expect("calls");
            *calls += 1;
            if *calls == 1 {
                Reply::json(429, json!({"message": "Too Many Attempts."}))
                    .header("Retry-After", retry_after)
            } else {
                Reply::ok(json!({"id": "x", "name": "X"}))
            }
        });
        let folder = server
            .client()
            .get_folder(&Id::new("x"))
            .expect(retry_after);
        assert_eq!(folder.name, "X");
        assert_eq!(server.seen().len(), 2);
    }
}

#[test]
fn a_long_retry_after_is_not_waited_for() {
    let (e, n) = error_for(|| {
        Reply::json(429, json!({"message": "Too Many Attempts."})).header("Retry-After", "3600")
    });
    assert!(matches!(e, ApiError::RateLimited { .. }), "{e}");
    assert_eq!(n, 1);
}

#[test]
fn unreachable_server_is_a_network_error() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let client = client_for(&format!("http://127.0.0.1:{port}"), |c| c.retries = 1);
    let error = client
        .list_folder(&Id::root())
        .expect_err("nothing listens");
    assert!(matches!(error, ApiError::Network { .. }), "{error}");
    assert!(!error.to_string().contains(KEY));
}

// ---- uploads and creates ----

fn upload_fixture() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("staged-upload");
    std::fs::write(&path, b"JPEGDATA").expect("write");
    (dir, path)
}

#[test]
fn upload_sends_the_file_the_name_and_the_folder() {
    let server = Scripted::start(|_| {
        Reply::ok(
            json!({"id": "n1", "name": "photo-1", "basename": "photo-1.jpg",
                         "size": "8,00 B", "folder_id": 0}),
        )
    });
    let (_dir, path) = upload_fixture();
    let file = server
        .client()
        .upload_file(&Id::new("d9"), "photo.jpg", &path)
        .expect("upload");
    assert_eq!(file.name, "photo-1");
    assert_eq!(file.folder_id, Some(Id::root()));

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path(), "/api/v1/media/files");
    assert_eq!(seen[0].header("x-api-key"), Some(KEY));
    let body = String::from_utf8_lossy(&seen[0].body);
    assert!(body.contains("name=\"folder_id\"\r\n\r\nd9\r\n"), "{body}");
    assert!(
        body.contains("name=\"file\"; filename=\"photo.jpg\""),
        "{body}"
    );
    assert!(body.contains("Content-Type: image/jpeg"), "{body}");
    assert!(body.contains("JPEGDATA"), "{body}");
}

#[test]
fn upload_is_not_repeated_after_an_ambiguous_failure() {
    let server = Scripted::start(|_| Reply::json(500, json!({"message": "Server Error"})));
    let (_dir, path) = upload_fixture();
    let error = server
        .client()
        .upload_file(&Id::root(), "a.jpg", &path)
        .expect_err("500");
    assert!(matches!(error, ApiError::Server { .. }), "{error}");
    assert_eq!(server.seen().len(), 1);

    let hang_up = Scripted::start(|_| {
        let mut reply = Reply::raw(200, "text/plain", b"");
        reply.hang_up = true;
        reply
    });
    let error = hang_up
        .client()
        .upload_file(&Id::root(), "a.jpg", &path)
        .expect_err("no answer");
    assert!(matches!(error, ApiError::Network { .. }), "{error}");
    assert_eq!(
        hang_up.seen().len(),
        1,
        "the upload may have been processed"
    );
}

#[test]
fn upload_is_repeated_when_the_server_did_not_process_it() {
    let calls = Arc::new(Mutex::new(0));
    let counter = calls.clone();
    let server = Scripted::start(move |_| {
        let mut calls = counter.lock().expect("calls");
        *calls += 1;
        match *calls {
            1 => Reply::json(503, json!({"message": "Service Unavailable"})),
            2 => Reply::json(429, json!({"message": "Too Many Attempts."}))
                .header("Retry-After", "0"),
            _ => Reply::ok(json!({"id": "n1", "name": "a"})),
        }
    });
    let (_dir, path) = upload_fixture();
    let file = server
        .client()
        .upload_file(&Id::root(), "a.jpg", &path)
        .expect("third time");
    assert_eq!(file.id, Id::new("n1"));
    assert_eq!(server.seen().len(), 3);
    assert!(
        server
            .seen()
            .iter()
            .all(|s| String::from_utf8_lossy(&s.body).contains("JPEGDATA"))
    );
}

/// The bytes of the `file` part of a multipart body, up to the next boundary.
fn file_part(body: &[u8]) -> &[u8] {
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let header = find(body, b"name=\"file\"").expect("file part");
    let start = header + find(&body[header..], b"\r\n\r\n").expect("part head") + 4;
    let boundary = format!("\r\n--{}", multipart_boundary(body));
    let end = start + find(&body[start..], boundary.as_bytes()).expect("part end");
    &body[start..end]
}

fn multipart_boundary(body: &[u8]) -> String {
    let first = body.split(|&b| b == b'\r').next().expect("first line");
    String::from_utf8_lossy(&first[2..]).into_owned()
}

#[test]
fn uploads_from_several_threads_at_once_send_each_file_whole() {
    let server = Scripted::start(|_| Reply::ok(json!({"id": "n1", "name": "a"})));
    let dir = tempfile::tempdir().expect("temp dir");
    let client = server.client();
    // Several chunks and a partial one, different bytes in each file.
    let len = 5 * 1024 * 1024 / 2 + 123;
    let contents: Vec<Vec<u8>> = (0..4u8)
        .map(|n| {
            (0..len)
                .map(|i| (i % 251) as u8 ^ n.wrapping_mul(77))
                .collect()
        })
        .collect();
    thread::scope(|scope| {
        for (n, content) in contents.iter().enumerate() {
            let path = dir.path().join(format!("staged-{n}"));
            std::fs::write(&path, content).expect("write");
            let client = client.clone();
            scope.spawn(move || {
                client
                    .upload_file(&Id::new(format!("d{n}")), "big.bin", &path)
                    .expect("upload")
            });
        }
    });
    let seen = server.seen();
    assert_eq!(seen.len(), 4);
    for request in &seen {
        assert_eq!(request.header("x-api-key"), Some(KEY));
        assert_eq!(request.header("accept"), Some("application/json"));
        assert!(
            request.header("content-length").is_some(),
            "{:?}",
            request.headers
        );
        let body = String::from_utf8_lossy(&request.body[..300]);
        let n: usize = body
            .split("name=\"folder_id\"\r\n\r\nd")
            .nth(1)
            .and_then(|rest| rest.get(..1))
            .and_then(|digit| digit.parse().ok())
            .expect("folder id");
        assert!(
            file_part(&request.body) == contents[n].as_slice(),
            "file {n}"
        );
    }
}

#[test]
fn upload_of_a_missing_local_file_is_a_local_error() {
    let server = Scripted::start(|_| Reply::ok(json!({})));
    let error = server
        .client()
        .upload_file(&Id::root(), "a.jpg", std::path::Path::new("/nonexistent/x"))
        .expect_err("missing");
    assert!(matches!(error, ApiError::Local { .. }), "{error}");
    assert!(server.seen().is_empty());
}

#[test]
fn create_folder_posts_name_and_parent_and_returns_the_server_name() {
    let server = Scripted::start(|_| {
        Reply::ok(json!({"id": "n2", "name": "Docs-1", "color": null,
                         "created_at": "2026-02-04 15:26:17", "updated_at": "2026-02-04 15:26:17"}))
    });
    let folder = server
        .client()
        .create_folder(&Id::new("p"), "Docs")
        .expect("create");
    assert_eq!(folder.name, "Docs-1");
    let seen = server.seen();
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path(), "/api/v1/media/folders");
    let body: Value = serde_json::from_slice(&seen[0].body).expect("JSON body");
    assert_eq!(body, json!({"name": "Docs", "parent_id": "p"}));
}

#[test]
fn trash_refused_after_a_retry_counts_as_done() {
    let calls = Arc::new(Mutex::new(0));
    let counter = calls.clone();
    let server = Scripted::start(move |_| {
        let mut calls = counter.lock().expect("calls");
        *calls += 1;
        if *calls == 1 {
            Reply::json(502, json!({"message": "Bad Gateway"}))
        } else {
            Reply::json(
                200,
                json!({"error": true, "data": null,
                                    "message": "Error when deleting selected item(s)"}),
            )
        }
    });
    server
        .client()
        .trash_file(&Id::new("f"))
        .expect("trashed by the first try");
    let once = Scripted::start(|_| {
        Reply::json(
            200,
            json!({"error": true, "message": "Error when deleting selected item(s)"}),
        )
    });
    let error = once
        .client()
        .trash_file(&Id::new("f"))
        .expect_err("refused");
    assert!(matches!(error, ApiError::Refused { .. }), "{error}");
}

// ---- what the server says goes into errors ----

#[test]
fn server_messages_quoting_the_key_are_redacted_and_bounded() {
    // Laravel in debug mode answers with the SQL of the key lookup, key included, in any case.
    let echo = |status: u16, soft: bool| {
        move |seen: &Seen| {
            let key = seen.header("x-api-key").unwrap_or("").to_string();
            let message = format!(
                "SQLSTATE[HY000]: General error (SQL: select * from `api_keys` where `token` = \
                 {key} or `token` = {} limit 1){}",
                key.to_lowercase(),
                " trace".repeat(200)
            );
            let mut body = json!({"message": message,
                                  "exception": "Illuminate\\Database\\QueryException"});
            if soft {
                body["error"] = json!(true);
            }
            Reply::json(status, body)
        }
    };
    for (status, soft) in [(500, false), (422, false), (200, true)] {
        let server = Scripted::start(echo(status, soft));
        let error = server
            .client()
            .get_folder(&Id::new("x"))
            .expect_err("an error");
        for shown in [error.to_string(), format!("{error:?}")] {
            let lower = shown.to_lowercase();
            assert!(!lower.contains(&KEY.to_lowercase()), "{status}: {shown}");
            assert!(shown.contains("`token` = <key>"), "{status}: {shown}");
        }
        let message = match &error {
            ApiError::Server { message, .. }
            | ApiError::Invalid { message, .. }
            | ApiError::Refused { message, .. } => message.clone(),
            other => panic!("{status}: unexpected kind {other}"),
        };
        assert!(message.len() <= 500, "{status}: {} bytes", message.len());
    }
}

#[test]
fn a_listing_that_pages_forever_stops_at_its_time_limit() {
    assert_eq!(
        ClientConfig::new("http://127.0.0.1:1", KEY).max_pages,
        1_000,
        "100,000 entries at most"
    );
    // Every page is full and new; each takes a while, so the page cap (1,000 pages, 25 s
    // or more) is out of reach and only the limit of ten times the timeout (10 s) ends it.
    let server = Scripted::start(|seen| {
        thread::sleep(Duration::from_millis(25));
        let files: Vec<Value> = page_of(usize::MAX / 2, api_page(seen), 100)
            .map(|i| file_json(i, None))
            .collect();
        Reply::ok(json!({"folders": [], "files": files}))
    });
    let client = client_for(&server.origin, |c| c.timeout = Duration::from_secs(1));
    let listing = client.list_folder(&Id::root()).expect("a cut listing");
    let pages = server.seen().len();
    assert!(pages < 1_000, "{pages} pages");
    assert_eq!(listing.files.len(), pages * 100);
}

#[test]
fn an_oversized_api_answer_is_a_protocol_error_without_reading_it() {
    let (e, n) = error_for(|| {
        Reply::ok(json!({"id": "x", "name": "x"})).header("Content-Length", "104857600")
    });
    assert!(matches!(e, ApiError::Protocol { .. }), "{e}");
    assert!(e.to_string().contains("larger than 64 MiB"), "{e}");
    assert_eq!(n, 1, "not retried");
}

#[test]
fn an_authorisation_refusal_with_http_200_is_unauthorized() {
    let (e, n) = error_for(|| {
        Reply::json(
            200,
            json!({"error": true, "data": null, "message": "This action is unauthorized."}),
        )
    });
    assert!(
        matches!(e, ApiError::Unauthorized { status: 200, .. }),
        "{e}"
    );
    assert_eq!(n, 1, "not retried");
}

#[test]
fn a_request_timeout_answer_is_retried_like_a_server_error() {
    let (e, n) = error_for(|| Reply::json(408, json!({"message": "Request Timeout"})));
    assert!(matches!(e, ApiError::Server { status: 408, .. }), "{e}");
    assert!(e.is_transient());
    assert_eq!(n, 3, "one try and two retries");
}

// ---- uploads while written ----

#[test]
fn a_streamed_upload_sends_the_content_as_it_comes() {
    let server = Scripted::start(|_| {
        Reply::ok(json!({"id": "n1", "name": "big", "basename": "big.zip", "folder_id": "d9"}))
    });
    let content: Vec<u8> = (0..3 * 1024 * 1024 + 77).map(|i| (i % 251) as u8).collect();
    let mut upload = server
        .client()
        .start_upload(&Id::new("d9"), "big.zip")
        .expect("the client streams uploads");
    // Small writes are gathered into larger pieces, large ones go as they come.
    let (small, large) = content.split_at(100_000);
    for piece in small.chunks(1000).chain(large.chunks(1 << 20)) {
        upload
            .send(bytes::Bytes::copy_from_slice(piece))
            .expect("send");
    }
    let file = upload.finish().expect("stored");
    assert_eq!(file.id, Id::new("n1"));

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path(), "/api/v1/media/files");
    assert_eq!(seen[0].header("x-api-key"), Some(KEY));
    assert_eq!(seen[0].header("transfer-encoding"), Some("chunked"));
    let body = String::from_utf8_lossy(&seen[0].body);
    assert!(
        body.contains("name=\"folder_id\"\r\n\r\nd9\r\n"),
        "{body:.300}"
    );
    assert!(
        body.contains("name=\"file\"; filename=\"big.zip\""),
        "{body:.300}"
    );
    assert!(
        body.contains("Content-Type: application/zip"),
        "{body:.300}"
    );
    assert!(
        file_part(&seen[0].body) == &content[..],
        "the file part differs"
    );
}

/// Polls `done` until it holds; panics after a minute.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "waited a minute for {what}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// A streamed upload dropped before `finish` is cut off: cloudify-server gets a form that
/// never ends and stores nothing. A finished one is stored whole.
#[test]
fn a_dropped_streamed_upload_stores_nothing() {
    let srv = common::TestServer::default_server();
    let client = client_for(&srv.origin, |c| c.api_key = common::TEST_KEY.to_string());
    let content: Vec<u8> = b"PK\x03\x04"
        .iter()
        .copied()
        .chain((0..2 * 1024 * 1024).map(|i| (i % 251) as u8))
        .collect();

    let mut upload = client
        .start_upload(&Id::root(), "cut.zip")
        .expect("streams");
    upload
        .send(bytes::Bytes::copy_from_slice(&content))
        .expect("send");
    wait_until("the server to get the upload", || {
        srv.stats()["api"]["upload"] == 1
    });
    drop(upload);
    wait_until("the server to end the cut upload", || {
        srv.log().contains("access: POST /api/v1/media/files ")
    });
    let listing = client.list_folder(&Id::root()).expect("listing");
    assert!(listing.files.is_empty(), "{:?}", listing.files);

    let mut upload = client
        .start_upload(&Id::root(), "whole.zip")
        .expect("streams");
    for piece in content.chunks(300_000) {
        upload
            .send(bytes::Bytes::copy_from_slice(piece))
            .expect("send");
    }
    let file = upload.finish().expect("stored");
    assert_eq!(file.name, "whole");
    let mut body = Vec::new();
    let mut download = client.download(&file, 0, None).expect("download");
    download.body.read_to_end(&mut body).expect("read");
    assert!(body == content, "the stored bytes differ");
    assert_eq!(
        client
            .list_folder(&Id::root())
            .expect("listing")
            .files
            .len(),
        1
    );
}
