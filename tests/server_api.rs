//! cloudify-server against the API page: envelope, folder names and suffixes, error shapes
//! and codes, trash and delete semantics, the `Accept` rule, counters and the access log.

mod common;

use common::{ServerOptions, TEST_KEY, TestServer};
use serde_json::json;

#[test]
fn create_folder_answers_envelope_with_folder_resource() {
    let srv = TestServer::default_server();
    let api = srv.client();
    let (status, body) = api.post_json("/folders", json!({"name": "  Docs ", "color": "#ff0000"}));
    assert_eq!(status, 200);
    assert_eq!(body["error"], false);
    assert_eq!(body["message"], "Folder created successfully!");
    let data = &body["data"];
    assert_eq!(data["name"], "Docs", "names are trimmed");
    assert_eq!(data["color"], "#ff0000");
    let mut keys: Vec<&str> = data
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["color", "created_at", "id", "name", "updated_at"]);
    assert_eq!(data["id"].as_str().unwrap().len(), 36, "UUID ids");
    let date = data["created_at"].as_str().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(date, "%Y-%m-%d %H:%M:%S").is_ok(),
        "naive date: {date}"
    );
}

#[test]
fn folder_names_are_suffixed_against_live_and_trashed_siblings() {
    let srv = TestServer::default_server();
    let api = srv.client();
    let docs = api.mkdir("0", "Docs");
    assert_eq!(api.mkdir("0", "docs")["name"], "docs-1", "case-insensitive");
    assert_eq!(
        api.mkdir("0", "DÒCS")["name"],
        "DÒCS-2",
        "accent-insensitive"
    );
    let (status, _) = api.patch(&format!("/folders/{}/trash", docs["id"].as_str().unwrap()));
    assert_eq!(status, 200);
    assert_eq!(
        api.mkdir("0", "Docs")["name"],
        "Docs-3",
        "trashed names stay reserved"
    );
    // Siblings only: the same name elsewhere is free.
    let other = api.mkdir("0", "Other");
    assert_eq!(
        api.mkdir(other["id"].as_str().unwrap(), "Docs")["name"],
        "Docs"
    );
    // After a permanent delete the name is free again.
    let (status, _) = api.delete(&format!("/folders/{}", docs["id"].as_str().unwrap()));
    assert_eq!(status, 200);
    assert_eq!(api.mkdir("0", "Docs")["name"], "Docs");
}

#[test]
fn folder_names_outside_the_rule_get_422() {
    let srv = TestServer::default_server();
    let api = srv.client();
    for bad in ["a.b", "a/b", "(x)", "it's", "a&b", "a+b", "😀", "e\u{301}"] {
        let (status, body) = api.post_json("/folders", json!({ "name": bad }));
        assert_eq!(status, 422, "{bad:?}: {body}");
        assert_eq!(body["message"], "The folder name has invalid character(s).");
        assert_eq!(
            body["errors"]["name"][0],
            "The folder name has invalid character(s)."
        );
    }
    let (status, body) = api.post_json("/folders", json!({ "name": "   " }));
    assert_eq!(status, 422);
    assert_eq!(body["errors"]["name"][0], "The name field is required.");
    let (status, body) = api.post_json("/folders", json!({"name": "", "color": "red"}));
    assert_eq!(status, 422);
    assert_eq!(
        body["message"],
        "The name field is required. (and 1 more error)"
    );
    assert!(body["errors"]["color"].is_array());
    for ok in ["Über Straße", "a_b-c 12", "日本"] {
        assert_eq!(api.mkdir("0", ok)["name"], ok);
    }
}

#[test]
fn validation_runs_before_the_key_check() {
    let srv = TestServer::default_server();
    let anon = srv.client_with_key(None);
    let (status, _) = anon.post_json("/folders", json!({"name": "a.b"}));
    assert_eq!(status, 422);
    let (status, body) = anon.post_json("/folders", json!({"name": "fine"}));
    assert_eq!(status, 403);
    assert_eq!(body, json!({"message": "This action is unauthorized."}));
    let (status, _) = anon.post_json("/folders/deletes", json!({"folders": [1]}));
    assert_eq!(status, 422);
}

#[test]
fn keys_are_checked_case_insensitively_with_abilities() {
    let srv = TestServer::start(
        ServerOptions::default()
            .arg("--key")
            .arg("READER=list_media_folders,list_media_files"),
    );
    let lower = srv.client_with_key(Some(&TEST_KEY.to_lowercase()));
    assert_eq!(lower.get("/folders").0, 200);
    let wrong = srv.client_with_key(Some("NOPE"));
    assert_eq!(wrong.get("/folders").0, 403);
    assert_eq!(srv.client_with_key(None).get("/files").0, 403);
    let reader = srv.client_with_key(Some("reader"));
    assert_eq!(reader.get("/folders").0, 200);
    assert_eq!(reader.get("/files").0, 200);
    let (status, body) = reader.post_json("/folders", json!({"name": "x"}));
    assert_eq!(
        (status, body["message"].as_str()),
        (403, Some("This action is unauthorized."))
    );
    assert_eq!(reader.delete("/files/whatever").0, 403);
}

#[test]
fn revoked_key_is_refused_at_once() {
    let srv = TestServer::default_server();
    let api = srv.client();
    assert_eq!(api.get("/folders").0, 200);
    srv.control(json!({ "revoke_key": TEST_KEY }));
    assert_eq!(api.get("/folders").0, 403);
}

#[test]
fn auth_status_401_variant() {
    let srv = TestServer::start(ServerOptions::default().args(["--auth-status", "401"]));
    assert_eq!(srv.client_with_key(Some("bad")).get("/folders").0, 401);
}

#[test]
fn get_folder_shows_files_and_404s_for_missing_or_trashed() {
    let srv = TestServer::default_server();
    let api = srv.client();
    let f = api.mkdir("0", "Box");
    let id = f["id"].as_str().unwrap();
    api.put_file(Some(id), "b.txt", b"bee");
    api.put_file(Some(id), "A.txt", b"ay");
    let (status, body) = api.get(&format!("/folders/{id}"));
    assert_eq!(status, 200);
    assert_eq!(body["data"]["name"], "Box");
    let names: Vec<&str> = body["data"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["A", "b"]);

    let (status, body) = api.get("/folders/00000000-0000-0000-0000-000000000000");
    assert_eq!(status, 404);
    assert!(body["message"].as_str().unwrap().contains("MediaFolder"));
    api.patch(&format!("/folders/{id}/trash"));
    assert_eq!(api.get(&format!("/folders/{id}")).0, 404);
}

#[test]
fn trash_hides_the_whole_subtree() {
    let srv = TestServer::default_server();
    let api = srv.client();
    let top = api.mkdir("0", "Top");
    let top_id = top["id"].as_str().unwrap();
    let sub = api.mkdir(top_id, "Sub");
    let sub_id = sub["id"].as_str().unwrap();
    let file = api.put_file(Some(sub_id), "deep.txt", b"deep");
    let (status, body) = api.patch(&format!("/folders/{top_id}/trash"));
    assert_eq!(status, 200);
    assert_eq!(
        body["message"],
        "Moved selected item(s) to trash successfully!"
    );
    assert_eq!(api.get("/folders").1["data"], json!([]));
    assert_eq!(api.get(&format!("/folders/{sub_id}")).0, 404);
    assert_eq!(
        api.get(&format!("/files?folder_id={sub_id}")).1["data"],
        json!([])
    );
    // The file is trashed too: trashing it again is the product's soft error.
    let (status, body) = api.patch(&format!("/files/{}/trash", file["id"].as_str().unwrap()));
    assert_eq!(status, 200);
    assert_eq!(body["error"], true);
}

#[test]
fn unknown_ids_trash_and_delete_as_the_product_does() {
    let srv = TestServer::default_server();
    let api = srv.client();
    let nobody = "00000000-0000-0000-0000-00000000dead";
    for (status, body) in [
        api.patch(&format!("/folders/{nobody}/trash")),
        api.delete(&format!("/folders/{nobody}")),
        api.delete(&format!("/files/{nobody}")),
        api.post_json("/folders/deletes", json!({"folders": [nobody]})),
        api.post_json("/files/deletes", json!({"files": [nobody]})),
    ] {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["error"], false, "{body}");
    }
    let (status, body) = api.patch(&format!("/files/{nobody}/trash"));
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"error": true, "data": null, "message": "Error when deleting selected item(s)"})
    );
}

#[test]
fn bulk_deletes_validate_an_array_of_strings() {
    let srv = TestServer::default_server();
    let api = srv.client();
    let (status, body) = api.post_json("/folders/deletes", json!({"folders": [1, "x"]}));
    assert_eq!(status, 422);
    assert_eq!(
        body["errors"]["folders.0"][0],
        "The folders.0 field must be a string."
    );
    let (status, _) = api.post_json("/files/deletes", json!({"files": "abc"}));
    assert_eq!(status, 422);
    let (status, body) = api.post_json("/files/deletes", json!({}));
    assert_eq!(status, 422);
    assert_eq!(body["message"], "The files field is required.");

    let a = api.put_file(None, "a.txt", b"a");
    let b = api.put_file(None, "b.txt", b"b");
    let keep = api.put_file(None, "c.txt", b"c");
    let (status, _) = api.post_json("/files/deletes", json!({"files": [a["id"], b["id"]]}));
    assert_eq!(status, 200);
    let listed: Vec<serde_json::Value> = api.get("/files").1["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].clone())
        .collect();
    assert_eq!(listed, vec![keep["id"].clone()]);
    // Permanent delete frees the stem.
    assert_eq!(api.put_file(None, "a.txt", b"again")["name"], "a");
}

#[test]
fn delete_folder_removes_rows_and_bytes_recursively() {
    let srv = TestServer::default_server();
    let api = srv.client();
    let top = api.mkdir("0", "Top");
    let top_id = top["id"].as_str().unwrap().to_string();
    let sub = api.mkdir(&top_id, "Sub");
    let file = api.put_file(sub["id"].as_str(), "x.txt", b"bytes");
    let url = file["full_url"].as_str().unwrap().to_string();
    assert_eq!(reqwest::blocking::get(&url).unwrap().status(), 200);
    let (status, body) = api.post_json("/folders/deletes", json!({ "folders": [top_id] }));
    assert_eq!(
        (status, body["message"].as_str()),
        (200, Some("Deleted selected item(s) successfully!"))
    );
    assert_eq!(reqwest::blocking::get(&url).unwrap().status(), 404);
    let blobs = walk_files(&srv.data_dir.join("blobs"));
    assert_eq!(blobs, 0, "no bytes left behind");
    assert_eq!(api.mkdir("0", "Top")["name"], "Top");
}

fn walk_files(dir: &std::path::Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .map(|e| {
            if e.path().is_dir() {
                walk_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn requests_without_json_accept_get_redirected_like_laravel() {
    let srv = TestServer::default_server();
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client
        .get(format!("{}/media/folders", srv.api))
        .header("X-API-KEY", TEST_KEY)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert!(resp.headers().get("location").is_some());
    let resp = client
        .get(format!("{}/media/folders", srv.api))
        .header("X-API-KEY", TEST_KEY)
        .header("X-Requested-With", "XMLHttpRequest")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200, "an XHR accepting anything gets JSON");
    let resp = client
        .get(format!("{}/media/folders", srv.api))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[test]
fn unknown_routes_and_methods_are_404() {
    let srv = TestServer::default_server();
    let api = srv.client();
    let id = api.put_file(None, "a.txt", b"a")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = api.get(&format!("/files/{id}"));
    assert_eq!(status, 404, "no GET /media/files/{{id}}");
    assert!(body["message"].is_string());
    assert_eq!(api.get("/nothing").0, 404);
    assert_eq!(
        api.send(api.request(reqwest::Method::PUT, "/folders")).0,
        404
    );
}

#[test]
fn stats_count_requests_including_refused_ones() {
    let srv = TestServer::default_server();
    let api = srv.client();
    api.mkdir("0", "A");
    api.get("/folders");
    srv.client_with_key(Some("bad")).get("/folders");
    api.get("/files");
    let file = api.put_file(None, "a.txt", b"abc");
    let url = file["full_url"].as_str().unwrap();
    reqwest::blocking::get(url).unwrap().bytes().unwrap();
    reqwest::blocking::Client::new().head(url).send().unwrap();
    let s = srv.stats();
    assert_eq!(s["api"]["total"], 5);
    assert_eq!(s["api"]["list_folders"], 2);
    assert_eq!(s["api"]["create_folder"], 1);
    assert_eq!(s["api"]["list_files"], 1);
    assert_eq!(s["api"]["upload"], 1);
    assert_eq!(s["storage"]["get"], 1);
    assert_eq!(s["storage"]["head"], 1);
    assert_eq!(s["storage"]["bytes_sent"], 3);
    srv.reset_stats();
    assert_eq!(srv.stats()["api"]["total"], 0);
}

#[test]
fn access_log_has_one_line_per_request_and_never_the_key() {
    let srv = TestServer::default_server();
    let api = srv.client();
    api.get("/folders?folder_id=0");
    api.put_file(None, "a.txt", b"abc");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let log = loop {
        let log = srv.log();
        if log.matches("access: ").count() >= 2 || std::time::Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(
        log.contains("access: GET /api/v1/media/folders?folder_id=0 200 "),
        "{log}"
    );
    assert!(
        log.contains("access: POST /api/v1/media/files 200 "),
        "{log}"
    );
    let line = log.lines().find(|l| l.contains("access: GET")).unwrap();
    assert!(
        line.trim_end().ends_with("ms") && line.contains("B "),
        "{line}"
    );
    assert!(
        !log.to_lowercase().contains(&TEST_KEY.to_lowercase()),
        "key leaked: {log}"
    );
}

#[test]
fn help_documents_every_option() {
    let out = std::process::Command::new(common::server_bin())
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--listen",
        "--data",
        "--key",
        "--keys-file",
        "--flavor",
        "--import",
        "--public-url",
        "--max-upload",
        "--max-body",
        "--allowed-extensions",
        "--rate-limit",
        "--latency",
        "--fail-rate",
        "--drop-rate",
        "--stall",
        "--bandwidth",
        "--fail-uploads",
        "--fault-seed",
        "--test-control",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}");
    }
}
