//! Update channels: stable, beta and development (the whitepaper's release channels).
//!
//! The channel is a setting (`CHANNEL=` in /etc/koompi/update.conf) that selects which
//! KOOMPI repositories pacman uses. pacman.conf includes one file KOOMPI manages,
//! /etc/pacman.d/koompi-channel.conf, which lists the KOOMPI repository sections for the
//! channel, most adventurous first (pacman takes a package from the first repository that
//! has it, like Arch's `[core-testing]` above `[core]`):
//!
//! - stable: `[koompi]`
//! - beta: `[koompi-beta]`, `[koompi]`
//! - development: `[koompi-development]`, `[koompi-beta]`, `[koompi]`
//!
//! Each section takes its servers from /etc/pacman.d/koompi-mirrorlist, whose `Server =`
//! lines use pacman's `$repo`, so one mirror serves every channel. Switching to a less
//! adventurous channel does not downgrade what is installed; the next upgrade only stops
//! taking packages from the channels left.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use koompi_core::config::ShellVars;

/// Where the setting lives.
pub const UPDATE_CONF: &str = "etc/koompi/update.conf";
/// The pacman.conf fragment KOOMPI writes for the channel.
pub const CHANNEL_CONF: &str = "etc/pacman.d/koompi-channel.conf";
/// The mirrorlist the channel's sections include.
pub const MIRRORLIST: &str = "/etc/pacman.d/koompi-mirrorlist";

/// A release channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    #[default]
    Stable,
    Beta,
    Development,
}

/// A channel name that is not one.
#[derive(Debug, thiserror::Error)]
#[error("unknown update channel `{0}`: choose stable, beta or development")]
pub struct UnknownChannel(pub String);

/// Reading or writing the channel files failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error(transparent)]
    Unknown(#[from] UnknownChannel),
    #[error("{}: {msg}", .path.display())]
    Io {
        path: std::path::PathBuf,
        msg: String,
    },
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Stable, Channel::Beta, Channel::Development];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Stable => "stable",
            Channel::Beta => "beta",
            Channel::Development => "development",
        }
    }

    /// The pacman repositories of this channel, in pacman.conf order.
    pub fn repositories(self) -> Vec<&'static str> {
        match self {
            Channel::Stable => vec!["koompi"],
            Channel::Beta => vec!["koompi-beta", "koompi"],
            Channel::Development => vec!["koompi-development", "koompi-beta", "koompi"],
        }
    }

    /// The pacman.conf fragment for this channel.
    pub fn render(self) -> String {
        let mut s = format!(
            "# Written by `koompi channel set {}`; changes here are overwritten.\n\
             # The update channel is set in /{UPDATE_CONF}.\n",
            self.as_str()
        );
        for repo in self.repositories() {
            s.push_str(&format!("\n[{repo}]\nInclude = {MIRRORLIST}\n"));
        }
        s
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = UnknownChannel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownChannel(s.to_string()))
    }
}

/// The channel set in `root`'s update.conf (stable when the file or the key is absent).
pub fn current(root: &Path) -> Result<Channel, ChannelError> {
    let path = root.join(UPDATE_CONF);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Channel::Stable),
        Err(e) => {
            return Err(ChannelError::Io {
                path,
                msg: e.to_string(),
            })
        }
    };
    let vars = ShellVars::parse(&text).map_err(|e| ChannelError::Io {
        path: path.clone(),
        msg: e.to_string(),
    })?;
    match vars.get("CHANNEL") {
        None | Some("") => Ok(Channel::Stable),
        Some(v) => Ok(v.parse()?),
    }
}

/// Sets the channel: update.conf's `CHANNEL=` (other settings kept) and the pacman.conf
/// fragment, each written whole to a temporary file and renamed into place.
pub fn set(root: &Path, channel: Channel) -> Result<(), ChannelError> {
    let conf = root.join(UPDATE_CONF);
    let old = match std::fs::read_to_string(&conf) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(ChannelError::Io {
                path: conf,
                msg: e.to_string(),
            })
        }
    };
    write_atomic(&root.join(CHANNEL_CONF), &channel.render())?;
    write_atomic(&conf, &with_channel(&old, channel))?;
    Ok(())
}

/// `text` (an update.conf) with its `CHANNEL=` line replaced or added.
pub fn with_channel(text: &str, channel: Channel) -> String {
    let line = format!("CHANNEL=\"{channel}\"");
    let mut out = String::new();
    let mut done = false;
    for l in text.lines() {
        if l.trim_start().starts_with("CHANNEL=") {
            if !done {
                out.push_str(&line);
                out.push('\n');
                done = true;
            }
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    if !done {
        if out.is_empty() {
            out.push_str("# KOOMPI update settings (see `koompi channel --help`).\n");
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn write_atomic(path: &Path, text: &str) -> Result<(), ChannelError> {
    let io = |e: std::io::Error| ChannelError::Io {
        path: path.to_path_buf(),
        msg: e.to_string(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".koompi-new");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pacman_conf;

    #[test]
    fn names_round_trip_and_bad_ones_explain() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>().unwrap(), c);
        }
        let e = "nightly".parse::<Channel>().unwrap_err().to_string();
        assert!(e.contains("stable, beta or development"), "{e}");
    }

    #[test]
    fn each_channel_includes_the_more_stable_ones_after_it() {
        assert_eq!(Channel::Stable.repositories(), ["koompi"]);
        let dev = Channel::Development.repositories();
        assert_eq!(dev.first(), Some(&"koompi-development"));
        assert_eq!(dev.last(), Some(&"koompi"));
    }

    #[test]
    fn the_fragment_is_what_pacman_reads() {
        let text = Channel::Beta.render();
        let conf = pacman_conf::parse(&text).unwrap();
        let names: Vec<&str> = conf.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["koompi-beta", "koompi"]);
    }

    #[test]
    fn set_keeps_other_settings_and_reads_back() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(current(t.path()).unwrap(), Channel::Stable);
        std::fs::create_dir_all(t.path().join("etc/koompi")).unwrap();
        std::fs::write(
            t.path().join(UPDATE_CONF),
            "# mine\nTRANSACTIONAL=\"yes\"\nCHANNEL=\"stable\"\n",
        )
        .unwrap();
        set(t.path(), Channel::Development).unwrap();
        assert_eq!(current(t.path()).unwrap(), Channel::Development);
        let conf = std::fs::read_to_string(t.path().join(UPDATE_CONF)).unwrap();
        assert_eq!(
            conf,
            "# mine\nTRANSACTIONAL=\"yes\"\nCHANNEL=\"development\"\n"
        );
        let frag = std::fs::read_to_string(t.path().join(CHANNEL_CONF)).unwrap();
        assert!(frag.contains("[koompi-development]"));
        std::fs::write(t.path().join(UPDATE_CONF), "CHANNEL=\"lts\"\n").unwrap();
        assert!(current(t.path()).is_err());
    }
}
