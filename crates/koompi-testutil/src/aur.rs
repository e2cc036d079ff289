//! A mock AUR that speaks the real aurweb RPC v5 over HTTP on loopback, for the tests of
//! KOOMPI's AUR path.
//!
//! The real AUR cannot be reached from the test machines, and a client tested only against
//! its own idea of the protocol proves little. So [`MockAur`] answers the requests aurweb
//! answers, the way aurweb answers them (its `aurweb/routers/rpc.py` and `aurweb/rpc.py`):
//! - `GET /rpc/v5/search/{arg}?by=…`, `GET /rpc/v5/search?arg=…&by=…`,
//!   `GET /rpc/v5/info?arg[]=a&arg[]=b`, `GET /rpc/v5/info/{name}`;
//! - the legacy form `GET /rpc/?v=5&type=search|info|multiinfo|msearch|suggest|
//!   suggest-pkgbase&by=…&arg=…` (also `arg[]=`, `/rpc`, `/rpc.php`), with JSONP `callback`;
//! - the JSON keys sorted, as aurweb serialises them: `{"resultcount":N,"results":[…],
//!   "type":"search"|"multiinfo","version":5}`, and its error envelope
//!   `{"error":"…","resultcount":0,"results":[],"type":"error","version":5}` with HTTP 200
//!   and aurweb's messages ("Query arg too small.", "Incorrect request type specified.",
//!   "Incorrect by field specified.", "Invalid version specified.", …);
//! - search semantics: `name` and `name-desc` are case-insensitive substring matches (name,
//!   or name or description; `name-desc` is the default), `maintainer` exact (an empty
//!   argument lists orphans), `depends`/`makedepends`/`optdepends`/`checkdepends`/
//!   `provides`/`conflicts`/`replaces`/`groups`/`keywords`/`submitter`/`comaintainers` exact
//!   on the name (without version constraint or reason); `info` exact names.
//!
//! One deliberate difference: with the path form and a query string
//! (`/rpc/v5/search/paru?by=name`) aurweb's code as published takes the arguments from the
//! query string only, which holds none; clients use that form against the real AUR and get
//! results, so the mock takes the argument from the path. No ETag, no rate limiting (but see
//! [`AurMode::RateLimited`]), no POST.
//!
//! Records are JSON files in `data/aur/` (see the README there), or the test's own. Every
//! request target is recorded ([`MockAur::requests`]); [`MockAur::set_mode`] makes the
//! server answer 503 or 429, or accept and never answer (for client timeouts). HTTP/1.1
//! with `Content-Length` and `Connection: close`; std::net only.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

/// The built-in records (`data/aur/*.json`).
const BUILTIN: [&str; 7] = [
    include_str!("../data/aur/paru.json"),
    include_str!("../data/aur/paru-bin.json"),
    include_str!("../data/aur/yay.json"),
    include_str!("../data/aur/google-chrome.json"),
    include_str!("../data/aur/visual-studio-code-bin.json"),
    include_str!("../data/aur/koompi-cli.json"),
    include_str!("../data/aur/koompi-wallpapers-legacy.json"),
];

/// The fields of a search result, all present in every record (aurweb's `get_json_data`
/// without `Submitter`, which search results drop).
const SEARCH_FIELDS: [&str; 14] = [
    "Description",
    "FirstSubmitted",
    "ID",
    "LastModified",
    "Maintainer",
    "Name",
    "NumVotes",
    "OutOfDate",
    "PackageBase",
    "PackageBaseID",
    "Popularity",
    "URL",
    "URLPath",
    "Version",
];

/// aurweb's accepted `by` values.
const BYS: [&str; 14] = [
    "name-desc",
    "name",
    "maintainer",
    "depends",
    "makedepends",
    "optdepends",
    "checkdepends",
    "provides",
    "conflicts",
    "replaces",
    "groups",
    "submitter",
    "keywords",
    "comaintainers",
];

/// aurweb's accepted `type` values.
const TYPES: [&str; 6] = [
    "info",
    "multiinfo",
    "search",
    "msearch",
    "suggest",
    "suggest-pkgbase",
];

/// How the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AurMode {
    /// Like aurweb.
    Normal,
    /// HTTP 503 Service Unavailable with an HTML body, as the AUR's front end does during
    /// maintenance or overload.
    Unavailable,
    /// HTTP 429 with aurweb's `"Rate limit reached"` error envelope.
    RateLimited,
    /// Reads the request, then holds the connection without answering until the mode
    /// changes or the mock is dropped.
    Stall,
}

#[derive(Debug)]
struct State {
    records: Vec<Value>,
    requests: Mutex<Vec<String>>,
    mode: Mutex<AurMode>,
    stop: AtomicBool,
}

impl State {
    fn mode(&self) -> AurMode {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The mock AUR: a server on `127.0.0.1:<random port>`, stopped on drop.
#[derive(Debug)]
pub struct MockAur {
    addr: SocketAddr,
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

impl MockAur {
    /// Serves the built-in records (`data/aur/`).
    pub fn start() -> Self {
        Self::start_with(builtin_records())
    }

    /// Serves every `*.json` file in `dir` (one record each).
    pub fn start_with_dir(dir: &Path) -> Self {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("MockAur: cannot read {dir:?}: {e}"))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        let records = files
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(f)
                    .unwrap_or_else(|e| panic!("MockAur: cannot read {f:?}: {e}"));
                serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("MockAur: {f:?} is not JSON: {e}"))
            })
            .collect();
        Self::start_with(records)
    }

    /// Serves `records` (info results as aurweb returns them). Panics on a record without
    /// the fields every result has.
    pub fn start_with(records: Vec<Value>) -> Self {
        for r in &records {
            let obj = r
                .as_object()
                .unwrap_or_else(|| panic!("MockAur: a record is not an object: {r}"));
            for f in SEARCH_FIELDS {
                assert!(obj.contains_key(f), "MockAur: record without {f}: {r}");
            }
            assert!(
                obj["Name"].is_string(),
                "MockAur: Name must be a string: {r}"
            );
        }
        let listener = TcpListener::bind("127.0.0.1:0").expect("MockAur: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("MockAur: local address");
        let state = Arc::new(State {
            records,
            requests: Mutex::new(Vec::new()),
            mode: Mutex::new(AurMode::Normal),
            stop: AtomicBool::new(false),
        });
        let st = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("mock-aur".into())
            .spawn(move || serve(&listener, &st))
            .expect("MockAur: spawn the server thread");
        MockAur {
            addr,
            state,
            thread: Some(thread),
        }
    }

    /// The base URL (`http://127.0.0.1:PORT`), where the AUR's is `https://aur.archlinux.org`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request target received so far (`/rpc/v5/info?arg[]=paru`), as sent (not
    /// decoded), in order.
    pub fn requests(&self) -> Vec<String> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.state
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Changes how the server answers from the next request on.
    pub fn set_mode(&self, mode: AurMode) {
        *self.state.mode.lock().unwrap_or_else(|e| e.into_inner()) = mode;
    }
}

impl Drop for MockAur {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The built-in records, parsed.
pub fn builtin_records() -> Vec<Value> {
    BUILTIN
        .iter()
        .map(|t| serde_json::from_str(t).expect("a built-in AUR record is not JSON"))
        .collect()
}

fn serve(listener: &TcpListener, state: &Arc<State>) {
    let mut handlers: Vec<JoinHandle<()>> = Vec::new();
    for stream in listener.incoming() {
        if state.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let st = Arc::clone(state);
        if let Ok(h) = std::thread::Builder::new()
            .name("mock-aur-conn".into())
            .spawn(move || handle(stream, &st))
        {
            handlers.push(h);
        }
        handlers.retain(|h| !h.is_finished());
    }
    for h in handlers {
        let _ = h.join();
    }
}

/// One HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    fn json(status: u16, v: &Value) -> Self {
        Reply {
            status,
            content_type: "application/json",
            body: v.to_string(),
        }
    }
}

fn handle(mut stream: TcpStream, state: &State) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut parts = text.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = match (parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v)) if v.starts_with("HTTP/") => (m.to_string(), t.to_string()),
        _ => {
            if !head.is_empty() {
                write_reply(
                    &mut stream,
                    &Reply::json(400, &json!({"detail": "Bad Request"})),
                );
            }
            return;
        }
    };
    state
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(target.clone());
    let reply = match state.mode() {
        AurMode::Normal => respond(&state.records, &method, &target),
        AurMode::Unavailable => Reply {
            status: 503,
            content_type: "text/html",
            body: "<html><body><h1>503 Service Unavailable</h1></body></html>\n".into(),
        },
        AurMode::RateLimited => Reply::json(429, &error_envelope(json!(5), "Rate limit reached")),
        AurMode::Stall => {
            let until = Instant::now() + Duration::from_secs(300);
            while !state.stop.load(Ordering::SeqCst)
                && state.mode() == AurMode::Stall
                && Instant::now() < until
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            return;
        }
    };
    write_reply(&mut stream, &reply);
}

fn write_reply(stream: &mut TcpStream, reply: &Reply) {
    let reason = match reply.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Unknown",
    };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reply.content_type,
        reply.body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(reply.body.as_bytes());
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
}

/// Decodes `%XX` escapes (not `+`: aurweb's argument parsing uses `unquote`).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query string as decoded (key, value) pairs, in order.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// aurweb's `parse_args`: if the last `arg`/`arg[]` key is `arg`, that one value; else the
/// trailing run of `arg[]` values.
fn legacy_args(pairs: &[(String, String)]) -> Vec<String> {
    let mut rev = pairs
        .iter()
        .rev()
        .filter(|(k, _)| k == "arg" || k == "arg[]")
        .peekable();
    let Some((last, _)) = rev.peek().map(|(k, v)| (k.clone(), v.clone())) else {
        return Vec::new();
    };
    if last == "arg" {
        return rev.next().map(|(_, v)| vec![v.clone()]).unwrap_or_default();
    }
    let mut args: Vec<String> = rev
        .take_while(|(k, _)| *k == last)
        .map(|(_, v)| v.clone())
        .collect();
    args.reverse();
    args
}

/// The answer to one request, as aurweb gives it.
pub fn respond(records: &[Value], method: &str, target: &str) -> Reply {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let pairs = query_pairs(query);
    let by = first(&pairs, "by").unwrap_or("name-desc").to_string();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let not_found = || Reply::json(404, &json!({"detail": "Not Found"}));
    let legacy = matches!(path, "/rpc" | "/rpc/" | "/rpc.php" | "/rpc.php/");
    let versioned = segs.len() >= 3 && segs[0] == "rpc" && segs[1].starts_with('v');
    if !legacy && !versioned {
        return not_found();
    }
    if method != "GET" {
        return Reply::json(405, &json!({"detail": "Method Not Allowed"}));
    }
    let callback = first(&pairs, "callback").map(str::to_string);
    if legacy {
        if query.is_empty() {
            return Reply {
                status: 200,
                content_type: "text/html",
                body: "<html><body><h1>aurweb RPC (mock)</h1></body></html>\n".into(),
            };
        }
        let v = match first(&pairs, "v") {
            None => Value::Null,
            Some(v) => match v.parse::<i64>() {
                Ok(n) => json!(n),
                Err(_) => return unprocessable("v"),
            },
        };
        let kind = first(&pairs, "type").map(str::to_string);
        return finish(
            rpc(records, v, kind.as_deref(), &by, &legacy_args(&pairs)),
            callback,
        );
    }
    let Ok(version) = segs[1][1..].parse::<i64>() else {
        return unprocessable("version");
    };
    let v = json!(version);
    let data = match (segs[2], segs.get(3), segs.len()) {
        ("search", Some(arg), 4) => rpc(records, v, Some("search"), &by, &[percent_decode(arg)]),
        ("search", None, 3) => {
            let arg = first(&pairs, "arg").unwrap_or("");
            let args = if arg.is_empty() {
                Vec::new()
            } else {
                vec![arg.to_string()]
            };
            rpc(records, v, Some("search"), &by, &args)
        }
        ("info", Some(name), 4) => rpc(records, v, Some("info"), &by, &[percent_decode(name)]),
        ("info", None, 3) => rpc(records, v, Some("info"), &by, &legacy_args(&pairs)),
        _ => return not_found(),
    };
    finish(data, None)
}

fn unprocessable(field: &str) -> Reply {
    Reply::json(
        422,
        &json!({"detail": [{"loc": ["query", field], "msg": "value is not a valid integer",
                            "type": "type_error.integer"}]}),
    )
}

fn finish(data: Value, callback: Option<String>) -> Reply {
    match callback {
        Some(cb) if !cb.is_empty() => {
            let ok = cb.len() <= 128
                && cb
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "()_.".contains(c));
            if !ok {
                let version = data.get("version").cloned().unwrap_or(Value::Null);
                return Reply::json(200, &error_envelope(version, "Invalid callback name."));
            }
            Reply {
                status: 200,
                content_type: "text/javascript",
                body: format!("/**/{cb}({data})"),
            }
        }
        _ => Reply::json(200, &data),
    }
}

/// aurweb's error envelope (keys in sorted order, as aurweb serialises them).
fn error_envelope(version: Value, message: &str) -> Value {
    let mut m = Map::new();
    m.insert("error".into(), json!(message));
    m.insert("resultcount".into(), json!(0));
    m.insert("results".into(), json!([]));
    m.insert("type".into(), json!("error"));
    m.insert("version".into(), version);
    Value::Object(m)
}

/// aurweb's `RPC.handle`: checks in aurweb's order, then the type's handler.
fn rpc(records: &[Value], version: Value, kind: Option<&str>, by: &str, args: &[String]) -> Value {
    let err = |m: &str| error_envelope(version.clone(), m);
    if version.is_null() {
        return err("Please specify an API version.");
    }
    if version != json!(5) {
        return err("Invalid version specified.");
    }
    if !BYS.contains(&by) {
        return err("Incorrect by field specified.");
    }
    let Some(kind) = kind else {
        return err("No request type/data specified.");
    };
    if !TYPES.contains(&kind) {
        return err("Incorrect request type specified.");
    }
    let kind = if kind == "info" { "multiinfo" } else { kind };
    let results: Vec<Value> = match kind {
        "multiinfo" => {
            if args.is_empty() {
                return err("No request type/data specified.");
            }
            sorted(records.iter().filter(|r| args.iter().any(|a| name(r) == a)))
                .map(info_result)
                .collect()
        }
        "search" | "msearch" => {
            let by = if kind == "msearch" { "maintainer" } else { by };
            if by != "maintainer" && args.is_empty() {
                return err("No request type/data specified.");
            }
            let arg = args.first().map(String::as_str).unwrap_or("");
            if by != "maintainer" && arg.chars().count() < 2 {
                return err("Query arg too small.");
            }
            sorted(records.iter().filter(|r| matches(r, by, arg)))
                .map(search_result)
                .collect()
        }
        _ => {
            // suggest, suggest-pkgbase: a bare list of up to 20 names starting with arg.
            let Some(arg) = args.first() else {
                return json!([]);
            };
            let field = if kind == "suggest" {
                "Name"
            } else {
                "PackageBase"
            };
            let mut names: Vec<String> = records
                .iter()
                .filter_map(|r| r[field].as_str())
                .filter(|n| n.to_lowercase().starts_with(&arg.to_lowercase()))
                .map(str::to_string)
                .collect();
            names.sort();
            names.dedup();
            names.truncate(20);
            return json!(names);
        }
    };
    let mut m = Map::new();
    m.insert("resultcount".into(), json!(results.len()));
    m.insert("results".into(), Value::Array(results));
    m.insert("type".into(), json!(kind));
    m.insert("version".into(), version);
    Value::Object(m)
}

fn name(r: &Value) -> &str {
    r["Name"].as_str().unwrap_or("")
}

fn sorted<'a>(it: impl Iterator<Item = &'a Value>) -> impl Iterator<Item = &'a Value> {
    let mut v: Vec<&Value> = it.collect();
    v.sort_by(|a, b| name(a).cmp(name(b)));
    v.into_iter()
}

/// The name part of a dependency or relation (`pacman>6.1` → `pacman`, `bat: why` → `bat`).
fn dep_name(entry: &str) -> &str {
    entry
        .split(['<', '>', '=', ':'])
        .next()
        .unwrap_or("")
        .trim()
}

fn list<'a>(r: &'a Value, field: &str) -> impl Iterator<Item = &'a str> {
    r[field]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or(&[])
        .iter()
        .filter_map(Value::as_str)
}

fn matches(r: &Value, by: &str, arg: &str) -> bool {
    let lower = arg.to_lowercase();
    let contains = |field: &str| {
        r[field]
            .as_str()
            .is_some_and(|s| s.to_lowercase().contains(&lower))
    };
    let in_deps = |field: &str| list(r, field).any(|d| dep_name(d) == arg);
    let in_list = |field: &str| list(r, field).any(|d| d.to_lowercase() == lower);
    match by {
        "name" => contains("Name"),
        "name-desc" => contains("Name") || contains("Description"),
        "maintainer" if arg.is_empty() => r["Maintainer"].is_null(),
        "maintainer" | "submitter" => {
            let field = if by == "maintainer" {
                "Maintainer"
            } else {
                "Submitter"
            };
            r[field]
                .as_str()
                .is_some_and(|m| m.eq_ignore_ascii_case(arg))
        }
        "depends" => in_deps("Depends"),
        "makedepends" => in_deps("MakeDepends"),
        "optdepends" => in_deps("OptDepends"),
        "checkdepends" => in_deps("CheckDepends"),
        "provides" => name(r) == arg || in_deps("Provides"),
        "conflicts" => in_deps("Conflicts"),
        "replaces" => in_deps("Replaces"),
        "groups" => in_list("Groups"),
        "keywords" => in_list("Keywords"),
        "comaintainers" => in_list("CoMaintainers"),
        _ => false,
    }
}

/// A search result: the common fields only, keys sorted.
fn search_result(r: &Value) -> Value {
    let mut m = Map::new();
    for f in SEARCH_FIELDS {
        m.insert(f.into(), r[f].clone());
    }
    Value::Object(m)
}

/// An info result: the whole record, with the fields aurweb always adds, keys sorted.
fn info_result(r: &Value) -> Value {
    let mut all: Vec<(String, Value)> = r
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    for (k, default) in [
        ("License", json!([])),
        ("Keywords", json!([])),
        ("PendingRequests", json!(0)),
    ] {
        if !all.iter().any(|(key, _)| key == k) {
            all.push((k.to_string(), default));
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(all.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(target: &str) -> (u16, Value) {
        let r = respond(&builtin_records(), "GET", target);
        let v = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        (r.status, v)
    }

    fn names(v: &Value) -> Vec<&str> {
        v["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["Name"].as_str().expect("Name"))
            .collect()
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2Bc+d%zz%4"), "a b+c+d%zz%4");
        assert_eq!(percent_decode("arg%5B%5D"), "arg[]");
    }

    #[test]
    fn legacy_arg_rules() {
        let q = |s: &str| legacy_args(&query_pairs(s));
        assert_eq!(q("arg[]=a&arg[]=b"), ["a", "b"]);
        assert_eq!(q("arg[]=a&arg=b"), ["b"]);
        assert_eq!(q("arg=b&arg[]=a&arg[]=c"), ["a", "c"]);
        assert!(q("v=5").is_empty());
    }

    #[test]
    fn search_semantics() {
        let (s, v) = get("/rpc/v5/search/PARU?by=name");
        assert_eq!(s, 200);
        assert_eq!(names(&v), ["paru", "paru-bin"]);
        let (_, v) = get("/rpc/v5/search/helper");
        assert_eq!(names(&v), ["paru", "paru-bin", "yay"]);
        let (_, v) = get("/rpc/v5/search/helper?by=name");
        assert_eq!(v["resultcount"], 0);
        let (_, v) = get("/rpc/?v=5&type=search&by=depends&arg=pacman");
        assert_eq!(names(&v), ["paru", "paru-bin", "yay"]);
        let (_, v) = get("/rpc/?v=5&type=search&by=optdepends&arg=bat");
        assert_eq!(names(&v), ["paru", "paru-bin"]);
        let (_, v) = get("/rpc/?v=5&type=search&by=provides&arg=paru");
        assert_eq!(names(&v), ["paru", "paru-bin"]);
        let (_, v) = get("/rpc/?v=5&type=search&by=maintainer&arg=");
        assert_eq!(names(&v), ["koompi-wallpapers-legacy"]);
        let (_, v) = get("/rpc/?v=5&type=msearch&arg=koompi");
        assert_eq!(names(&v), ["koompi-cli"]);
        assert_eq!(v["type"], "msearch");
        let (_, v) = get("/rpc/?v=5&type=search&by=groups&arg=koompi");
        assert_eq!(names(&v), ["koompi-cli", "koompi-wallpapers-legacy"]);
        let (_, v) = get("/rpc/v5/search?arg=visual%20studio&by=name-desc");
        assert_eq!(names(&v), ["visual-studio-code-bin"]);
    }

    #[test]
    fn search_results_have_search_fields_only() {
        let (_, v) = get("/rpc/v5/search/paru?by=name");
        let r = v["results"][0].as_object().expect("object");
        let keys: Vec<&str> = r.keys().map(String::as_str).collect();
        assert_eq!(keys, SEARCH_FIELDS);
        let (_, v) = get("/rpc/v5/info/paru");
        let r = v["results"][0].as_object().expect("object");
        for k in [
            "Submitter",
            "Depends",
            "License",
            "Keywords",
            "PendingRequests",
        ] {
            assert!(r.contains_key(k), "info lacks {k}");
        }
    }

    #[test]
    fn errors_in_aurwebs_order() {
        let e = |t: &str| get(t).1["error"].as_str().unwrap_or("").to_string();
        assert_eq!(
            e("/rpc/?type=search&arg=paru"),
            "Please specify an API version."
        );
        assert_eq!(
            e("/rpc/?v=4&type=search&arg=paru"),
            "Invalid version specified."
        );
        assert_eq!(e("/rpc/v6/info/paru"), "Invalid version specified.");
        assert_eq!(
            e("/rpc/?v=5&type=nope&by=nope&arg=paru"),
            "Incorrect by field specified."
        );
        assert_eq!(
            e("/rpc/?v=5&type=nope&arg=paru"),
            "Incorrect request type specified."
        );
        assert_eq!(e("/rpc/?v=5&arg=paru"), "No request type/data specified.");
        assert_eq!(e("/rpc/?v=5&type=info"), "No request type/data specified.");
        assert_eq!(e("/rpc/v5/search/p"), "Query arg too small.");
        assert_eq!(e("/rpc/v5/search"), "No request type/data specified.");
        let (_, v) = get("/rpc/?type=search&arg=paru");
        assert!(v["version"].is_null());
        assert_eq!(respond(&[], "GET", "/nope").status, 404);
        assert_eq!(respond(&[], "GET", "/rpc/vX/info/a").status, 422);
    }

    #[test]
    fn jsonp_and_suggest() {
        let r = respond(
            &builtin_records(),
            "GET",
            "/rpc/?v=5&type=info&arg=yay&callback=cb",
        );
        assert_eq!(r.content_type, "text/javascript");
        assert!(r.body.starts_with("/**/cb({"), "{}", r.body);
        let (_, v) = get("/rpc/?v=5&type=suggest&arg=par");
        assert_eq!(v, json!(["paru", "paru-bin"]));
    }
}
