//! cloudify-server uploads: names, slugs and suffixes, the two type checks, size limits,
//! private files, storage failures, a 50 MiB upload with flat server memory, and forms that
//! do not end.

mod common;

use common::{ServerOptions, TestServer};
use reqwest::blocking::multipart::{Form, Part};
use serde_json::json;

const PDF: &[u8] = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0";
const TYPE_MSG: &str = "The file type is not allowed. Please upload a valid file format.";

#[test]
fn stems_collide_across_extensions_and_with_trashed_files() {
    let srv = TestServer::default_server();
    let api = srv.client();
    let a = api.put_file(None, "a.txt", b"one");
    assert_eq!(
        (a["name"].as_str(), a["basename"].as_str()),
        (Some("a"), Some("a.txt"))
    );
    let b = api.put_file(None, "a.pdf", PDF);
    assert_eq!(b["name"], "a-1", "the extension is not compared");
    assert_eq!(b["basename"], "a.pdf", "the stored path is free");
    let c = api.put_file(None, "A.txt", b"two");
    assert_eq!(c["name"], "A-2");
    assert_eq!(c["basename"], "a-1.txt", "the path a.txt is taken");
    let (_, t) = api.patch(&format!("/files/{}/trash", a["id"].as_str().unwrap()));
    assert_eq!(t["error"], false);
    assert_eq!(
        api.put_file(None, "a.txt", b"3")["name"],
        "a-3",
        "trashed names stay reserved"
    );
}

#[test]
fn file_resource_fields_follow_the_api_page() {
    let srv = TestServer::default_server();
    let api = srv.client();
    let folder = api.mkdir("0", "My Docs");
    let fid = folder["id"].as_str().unwrap();
    let sub = api.mkdir(fid, "Sub Folder");
    let sid = sub["id"].as_str().unwrap();
    let f = api.put_file(Some(sid), "Report Été 2026.PDF", PDF);
    assert_eq!(f["name"], "Report Été 2026");
    assert_eq!(f["basename"], "report-ete-2026.pdf");
    assert_eq!(f["url"], "my-docs/sub-folder/report-ete-2026.pdf");
    assert_eq!(
        f["full_url"],
        format!(
            "{}/storage/my-docs/sub-folder/report-ete-2026.pdf",
            srv.origin
        )
    );
    assert_eq!(f["mime_type"], "application/pdf");
    assert_eq!(f["type"], "document");
    assert_eq!(f["folder_id"], sid);
    assert_eq!(f["alt"], "Report Été 2026");
    assert_eq!(f["size"], format!("{},00 B", PDF.len()));
    let id = f["id"].as_str().unwrap();
    let hash = hex::encode(<sha1::Sha1 as sha1::Digest>::digest(id.as_bytes()));
    assert_eq!(
        f["indirect_url"],
        format!("{}/media/files/{hash}/{id}", srv.origin)
    );
    let img = api.put_file(None, "pic.PNG", PNG);
    assert_eq!(
        (img["type"].as_str(), img["basename"].as_str()),
        (Some("image"), Some("pic.png"))
    );
    // Filenames keep only what follows the last slash or backslash.
    assert_eq!(api.put_file(None, "dir\\inner.txt", b"x")["name"], "inner");
    // Without an extension the sniffed one is used.
    let readme = api.put_file(None, "README", b"read me\n");
    assert_eq!(
        (readme["name"].as_str(), readme["basename"].as_str()),
        (Some("README"), Some("readme.txt"))
    );
    // Root uploads without folder_id answer the number 0; listings show "0".
    assert_eq!(readme["folder_id"], 0);
    let (_, listed) = api.get("/files");
    assert_eq!(listed["data"][0]["folder_id"], "0");
    // 1,024,000 bytes read "1.000,00 KB".
    let big = api.put_file(None, "big.txt", &vec![b'x'; 1_024_000]);
    assert_eq!(big["size"], "1.000,00 KB");
}

#[test]
fn type_checks_refuse_by_name_and_by_content() {
    let srv = TestServer::default_server();
    let api = srv.client();
    // Each check alone: a text body named .pdf passes both (text is an allowed type, pdf an
    // allowed name), as it does on the product.
    let cases: [(&str, &[u8]); 5] = [
        ("empty.txt", b""),
        ("data.txt", b"{\"a\": [1, 2]}"),
        ("prog.exe", b"plain text"),
        ("blob.txt", b"\x00\x01\x02\x03binary"),
        ("page.txt", b"<!DOCTYPE html><html></html>"),
    ];
    for (name, bytes) in cases {
        let (status, body) = api.upload(None, name, bytes.to_vec());
        assert_eq!(status, 200, "{name}");
        assert_eq!(
            body,
            json!({"error": true, "data": null, "message": TYPE_MSG}),
            "{name}"
        );
    }
    assert_eq!(api.get("/files").1["data"], json!([]), "nothing stored");
    let csv = api.put_file(None, "table.csv", b"a,b\n1,2\n");
    assert_eq!(csv["mime_type"], "text/csv");
}

#[test]
fn allowed_extensions_can_be_narrowed() {
    let srv = TestServer::start(ServerOptions::default().args(["--allowed-extensions", "txt"]));
    let api = srv.client();
    let (_, body) = api.upload(None, "a.pdf", PDF.to_vec());
    assert_eq!(body["message"], TYPE_MSG);
    api.put_file(None, "a.txt", b"ok");
}

#[test]
fn too_big_is_a_soft_error_and_over_the_cap_is_413() {
    let srv = TestServer::start(ServerOptions::default().args([
        "--max-upload",
        "1Ki",
        "--max-body",
        "64Ki",
    ]));
    let api = srv.client();
    api.put_file(None, "small.txt", &[b'a'; 1024]);
    let (status, body) = api.upload(None, "big.txt", vec![b'a'; 2048]);
    assert_eq!(status, 200);
    assert_eq!(body["error"], true);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("File is too big"),
        "{body}"
    );
    let (status, body) = api.upload(None, "huge.txt", vec![b'a'; 200 * 1024]);
    assert_eq!(status, 413);
    assert_eq!(body, json!({"message": "The POST data is too large."}));
    let names: Vec<&str> = Vec::new();
    let (_, listed) = api.get("/files");
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        1,
        "{names:?} {listed}"
    );
}

#[test]
fn upload_form_is_validated_before_the_key() {
    let srv = TestServer::default_server();
    let api = srv.client();
    let send = |form: Form| api.send(api.request(reqwest::Method::POST, "/files").multipart(form));
    let (status, body) = send(Form::new().text("folder_id", "0"));
    assert_eq!(status, 422);
    assert_eq!(body["errors"]["file"][0], "The file field is required.");
    let (status, body) = send(Form::new().text("file", "just text"));
    assert_eq!(status, 422);
    assert_eq!(body["errors"]["file"][0], "The file field must be a file.");
    let part = Part::bytes(b"x".to_vec()).file_name("x.txt");
    let (status, body) = send(Form::new().part("file", part).text("is_public", "maybe"));
    assert_eq!(status, 422, "{body}");
    let anon = srv.client_with_key(None);
    let (status, _) = anon.send(
        anon.request(reqwest::Method::POST, "/files")
            .multipart(Form::new().text("folder_id", "0")),
    );
    assert_eq!(status, 422);
    let (status, _) = anon.upload(None, "x.txt", b"x".to_vec());
    assert_eq!(status, 403);
    assert_eq!(api.get("/files").1["data"], json!([]));
}

#[test]
fn private_files_have_no_full_url_but_an_indirect_one() {
    let srv = TestServer::default_server();
    let api = srv.client();
    let part = Part::bytes(b"secret".to_vec()).file_name("s.txt");
    let form = Form::new().part("file", part).text("is_public", "0");
    let (status, body) = api.send(api.request(reqwest::Method::POST, "/files").multipart(form));
    assert_eq!(status, 200, "{body}");
    let f = &body["data"];
    assert_eq!(f["full_url"], serde_json::Value::Null);
    assert_eq!(f["thumb"], serde_json::Value::Null);
    let direct = format!("{}/storage/{}", srv.origin, f["url"].as_str().unwrap());
    assert_eq!(reqwest::blocking::get(direct).unwrap().status(), 404);
    let indirect = reqwest::blocking::get(f["indirect_url"].as_str().unwrap()).unwrap();
    assert_eq!(indirect.status(), 200);
    assert_eq!(indirect.text().unwrap(), "secret");
}

#[test]
fn path_field_creates_nested_folders() {
    let srv = TestServer::default_server();
    let api = srv.client();
    let part = Part::bytes(b"deep".to_vec()).file_name("c.txt");
    let form = Form::new().part("file", part).text("path", "a/b/c.txt");
    let (_, body) = api.send(api.request(reqwest::Method::POST, "/files").multipart(form));
    assert_eq!(body["data"]["url"], "a/b/c.txt", "{body}");
    let (_, root) = api.get("/folders");
    assert_eq!(root["data"][0]["name"], "a");
}

#[test]
fn storage_failures_store_nothing() {
    let srv = TestServer::default_server();
    let api = srv.client();
    srv.control(json!({"fail_next_uploads": 2}));
    for _ in 0..2 {
        let (status, body) = api.upload(None, "f.txt", b"x".to_vec());
        assert_eq!(status, 200);
        assert_eq!(body["error"], true);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("Unable to write"),
            "{body}"
        );
    }
    assert_eq!(api.get("/files").1["data"], json!([]));
    assert_eq!(
        api.put_file(None, "f.txt", b"x")["name"],
        "f",
        "failed uploads reserve nothing"
    );
    srv.control(json!({"fail_uploads": true}));
    assert_eq!(api.upload(None, "g.txt", b"x".to_vec()).1["error"], true);
    srv.control(json!({"fail_uploads": false}));
    api.put_file(None, "g.txt", b"x");

    let failing = TestServer::start(ServerOptions::default().arg("--fail-uploads"));
    let (_, body) = failing.client().upload(None, "h.txt", b"x".to_vec());
    assert_eq!(body["error"], true);
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_50_mib_upload_streams_through_flat_memory() {
    let srv = TestServer::default_server();
    let api = srv.client();
    api.put_file(None, "warm.txt", b"warm up the allocator");
    let before = rss_kib(srv.pid(), "VmRSS:");

    const LEN: usize = 50 << 20;
    let line = b"0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\n";
    let body: Vec<u8> = line.iter().copied().cycle().take(LEN).collect();
    let f = api.put_file(None, "big.txt", &body);
    let peak = rss_kib(srv.pid(), "VmHWM:");
    assert!(
        peak < before + 64 * 1024,
        "server memory grew from {before} KiB to a peak of {peak} KiB"
    );
    assert_eq!(f["size"], "50,00 MB");

    let resp = reqwest::blocking::get(f["full_url"].as_str().unwrap()).unwrap();
    assert_eq!(resp.content_length(), Some(LEN as u64));
    let got = resp.bytes().unwrap();
    assert!(got[..] == body[..], "downloaded bytes differ");
}

/// An upload sent with a chunked body (as the mount streams a file while it is written)
/// whose form does not end: the body stops before the closing boundary, cleanly or by a cut
/// connection. Nothing is stored; only a whole form is.
#[test]
fn an_upload_whose_form_does_not_end_stores_nothing() {
    use std::io::{Read, Write};

    let srv = TestServer::default_server();
    let addr = srv.origin.trim_start_matches("http://").to_string();
    let part = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
                 Content-Type: text/plain\r\n\r\n"
        .iter()
        .chain(b"partial content\n".repeat(1000).iter())
        .copied()
        .collect::<Vec<u8>>();
    // The request goes out in one write: the server may answer as soon as the form ends and
    // close the connection, and a later write of the chunked body's last line could then
    // fail (EPIPE).
    let send = |chunks: &[&[u8]], end: bool| -> String {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        let mut request = format!(
            "POST /api/v1/media/files HTTP/1.1\r\nHost: x\r\nX-API-KEY: {}\r\n\
             Accept: application/json\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            common::TEST_KEY
        )
        .into_bytes();
        for c in chunks {
            request.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            request.extend_from_slice(c);
            request.extend_from_slice(b"\r\n");
        }
        if end {
            request.extend_from_slice(b"0\r\n\r\n");
        }
        s.write_all(&request).unwrap();
        if !end {
            return String::new();
        }
        // What was read before an error (a reset after the answer) is kept in `answer`;
        // the assertions on it judge.
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    };
    let files = || srv.client().get("/files").1["data"].clone();

    let answer = send(&[&part], true);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(files(), json!([]));

    // Cut: the connection closes in the middle of the file part.
    send(&[&part], false);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while srv.log().matches("POST /api/v1/media/files 400").count() < 2 {
        assert!(std::time::Instant::now() < deadline, "{}", srv.log());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(files(), json!([]));

    // The same form, ended: stored.
    let answer = send(&[&part, b"\r\n--XyZ--\r\n"], true);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(files().as_array().unwrap().len(), 1);
}
