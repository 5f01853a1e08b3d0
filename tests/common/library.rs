//! What a [`TestServer`] holds and what it was sent, read over its API and its request
//! counters: the files of the root folder with their bytes, and the upload count.
#![allow(dead_code)]

use std::collections::BTreeSet;

use super::TestServer;

/// The non-trashed files of the server's root folder, as the API describes them.
pub fn root_entries(server: &TestServer) -> Vec<serde_json::Value> {
    let (_, body) = server.client().get("/files");
    body["data"].as_array().cloned().unwrap_or_default()
}

/// The non-trashed files of the server's root folder: (name, full_url).
pub fn root_files(server: &TestServer) -> Vec<(String, String)> {
    root_entries(server)
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap_or_default().to_string(),
                f["full_url"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The names (without extension) of the non-trashed files of the server's root folder.
pub fn root_names(server: &TestServer) -> BTreeSet<String> {
    root_files(server).into_iter().map(|(n, _)| n).collect()
}

/// The bytes the server has under `name` in the root folder.
pub fn server_bytes(server: &TestServer, name: &str) -> Option<Vec<u8>> {
    let (_, url) = root_files(server).into_iter().find(|(n, _)| n == name)?;
    Some(
        reqwest::blocking::get(url)
            .unwrap()
            .bytes()
            .unwrap()
            .to_vec(),
    )
}

/// The server's upload count so far.
pub fn uploads(server: &TestServer) -> u64 {
    server.stats()["api"]["upload"].as_u64().unwrap_or(0)
}
