//! Syncthing's REST API on loopback: plain HTTP with the API key in `X-API-Key`, JSON in
//! and out. Only the endpoints present in both 1.19 (Debian 12) and 2.x (Arch):
//! `/rest/system/*`, `/rest/config/*` (since 1.12), `/rest/cluster/pending/*` (since 1.13)
//! and `/rest/db/*`. Every failure is one line: the call, the HTTP status and Syncthing's
//! own text.

use super::types::{
    Completion, DeviceConfig, FolderConfig, FolderStatus, PendingDevices, SystemStatus, Version,
};
use serde::de::DeserializeOwned;
use std::time::{Duration, Instant};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How much of Syncthing's answer an error keeps.
const TEXT_KEEP: usize = 300;

/// Errors from the REST API.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// Syncthing answered with an error status.
    #[error("Syncthing {call}: HTTP {status}: {text}")]
    Status {
        call: String,
        status: u16,
        text: String,
    },
    /// No answer (not running, wrong port, timeout).
    #[error("Syncthing {call}: {reason}")]
    Transport { call: String, reason: String },
    /// An answer that is not the JSON expected.
    #[error("Syncthing {call}: unexpected answer: {reason}")]
    Decode { call: String, reason: String },
    /// A wait ran out.
    #[error("Syncthing: {what} did not happen within {secs} s{}", last_suffix(.last))]
    Timeout {
        what: String,
        secs: u64,
        last: String,
    },
}

fn last_suffix(last: &str) -> String {
    if last.is_empty() {
        String::new()
    } else {
        format!(" (last: {last})")
    }
}

/// Makes any text one line of at most [`TEXT_KEEP`] bytes.
pub fn one_line(text: &str) -> String {
    let mut s = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.len() > TEXT_KEEP {
        let mut cut = TEXT_KEEP;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// Percent-encodes a query value (device IDs and folder IDs are usually safe already).
fn enc(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A client for one Syncthing instance's REST API.
pub struct Client {
    base: String,
    api_key: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("api_key", &"***")
            .finish()
    }
}

impl Client {
    /// A client for the GUI/REST address `host:port` (loopback) with `api_key`.
    pub fn new(gui_address: &str, api_key: &str) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build();
        Client {
            base: format!("http://{}", gui_address.trim_start_matches("http://")),
            api_key: api_key.to_string(),
            agent: ureq::Agent::new_with_config(config),
        }
    }

    /// The address this client talks to, `http://host:port`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// One request; returns the body text of a 2xx answer.
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<String, RestError> {
        let call = format!("{method} {path}");
        let url = format!("{}{}", self.base, path);
        let transport = |e: ureq::Error| RestError::Transport {
            call: call.clone(),
            reason: one_line(&e.to_string()),
        };
        let result = match (method, body) {
            ("GET", _) => self
                .agent
                .get(&url)
                .header("X-API-Key", &self.api_key)
                .call(),
            ("DELETE", _) => self
                .agent
                .delete(&url)
                .header("X-API-Key", &self.api_key)
                .call(),
            (m, body) => {
                let text = body.map(|b| b.to_string()).unwrap_or_default();
                let req = match m {
                    "PUT" => self.agent.put(&url),
                    "PATCH" => self.agent.patch(&url),
                    _ => self.agent.post(&url),
                };
                req.header("X-API-Key", &self.api_key)
                    .header("Content-Type", "application/json")
                    .send(text.as_bytes())
            }
        };
        let mut resp = result.map_err(transport)?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| RestError::Transport {
                call: call.clone(),
                reason: one_line(&e.to_string()),
            })?;
        if (200..300).contains(&status) {
            Ok(text)
        } else {
            Err(RestError::Status {
                call,
                status,
                text: one_line(&text),
            })
        }
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, RestError> {
        let text = self.call("GET", path, None)?;
        serde_json::from_str(&text).map_err(|e| RestError::Decode {
            call: format!("GET {path}"),
            reason: e.to_string(),
        })
    }

    fn send<T: serde::Serialize>(
        &self,
        method: &str,
        path: &str,
        body: &T,
    ) -> Result<(), RestError> {
        let value = serde_json::to_value(body).map_err(|e| RestError::Decode {
            call: format!("{method} {path}"),
            reason: e.to_string(),
        })?;
        self.call(method, path, Some(&value)).map(|_| ())
    }

    /// `GET /rest/system/ping`: true when Syncthing answers `{"ping":"pong"}`.
    pub fn ping(&self) -> Result<(), RestError> {
        let v: serde_json::Value = self.get("/rest/system/ping")?;
        if v.get("ping").and_then(|p| p.as_str()) == Some("pong") {
            Ok(())
        } else {
            Err(RestError::Decode {
                call: "GET /rest/system/ping".into(),
                reason: one_line(&v.to_string()),
            })
        }
    }

    /// Waits until [`Client::ping`] succeeds, at most `deadline`.
    pub fn wait_ping(&self, deadline: Duration) -> Result<(), RestError> {
        wait_until(
            deadline,
            "the REST API answering /rest/system/ping",
            || match self.ping() {
                Ok(()) => Ok(Some(())),
                Err(e) => Err(e.to_string()),
            },
        )
    }

    /// `GET /rest/system/version`.
    pub fn version(&self) -> Result<Version, RestError> {
        self.get("/rest/system/version")
    }

    /// `GET /rest/system/status`.
    pub fn status(&self) -> Result<SystemStatus, RestError> {
        self.get("/rest/system/status")
    }

    /// `POST /rest/system/shutdown`.
    pub fn shutdown(&self) -> Result<(), RestError> {
        self.call("POST", "/rest/system/shutdown", None).map(|_| ())
    }

    /// `GET /rest/config/options`, whole (every field, whichever version).
    pub fn options(&self) -> Result<serde_json::Value, RestError> {
        self.get("/rest/config/options")
    }

    /// `PUT /rest/config/options` with a whole options object (as [`Client::options`] gave
    /// it, changed).
    pub fn put_options(&self, options: &serde_json::Value) -> Result<(), RestError> {
        self.send("PUT", "/rest/config/options", options)
    }

    /// `GET /rest/config/restart-required`: whether a config change waits for a restart.
    pub fn restart_required(&self) -> Result<bool, RestError> {
        let v: serde_json::Value = self.get("/rest/config/restart-required")?;
        Ok(v.get("requiresRestart").and_then(|r| r.as_bool()) == Some(true))
    }

    /// `GET /rest/config/devices`.
    pub fn devices(&self) -> Result<Vec<DeviceConfig>, RestError> {
        self.get("/rest/config/devices")
    }

    /// `POST /rest/config/devices`: adds (or replaces) a device.
    pub fn add_device(&self, device: &DeviceConfig) -> Result<(), RestError> {
        self.send("POST", "/rest/config/devices", device)
    }

    /// `PATCH /rest/config/devices/ID`: changes the given fields of a device only.
    pub fn patch_device(
        &self,
        device_id: &str,
        fields: &serde_json::Value,
    ) -> Result<(), RestError> {
        self.send(
            "PATCH",
            &format!("/rest/config/devices/{}", enc(device_id)),
            fields,
        )
    }

    /// `DELETE /rest/config/devices/ID`.
    pub fn remove_device(&self, device_id: &str) -> Result<(), RestError> {
        self.call(
            "DELETE",
            &format!("/rest/config/devices/{}", enc(device_id)),
            None,
        )
        .map(|_| ())
    }

    /// `GET /rest/config/folders`.
    pub fn folders(&self) -> Result<Vec<FolderConfig>, RestError> {
        self.get("/rest/config/folders")
    }

    /// `GET /rest/config/folders/ID`.
    pub fn folder(&self, folder_id: &str) -> Result<FolderConfig, RestError> {
        self.get(&format!("/rest/config/folders/{}", enc(folder_id)))
    }

    /// `GET /rest/system/connections`: the `connections` object, by device ID (each with
    /// `connected`, `address`...; both 1.19 and 2.x).
    pub fn connections(&self) -> Result<serde_json::Value, RestError> {
        let v: serde_json::Value = self.get("/rest/system/connections")?;
        Ok(v.get("connections")
            .cloned()
            .unwrap_or(serde_json::Value::Null))
    }

    /// `GET /rest/stats/device`: per device ID, `lastSeen` (RFC 3339) among others.
    pub fn device_stats(&self) -> Result<serde_json::Value, RestError> {
        self.get("/rest/stats/device")
    }

    /// `POST /rest/config/folders`: adds (or replaces) a folder.
    pub fn add_folder(&self, folder: &FolderConfig) -> Result<(), RestError> {
        self.send("POST", "/rest/config/folders", folder)
    }

    /// `GET /rest/db/file?folder=ID&file=NAME`: the file as this device has it (`local`) and
    /// as the cluster does (`global`), with `deleted` flags.
    pub fn file_info(&self, folder_id: &str, file: &str) -> Result<serde_json::Value, RestError> {
        self.get(&format!(
            "/rest/db/file?folder={}&file={}",
            enc(folder_id),
            enc(file)
        ))
    }

    /// `POST /rest/db/ignores?folder=ID`: the folder's ignore patterns (its `.stignore`).
    pub fn set_ignores(&self, folder_id: &str, patterns: &[&str]) -> Result<(), RestError> {
        self.send(
            "POST",
            &format!("/rest/db/ignores?folder={}", enc(folder_id)),
            &serde_json::json!({ "ignore": patterns }),
        )
    }

    /// `DELETE /rest/config/folders/ID`.
    pub fn remove_folder(&self, folder_id: &str) -> Result<(), RestError> {
        self.call(
            "DELETE",
            &format!("/rest/config/folders/{}", enc(folder_id)),
            None,
        )
        .map(|_| ())
    }

    /// `GET /rest/cluster/pending/devices`: devices that knocked and are not in the config.
    pub fn pending_devices(&self) -> Result<PendingDevices, RestError> {
        self.get("/rest/cluster/pending/devices")
    }

    /// `DELETE /rest/cluster/pending/devices?device=ID`: forgets a knock.
    pub fn dismiss_pending_device(&self, device_id: &str) -> Result<(), RestError> {
        self.call(
            "DELETE",
            &format!("/rest/cluster/pending/devices?device={}", enc(device_id)),
            None,
        )
        .map(|_| ())
    }

    /// `GET /rest/cluster/pending/folders`: folders offered to this device that it has not
    /// added (a map, folder ID → who offered it), as raw JSON.
    pub fn pending_folders(&self) -> Result<serde_json::Value, RestError> {
        self.get("/rest/cluster/pending/folders")
    }

    /// `GET /rest/db/completion?folder=&device=`: how far `device` has `folder`.
    pub fn completion(&self, folder_id: &str, device_id: &str) -> Result<Completion, RestError> {
        self.get(&format!(
            "/rest/db/completion?folder={}&device={}",
            enc(folder_id),
            enc(device_id)
        ))
    }

    /// `GET /rest/db/status?folder=`.
    pub fn folder_status(&self, folder_id: &str) -> Result<FolderStatus, RestError> {
        self.get(&format!("/rest/db/status?folder={}", enc(folder_id)))
    }

    /// `POST /rest/db/scan?folder=`: rescans now (and waits for the scan, as Syncthing does).
    pub fn scan(&self, folder_id: &str) -> Result<(), RestError> {
        self.call(
            "POST",
            &format!("/rest/db/scan?folder={}", enc(folder_id)),
            None,
        )
        .map(|_| ())
    }

    /// `POST /rest/db/revert?folder=`: undoes local changes in a receive-only folder.
    pub fn revert(&self, folder_id: &str) -> Result<(), RestError> {
        self.call(
            "POST",
            &format!("/rest/db/revert?folder={}", enc(folder_id)),
            None,
        )
        .map(|_| ())
    }
}

/// Polls `check` every 200 ms until it gives `Some`, at most `deadline`. `check`'s `Err`
/// (and `Ok(None)`) mean "not yet"; the last error is kept for the timeout's message.
pub fn wait_until<T>(
    deadline: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<Option<T>, String>,
) -> Result<T, RestError> {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        match check() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = one_line(&e),
        }
        if start.elapsed() >= deadline {
            return Err(RestError::Timeout {
                what: what.to_string(),
                secs: deadline.as_secs(),
                last,
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn errors_are_one_line() {
        let e = RestError::Status {
            call: "POST /rest/config/folders".into(),
            status: 400,
            text: one_line("folder type\n  \"x\" is\tinvalid\n"),
        };
        assert_eq!(
            e.to_string(),
            "Syncthing POST /rest/config/folders: HTTP 400: folder type \"x\" is invalid"
        );
    }

    #[test]
    fn a_closed_port_is_a_transport_error() {
        // Port 1 on loopback: nobody listens there unprivileged.
        let c = Client::new("127.0.0.1:1", "k");
        match c.ping() {
            Err(RestError::Transport { call, .. }) => assert_eq!(call, "GET /rest/system/ping"),
            other => panic!("expected a transport error, got {other:?}"),
        }
    }

    proptest! {
        #[test]
        fn one_line_has_no_line_breaks_and_is_bounded(s in "\\PC*") {
            let l = one_line(&s);
            prop_assert!(!l.contains('\n') && !l.contains('\r'));
            prop_assert!(l.len() <= TEXT_KEEP + 3);
        }

        #[test]
        fn encoded_values_are_query_safe(s in "\\PC*") {
            let e = enc(&s);
            prop_assert!(e.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)));
        }
    }
}
