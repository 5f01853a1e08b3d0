//! The listing `cloudify-fs mount` makes before mounting, against a real `cloudify-server`:
//! each way it can fail gets its own message and a non-zero exit, and the key never shows.

mod common;

use common::mount::MountCommand;
use common::{ServerOptions, TestServer};

/// Starts a mount that is expected to fail before mounting; returns its exit code and log.
fn failed_mount(command: MountCommand) -> (Option<i32>, String) {
    let mut mount = command.start();
    let status = mount.wait_exit();
    assert!(!mount.is_mounted());
    (status.code(), mount.log())
}

#[test]
fn unknown_key_is_reported_as_refused() {
    let server = TestServer::default_server();
    let (code, log) = failed_mount(MountCommand::new(&server.origin).key(Some("WRONGKEY1234")));
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("key refused") || log.contains("key was refused"),
        "{log}"
    );
    assert!(log.contains("403"), "{log}");
}

#[test]
fn key_refused_with_401_is_reported_the_same() {
    let server = TestServer::start(ServerOptions::default().args(["--auth-status", "401"]));
    let (code, log) = failed_mount(MountCommand::new(&server.api).key(Some("WRONGKEY1234")));
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("key was refused"), "{log}");
}

#[test]
fn key_without_list_ability_is_reported_as_refused() {
    let key = "UPLOADONLYKEY0001";
    let server = TestServer::start(
        ServerOptions::default()
            .arg("--key")
            .arg(format!("{key}=create_media_file")),
    );
    let (code, log) = failed_mount(MountCommand::new(&server.origin).key(Some(key)));
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("list_media_folders"), "{log}");
}

#[test]
fn url_that_is_not_a_cloudify_api_is_reported() {
    let server = TestServer::default_server();
    let url = format!("{}/not/the/api", server.origin);
    let (code, log) = failed_mount(MountCommand::new(url));
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("does not look like a Cloudify API"), "{log}");
}

#[test]
fn refused_key_never_appears_in_any_output() {
    let server = TestServer::default_server();
    let key = "LEAKCHECKKEY0123456789";
    let (_, log) = failed_mount(
        MountCommand::new(&server.origin)
            .key(Some(key))
            .args(&["-vv"])
            .env("RUST_LOG", "trace"),
    );
    assert!(log.contains("refused"), "{log}");
    assert!(!log.to_uppercase().contains(key), "the key leaked:\n{log}");
}
