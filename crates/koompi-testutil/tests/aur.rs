//! The mock AUR over real HTTP, queried with curl the way a client would: the v5 envelope,
//! search, info and multi-info, errors, the request log, and the 503 and stall switches.

use std::process::Command;
use std::time::{Duration, Instant};

use koompi_testutil::aur::{AurMode, MockAur};
use serde_json::Value;

/// `curl -sS` with a time limit; returns (HTTP status, body). None when curl is missing.
fn curl(url: &str, max_time: &str) -> Option<(u16, String)> {
    koompi_testutil::which("curl")?;
    let out = Command::new("curl")
        .args(["-sS", "--max-time", max_time, "-w", "\n%{http_code}", url])
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "000"));
    Some((code.parse().unwrap_or(0), body.to_string()))
}

fn have_curl(test: &str) -> bool {
    koompi_testutil::require_programs(test, &["curl"])
}

/// `curl -fsS`, parsed.
fn get_json(url: &str) -> Value {
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "10", url])
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{url}: not JSON: {e}"))
}

fn names(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .expect("results array")
        .iter()
        .map(|r| r["Name"].as_str().expect("Name").to_string())
        .collect()
}

fn envelope_keys(v: &Value) -> Vec<String> {
    v.as_object().expect("object").keys().cloned().collect()
}

#[test]
fn search_info_and_errors_over_http() {
    if !have_curl("search_info_and_errors_over_http") {
        return;
    }
    let aur = MockAur::start();
    let base = aur.url();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    // Search, path form.
    let v = get_json(&format!("{base}/rpc/v5/search/paru?by=name"));
    assert_eq!(
        envelope_keys(&v),
        ["resultcount", "results", "type", "version"]
    );
    assert_eq!(v["type"], "search");
    assert_eq!(v["version"], 5);
    assert_eq!(v["resultcount"], 2);
    assert_eq!(names(&v), ["paru", "paru-bin"]);
    let first = &v["results"][0];
    assert_eq!(first["URLPath"], "/cgit/aur.git/snapshot/paru.tar.gz");
    assert!(first["OutOfDate"].is_null());
    assert!(
        first.get("Depends").is_none(),
        "search results carry no Depends"
    );
    assert!(
        first.get("Submitter").is_none(),
        "search results carry no Submitter"
    );

    // name-desc (the default) matches descriptions; percent-encoded argument.
    let v = get_json(&format!("{base}/rpc/v5/search/web%20browser"));
    assert_eq!(names(&v), ["google-chrome"]);
    assert!(v["results"][0]["OutOfDate"].is_i64());
    // Legacy form.
    let v = get_json(&format!("{base}/rpc/?v=5&type=search&by=name&arg=KOOMPI"));
    assert_eq!(names(&v), ["koompi-cli", "koompi-wallpapers-legacy"]);

    // Info: one, several, unknown names are left out.
    let v = get_json(&format!("{base}/rpc/v5/info/yay"));
    assert_eq!(v["type"], "multiinfo");
    assert_eq!(names(&v), ["yay"]);
    assert_eq!(v["results"][0]["Depends"][0], "pacman>6.1");
    assert_eq!(v["results"][0]["MakeDepends"][0], "go>=1.21");
    let v = get_json(&format!(
        "{base}/rpc/v5/info?arg[]=paru&arg[]=visual-studio-code-bin&arg[]=no-such-pkg"
    ));
    assert_eq!(v["resultcount"], 2);
    assert_eq!(names(&v), ["paru", "visual-studio-code-bin"]);
    let paru = &v["results"][0];
    for key in [
        "License",
        "Keywords",
        "OptDepends",
        "MakeDepends",
        "Submitter",
    ] {
        assert!(paru.get(key).is_some(), "info lacks {key}");
    }
    let v = get_json(&format!("{base}/rpc/?v=5&type=info&arg%5B%5D=koompi-cli"));
    assert_eq!(names(&v), ["koompi-cli"]);
    assert_eq!(v["results"][0]["Popularity"], 0);

    // Errors: HTTP 200 with aurweb's envelope.
    let v = get_json(&format!("{base}/rpc/v5/search/a"));
    assert_eq!(
        envelope_keys(&v),
        ["error", "resultcount", "results", "type", "version"]
    );
    assert_eq!(v["error"], "Query arg too small.");
    assert_eq!(v["type"], "error");
    assert_eq!(v["resultcount"], 0);
    assert_eq!(v["results"], serde_json::json!([]));
    assert_eq!(v["version"], 5);
    let v = get_json(&format!("{base}/rpc/?v=5&type=frobnicate&arg=paru"));
    assert_eq!(v["error"], "Incorrect request type specified.");
    let v = get_json(&format!("{base}/rpc/v5/search/paru?by=colour"));
    assert_eq!(v["error"], "Incorrect by field specified.");

    let (status, _) = curl(&format!("{base}/no/such/path"), "10").expect("curl");
    assert_eq!(status, 404);

    // Every request was recorded as sent.
    let reqs = aur.requests();
    assert_eq!(reqs[0], "/rpc/v5/search/paru?by=name");
    assert!(reqs.contains(&"/rpc/v5/search/web%20browser".to_string()));
    assert!(reqs.contains(&"/rpc/?v=5&type=info&arg%5B%5D=koompi-cli".to_string()));
    assert_eq!(reqs.last().map(String::as_str), Some("/no/such/path"));
    aur.clear_requests();
    assert!(aur.requests().is_empty());
}

#[test]
fn unavailable_rate_limited_and_stalled() {
    if !have_curl("unavailable_rate_limited_and_stalled") {
        return;
    }
    let aur = MockAur::start();
    let url = format!("{}/rpc/v5/info/paru", aur.url());

    aur.set_mode(AurMode::Unavailable);
    let (status, body) = curl(&url, "10").expect("curl");
    assert_eq!(status, 503, "{body}");

    aur.set_mode(AurMode::RateLimited);
    let (status, body) = curl(&url, "10").expect("curl");
    assert_eq!(status, 429);
    let v: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["error"], "Rate limit reached");

    aur.set_mode(AurMode::Stall);
    let started = Instant::now();
    let (status, _) = curl(&url, "1").expect("curl");
    assert_eq!(status, 0, "no answer while stalled");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(started.elapsed() < Duration::from_secs(10));

    aur.set_mode(AurMode::Normal);
    let (status, body) = curl(&url, "10").expect("curl");
    assert_eq!(status, 200, "{body}");
    assert_eq!(aur.requests().len(), 4);

    // Dropping a mock with a stalled connection returns promptly.
    aur.set_mode(AurMode::Stall);
    let stalled = std::thread::spawn(move || curl(&url, "30"));
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    drop(aur);
    assert!(started.elapsed() < Duration::from_secs(3));
    let (status, _) = stalled.join().expect("curl thread").expect("curl");
    assert_eq!(status, 0, "the connection closed without an answer");
}

#[test]
fn records_from_a_directory() {
    if !have_curl("records_from_a_directory") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rec: Value = koompi_testutil::aur::builtin_records()
        .into_iter()
        .find(|r| r["Name"] == "yay")
        .expect("yay");
    rec["Name"] = "yay-koompi".into();
    rec["Version"] = "99-1".into();
    std::fs::write(dir.path().join("yay-koompi.json"), rec.to_string()).expect("write");
    std::fs::write(dir.path().join("notes.txt"), "ignored").expect("write");
    let aur = MockAur::start_with_dir(dir.path());
    let v = get_json(&format!("{}/rpc/v5/search/yay?by=name", aur.url()));
    assert_eq!(names(&v), ["yay-koompi"]);
    assert_eq!(v["results"][0]["Version"], "99-1");
}
