//! The API key given in `CLOUDIFY_API_KEY` leaves the environment once read, so that no
//! child of the mount (fusermount3 for a user without root, anything a helper runs)
//! inherits it. Its own test binary with a single test: changing the environment is only
//! sound while no other thread uses it.

use std::process::Command;

use cloudify_fs::cli::{API_KEY_ENV, read_api_key, take_api_key_env};

#[test]
fn the_key_leaves_the_environment_once_taken_and_children_do_not_see_it() {
    const SECRET: &str = "0123456789ABCDEF0123456789ABCDEF01234567";
    // SAFETY: the only test of this binary; no other thread uses the environment.
    unsafe { std::env::set_var(API_KEY_ENV, format!(" {SECRET}\n")) };

    // SAFETY: as above.
    let taken = unsafe { take_api_key_env() };
    assert!(std::env::var_os(API_KEY_ENV).is_none());
    let child = Command::new("env").output().expect("run env");
    let seen = String::from_utf8_lossy(&child.stdout);
    assert!(!seen.contains(API_KEY_ENV), "a child inherited the key");
    assert!(!seen.contains(SECRET), "a child inherited the key");

    let key = read_api_key(None, taken).expect("the key taken from the environment");
    assert_eq!(key.expose(), SECRET);
    let missing = read_api_key(None, None).expect_err("no key");
    assert!(missing.contains(API_KEY_ENV), "{missing}");
}
