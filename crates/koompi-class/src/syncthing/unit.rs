//! The systemd user unit that runs the classroom's Syncthing in a real session:
//! `koompi-class-syncthing.service`, one instance per user, its own home under
//! `$XDG_STATE_HOME` (so a personal Syncthing in ~/.config/syncthing is not touched), the
//! GUI/REST API on loopback only. Flags are the ones 1.19 and 2.x share; the home is
//! created by `syncthing generate` first, which keeps an existing config and keys.

/// The unit's file name.
pub const UNIT_NAME: &str = "koompi-class-syncthing.service";

/// The unit text for `program` (e.g. `/usr/bin/syncthing`) with the GUI/REST API on
/// `127.0.0.1:gui_port`.
pub fn user_unit(program: &str, gui_port: u16) -> String {
    let home = "%S/koompi-class/syncthing";
    format!(
        "[Unit]
Description=KOOMPI classroom file sync (Syncthing, LAN only)
Documentation=man:syncthing(1)
StartLimitIntervalSec=60
StartLimitBurst=4

[Service]
Environment=STNORESTART=1 STNOUPGRADE=1 STNODEFAULTFOLDER=1
ExecStartPre={program} generate --home={home}
ExecStart={program} serve --home={home} --no-browser --no-restart --gui-address=127.0.0.1:{gui_port}
# Syncthing exits 3 to be restarted (a config change) and 4 after an upgrade.
Restart=on-failure
RestartSec=2
SuccessExitStatus=3 4
RestartForceExitStatus=3 4
# The home (keys, API key) is the user's alone.
StateDirectory=koompi-class/syncthing
StateDirectoryMode=0700
NoNewPrivileges=true

[Install]
WantedBy=default.target
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gui_is_on_loopback_and_the_home_private() {
        let u = user_unit("/usr/bin/syncthing", 28384);
        assert!(u.contains("--gui-address=127.0.0.1:28384"));
        assert!(u.contains("StateDirectoryMode=0700"));
        assert_eq!(u.matches("--home=%S/koompi-class/syncthing").count(), 2);
    }
}
