//! cloudify-server keeps everything in its data folder: a restart shows the same library,
//! bytes included, and `--import` loads a tree once.

mod common;

use common::{ServerOptions, TestServer};

#[test]
fn library_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (folder_id, file_id, trashed_name) = {
        let mut srv = TestServer::start(ServerOptions::default().data_dir(&data));
        let api = srv.client();
        let folder = api.mkdir("0", "Kept");
        let fid = folder["id"].as_str().unwrap().to_string();
        let file = api.put_file(Some(&fid), "k.txt", b"kept bytes");
        let trashed = api.mkdir("0", "Bin");
        api.patch(&format!(
            "/folders/{}/trash",
            trashed["id"].as_str().unwrap()
        ));
        srv.stop();
        (fid, file["id"].as_str().unwrap().to_string(), "Bin")
    };
    let srv = TestServer::start(ServerOptions::default().data_dir(&data));
    let api = srv.client();
    let (_, body) = api.get(&format!("/folders/{folder_id}"));
    assert_eq!(body["data"]["name"], "Kept");
    let file = &body["data"]["files"][0];
    assert_eq!(file["id"], file_id.as_str());
    // The new origin (a new port) is used in URLs; the bytes are there.
    let url = file["full_url"].as_str().unwrap();
    assert!(url.starts_with(&srv.origin), "{url}");
    assert_eq!(
        reqwest::blocking::get(url).unwrap().text().unwrap(),
        "kept bytes"
    );
    assert_eq!(
        api.mkdir("0", trashed_name)["name"],
        "Bin-1",
        "trash survives too"
    );
}

#[test]
fn import_loads_a_tree_once_through_the_upload_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(tree.join("Photos/2024")).unwrap();
    std::fs::create_dir_all(tree.join("bad.name")).unwrap();
    std::fs::write(tree.join("notes.txt"), "notes").unwrap();
    std::fs::write(tree.join("notes.csv"), "a,b\n").unwrap();
    std::fs::write(tree.join("empty.txt"), "").unwrap();
    std::fs::write(tree.join("Photos/2024/list.txt"), "one\ntwo\n").unwrap();
    let data = tmp.path().join("data");
    let import = tree.to_str().unwrap().to_string();

    let mut srv = TestServer::start(
        ServerOptions::default()
            .data_dir(&data)
            .args(["--import", &import]),
    );
    let api = srv.client();
    let (_, root) = api.get("/folders?include_files=true");
    let folder_names: Vec<&str> = root["data"]["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        folder_names,
        ["Photos"],
        "a folder name with a dot is skipped"
    );
    let file_names: Vec<(&str, &str)> = root["data"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["basename"].as_str().unwrap()))
        .collect();
    assert_eq!(
        file_names,
        [("notes", "notes.csv"), ("notes-1", "notes.txt")]
    );
    let photos = root["data"]["folders"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, sub) = api.get(&format!("/folders?folder_id={photos}"));
    let year = sub["data"][0]["id"].as_str().unwrap().to_string();
    let (_, files) = api.get(&format!("/files?folder_id={year}"));
    assert_eq!(files["data"][0]["url"], "photos/2024/list.txt");
    srv.stop();

    let srv = TestServer::start(
        ServerOptions::default()
            .data_dir(&data)
            .args(["--import", &import]),
    );
    let (_, root) = srv.client().get("/files");
    assert_eq!(
        root["data"].as_array().unwrap().len(),
        2,
        "nothing imported twice"
    );
}
