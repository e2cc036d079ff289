//! The JSON shapes of Syncthing's REST API that KOOMPI uses, as Syncthing 1.19 and 2.x
//! both write them. Fields KOOMPI does not read are left out of the answers (serde ignores
//! them); configs KOOMPI writes name only the fields it sets, and Syncthing fills the rest
//! from its defaults (`/rest/config/defaults/...`, since 1.14).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `/rest/system/version`.
#[derive(Debug, Clone, Deserialize)]
pub struct Version {
    /// e.g. `v1.19.2-ds1` or `v2.0.10`.
    pub version: String,
    #[serde(rename = "longVersion", default)]
    pub long_version: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub arch: String,
}

impl Version {
    /// The major version (1 or 2), when the version string says it.
    pub fn major(&self) -> Option<u32> {
        self.version
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
    }
}

/// `/rest/system/status` (the parts KOOMPI reads).
#[derive(Debug, Clone, Deserialize)]
pub struct SystemStatus {
    /// This device's ID.
    #[serde(rename = "myID")]
    pub my_id: String,
    #[serde(default)]
    pub uptime: u64,
    /// Per listen address (`tcp://0.0.0.0:22000`...), what it is bound to (both 1.19 and
    /// 2.x): where this device's sync port is read.
    #[serde(rename = "connectionServiceStatus", default)]
    pub connection_service_status: BTreeMap<String, serde_json::Value>,
}

impl SystemStatus {
    /// The TCP port Syncthing's sync protocol listens on, when it listens on TCP.
    pub fn sync_port(&self) -> Option<u16> {
        self.connection_service_status
            .iter()
            .filter(|(k, v)| k.starts_with("tcp") && v.get("error").is_none_or(|e| e.is_null()))
            .flat_map(|(k, v)| {
                let lan = v
                    .get("lanAddresses")
                    .and_then(|a| a.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str().map(str::to_string));
                lan.chain(std::iter::once(k.clone()))
            })
            .find_map(|addr| port_of(&addr))
    }
}

/// The port of `tcp://HOST:PORT` (also `tcp4://`, `[v6]:PORT`); none for port 0 or none.
pub fn port_of(address: &str) -> Option<u16> {
    let (_, rest) = address.split_once("://")?;
    let hostport = rest.split(['/', '?']).next()?;
    let port: u16 = hostport.rsplit_once(':')?.1.parse().ok()?;
    (port != 0).then_some(port)
}

/// How a folder shares: who may change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FolderType {
    /// Sends its changes, ignores everyone else's (the teacher's lessons, a student's
    /// submissions).
    #[serde(rename = "sendonly")]
    SendOnly,
    /// Takes changes, sends none; a local change can be reverted (a student's lessons, the
    /// teacher's copy of a submission).
    #[serde(rename = "receiveonly")]
    ReceiveOnly,
    /// Both ways.
    #[serde(rename = "sendreceive")]
    SendReceive,
}

/// A device in a folder's device list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderDevice {
    #[serde(rename = "deviceID")]
    pub device_id: String,
}

/// A folder as KOOMPI adds it (`POST /rest/config/folders`) and reads it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderConfig {
    pub id: String,
    pub label: String,
    pub path: String,
    #[serde(rename = "type")]
    pub kind: FolderType,
    pub devices: Vec<FolderDevice>,
    /// Rescan on change (inotify).
    #[serde(rename = "fsWatcherEnabled")]
    pub fs_watcher_enabled: bool,
    /// Seconds the watcher gathers changes before a scan.
    #[serde(rename = "fsWatcherDelayS")]
    pub fs_watcher_delay_s: u32,
    /// The full rescan every so many seconds (a safety net behind the watcher).
    #[serde(rename = "rescanIntervalS")]
    pub rescan_interval_s: u32,
    /// Keep local files another device deleted (the teacher keeps handed-in work).
    #[serde(rename = "ignoreDelete", default)]
    pub ignore_delete: bool,
}

impl FolderConfig {
    /// Whether `device` is among the folder's devices.
    pub fn shared_with(&self, device: &str) -> bool {
        self.devices.iter().any(|d| d.device_id == device)
    }
}

/// A device as KOOMPI adds it (`POST /rest/config/devices`) and reads it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceConfig {
    #[serde(rename = "deviceID")]
    pub device_id: String,
    pub name: String,
    /// `tcp://HOST:PORT` addresses, or `dynamic` (discovery).
    pub addresses: Vec<String>,
    /// Per-device send limit in KiB/s, 0 for none.
    #[serde(rename = "maxSendKbps")]
    pub max_send_kbps: u32,
    /// Per-device receive limit in KiB/s, 0 for none.
    #[serde(rename = "maxRecvKbps")]
    pub max_recv_kbps: u32,
    /// Whether this device introduces the devices it shares folders with (a student's
    /// teacher does: students then pass lessons to each other).
    #[serde(default)]
    pub introducer: bool,
    /// The device that introduced this one, empty when added here.
    #[serde(
        rename = "introducedBy",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub introduced_by: String,
}

/// One entry of `/rest/cluster/pending/devices`: a device that tried to connect and is not
/// in the config.
#[derive(Debug, Clone, Deserialize)]
pub struct PendingDevice {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub time: String,
}

/// `/rest/cluster/pending/devices`: device ID → what it said.
pub type PendingDevices = BTreeMap<String, PendingDevice>;

/// `/rest/db/completion?folder=&device=`: how far a device has a folder.
#[derive(Debug, Clone, Deserialize)]
pub struct Completion {
    /// Percent, 0 to 100.
    pub completion: f64,
    #[serde(rename = "globalBytes", default)]
    pub global_bytes: u64,
    #[serde(rename = "needBytes", default)]
    pub need_bytes: u64,
    #[serde(rename = "needItems", default)]
    pub need_items: u64,
    #[serde(rename = "needDeletes", default)]
    pub need_deletes: u64,
}

/// `/rest/db/status?folder=` (the parts KOOMPI reads).
#[derive(Debug, Clone, Deserialize)]
pub struct FolderStatus {
    /// `idle`, `scanning`, `syncing`, `error`, ...
    pub state: String,
    #[serde(rename = "globalFiles", default)]
    pub global_files: u64,
    #[serde(rename = "localFiles", default)]
    pub local_files: u64,
    #[serde(rename = "needFiles", default)]
    pub need_files: u64,
    /// Bytes of the folder as the cluster has it, as this device has it, and still needed.
    #[serde(rename = "globalBytes", default)]
    pub global_bytes: u64,
    #[serde(rename = "localBytes", default)]
    pub local_bytes: u64,
    #[serde(rename = "needBytes", default)]
    pub need_bytes: u64,
    /// Files changed locally in a receive-only folder (edits and new files).
    #[serde(rename = "receiveOnlyChangedFiles", default)]
    pub receive_only_changed_files: u64,
    /// Every local change in a receive-only folder: files, directories, symlinks and
    /// deletions (what a revert undoes; a deleted lesson is not among the files).
    #[serde(rename = "receiveOnlyTotalItems", default)]
    pub receive_only_total_items: u64,
    #[serde(default)]
    pub error: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `/rest/system/status` of Debian's Syncthing 1.19.2 (the relay failing offline).
    const STATUS_1_19: &str = r#"{"myID":"MSK4M7W-ICOJ5FU-RA4Y2TI-FXMJZ4I-HQNSBSE-6VSYFBC-FRDI3HV-H6R4UAT",
      "uptime": 6, "connectionServiceStatus": {
        "dynamic+https://relays.syncthing.net/endpoint": {"error": "lookup: no such host",
          "lanAddresses": [], "wanAddresses": []},
        "quic://0.0.0.0:22000": {"error": null, "lanAddresses": ["quic://0.0.0.0:22000"]},
        "tcp://0.0.0.0:22001": {"error": null, "lanAddresses": ["tcp://0.0.0.0:22001"],
          "wanAddresses": ["tcp://0.0.0.0:0", "tcp://0.0.0.0:22001"]}}}"#;

    #[test]
    fn the_sync_port_is_the_tcp_listeners() {
        let s: SystemStatus = serde_json::from_str(STATUS_1_19).unwrap();
        assert_eq!(s.sync_port(), Some(22001));
        let failed: SystemStatus = serde_json::from_str(
            r#"{"myID":"X","connectionServiceStatus":{"tcp://0.0.0.0:22000":
               {"error":"listen tcp: address already in use","lanAddresses":[]}}}"#,
        )
        .unwrap();
        assert_eq!(failed.sync_port(), None);
        let none: SystemStatus = serde_json::from_str(r#"{"myID":"X"}"#).unwrap();
        assert_eq!(none.sync_port(), None);
    }

    #[test]
    fn ports_are_read_from_addresses() {
        assert_eq!(port_of("tcp://0.0.0.0:22000"), Some(22000));
        assert_eq!(port_of("tcp4://10.77.0.2:22000/?x=1"), Some(22000));
        assert_eq!(port_of("tcp://[fe80::1%eth0]:22001"), Some(22001));
        assert_eq!(port_of("tcp://0.0.0.0:0"), None);
        assert_eq!(port_of("dynamic"), None);
        assert_eq!(port_of("tcp://host"), None);
    }
}
