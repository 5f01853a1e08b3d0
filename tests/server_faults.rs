//! cloudify-server fault switches each do what they say: latency, failures (repeatable with
//! a seed), cut connections, stalls, bandwidth caps, and the rate limit. Timing checks are
//! lower bounds only, which the server guarantees by sleeping.

mod common;

use std::time::{Duration, Instant};

use common::{ServerOptions, TestServer};
use serde_json::json;

#[test]
fn latency_delays_api_calls_and_downloads_but_not_stats() {
    let srv = TestServer::start(ServerOptions::default().args(["--latency", "300ms"]));
    let api = srv.client();
    let t = Instant::now();
    assert_eq!(api.get("/folders").0, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    let f = api.put_file(None, "a.txt", b"abc");
    let t = Instant::now();
    reqwest::blocking::get(f["full_url"].as_str().unwrap())
        .unwrap()
        .bytes()
        .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
    srv.control(json!({"latency_ms": 0}));
    srv.control(json!({"latency_ms": 500}));
    let t = Instant::now();
    api.get("/files");
    assert!(t.elapsed() >= Duration::from_millis(500));
}

fn statuses(srv: &TestServer, n: usize) -> Vec<u16> {
    let api = srv.client();
    (0..n).map(|_| api.get("/folders").0).collect()
}

#[test]
fn fail_rate_answers_500_or_503_and_repeats_with_a_seed() {
    let always = TestServer::start(ServerOptions::default().args(["--fail-rate", "1"]));
    let api = always.client();
    for _ in 0..10 {
        let (status, body) = api.get("/folders");
        assert!(status == 500 || status == 503, "{status}");
        assert_eq!(body["error"], true);
        assert_eq!(body["data"], serde_json::Value::Null);
    }
    assert_eq!(
        always.stats()["api"]["list_folders"],
        10,
        "failed calls are counted"
    );

    let args = ["--fail-rate", "0.5", "--fault-seed", "7"];
    let a = TestServer::start(ServerOptions::default().args(args));
    let b = TestServer::start(ServerOptions::default().args(args));
    let (sa, sb) = (statuses(&a, 40), statuses(&b, 40));
    assert_eq!(sa, sb, "same seed, same faults");
    assert!(sa.contains(&200) && sa.iter().any(|s| *s >= 500), "{sa:?}");

    let ctl = TestServer::default_server();
    ctl.control(json!({"fail_rate": 1.0}));
    assert!(ctl.client().get("/folders").0 >= 500);
    ctl.control(json!({"fail_rate": 0.0}));
    assert_eq!(ctl.client().get("/folders").0, 200);
}

#[test]
fn drop_rate_cuts_downloads_and_uploads_midway() {
    // The file is stored by a well-behaved server, then served by one that cuts.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut first = TestServer::start(ServerOptions::default().data_dir(&data));
    let f = first.client().put_file(None, "a.txt", &[b'a'; 100_000]);
    let path = f["url"].as_str().unwrap().to_string();
    first.stop();
    let srv = TestServer::start(
        ServerOptions::default()
            .data_dir(&data)
            .args(["--drop-rate", "1"]),
    );
    let url_now = format!("{}/storage/{path}", srv.origin);
    // The cut comes in the middle of the body; the headers may travel in the same write as
    // its first part, so the client can see the break before or after the status line.
    let cut = reqwest::blocking::get(&url_now).and_then(|resp| {
        assert_eq!(resp.status(), 200);
        resp.bytes()
    });
    assert!(cut.is_err(), "the body must be cut short");
    let sent = srv.stats()["storage"]["bytes_sent"].as_u64().unwrap();
    assert!(sent < 100_000, "{sent}");

    let api = srv.client();
    let part = reqwest::blocking::multipart::Part::bytes(vec![b'u'; 200_000]).file_name("u.txt");
    let form = reqwest::blocking::multipart::Form::new().part("file", part);
    let result = api
        .request(reqwest::Method::POST, "/files")
        .multipart(form)
        .send()
        .and_then(|r| r.text());
    assert!(result.is_err(), "the upload must fail: {result:?}");
    assert_eq!(srv.stats()["api"]["upload"], 1, "the server is still up");
    let (_, listed) = api.get("/files");
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        1,
        "nothing stored by the cut upload"
    );
}

#[test]
fn stall_pauses_a_download_that_then_completes() {
    let srv = TestServer::start(ServerOptions::default().args(["--stall", "400ms"]));
    let f = srv.client().put_file(None, "s.txt", &[b's'; 50_000]);
    let t = Instant::now();
    let body = reqwest::blocking::get(f["full_url"].as_str().unwrap())
        .unwrap()
        .bytes()
        .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(400));
    assert_eq!(body.len(), 50_000);
}

#[test]
fn bandwidth_caps_a_download() {
    let srv = TestServer::start(ServerOptions::default().args(["--bandwidth", "64Ki"]));
    let f = srv.client().put_file(None, "b.txt", &[b'b'; 128 * 1024]);
    let t = Instant::now();
    let body = reqwest::blocking::get(f["full_url"].as_str().unwrap())
        .unwrap()
        .bytes()
        .unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(body.len(), 128 * 1024);
}

#[test]
fn rate_limit_answers_429_in_the_envelope() {
    let srv = TestServer::start(ServerOptions::default().args(["--rate-limit", "5"]));
    let api = srv.client();
    let resp = api
        .request(reqwest::Method::GET, "/folders")
        .send()
        .unwrap();
    assert_eq!(resp.headers()["x-ratelimit-limit"], "5");
    assert_eq!(resp.headers()["x-ratelimit-remaining"], "4");
    for _ in 0..4 {
        assert_eq!(api.get("/folders").0, 200);
    }
    let (status, body) = api.get("/folders");
    assert_eq!(status, 429);
    assert_eq!(
        body,
        json!({"error": true, "data": null, "message": "Too Many Attempts."})
    );
    // Downloads and the test endpoints are not API calls.
    assert_eq!(srv.stats()["api"]["total"], 6);
}
