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
    /// Files changed locally in a receive-only folder (what a revert undoes).
    #[serde(rename = "receiveOnlyChangedFiles", default)]
    pub receive_only_changed_files: u64,
    #[serde(default)]
    pub error: String,
}
