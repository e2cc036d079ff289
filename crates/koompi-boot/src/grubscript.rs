//! The GRUB code that counts boots and offers the known-good snapshot.
//!
//! `/etc/grub.d/42_koompi_watchdog` runs `koompi-watchdog grub-script` when grub-mkconfig
//! builds grub.cfg; the text comes from [`render`], a pure function of the filesystem ids and
//! the kernel command line. The counting branches are generated from
//! [`crate::counting::TRANSITIONS`]. The snippet sits after the normal entries so the menu
//! order (and `GRUB_DEFAULT=0`) is unchanged; it picks the fallback by its id.

use std::fmt::Write;

use crate::counting::{Entry, TRANSITIONS};

/// Where the environment block lives on the ESP.
pub const ENV_PATH_ON_ESP: &str = "/koompi/grubenv";
/// The menu entry id of the fallback.
pub const FALLBACK_ID: &str = "koompi-fallback";
/// The kernel command-line marker of a fallback boot.
pub const FALLBACK_PARAM: &str = "koompi.fallback";

/// What the script needs to know about this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptParams {
    /// Filesystem UUID of the ESP (FAT).
    pub esp_uuid: String,
    /// Filesystem UUID of the Btrfs root filesystem.
    pub root_uuid: String,
    /// Path of the snapshots subvolume in the Btrfs top level (`@snapshots`).
    pub snapshots_subvol: String,
    /// Extra kernel parameters (GRUB_CMDLINE_LINUX and _DEFAULT).
    pub cmdline: String,
}

fn grub_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The GRUB script text.
pub fn render(p: &ScriptParams) -> String {
    let mut s = String::new();
    let env = format!("(${{koompi_esp}}){ENV_PATH_ON_ESP}");
    let _ = writeln!(
        s,
        "### KOOMPI boot watchdog (koompi-watchdog grub-script) ###"
    );
    let _ = writeln!(s, "insmod part_gpt");
    let _ = writeln!(s, "insmod part_msdos");
    let _ = writeln!(s, "insmod fat");
    let _ = writeln!(s, "insmod btrfs");
    let _ = writeln!(s, "set koompi_esp=");
    let _ = writeln!(
        s,
        "search --no-floppy --fs-uuid --set=koompi_esp {}",
        grub_quote(&p.esp_uuid)
    );
    let _ = writeln!(s, "if [ -n \"${{koompi_esp}}\" ]; then");
    let _ = writeln!(
        s,
        "  if load_env --file \"{env}\" koompi_tries koompi_good koompi_kernel koompi_initrd; then"
    );
    let _ = writeln!(s, "    set koompi_next=1");
    // One branch per row of the decision table, most specific first.
    let mut first = true;
    for t in TRANSITIONS.iter().filter(|t| t.from != 0) {
        // GRUB's script has no `&&`; its `[` takes `-a`.
        let good = match t.needs_good {
            Some(true) => " -a -n \"${koompi_good}\"",
            Some(false) => " -a -z \"${koompi_good}\"",
            None => "",
        };
        let cond = format!("[ \"${{koompi_tries}}\" = \"{}\"{good} ]", t.from);
        let kw = if first { "if" } else { "elif" };
        first = false;
        let _ = writeln!(s, "    {kw} {cond}; then");
        let _ = writeln!(s, "      set koompi_next={}", t.to);
        if t.entry == Entry::Fallback {
            let _ = writeln!(s, "      set default={FALLBACK_ID}");
            let _ = writeln!(s, "      set koompi_fallback=1");
        }
    }
    let _ = writeln!(s, "    fi");
    let _ = writeln!(s, "    set koompi_tries=\"${{koompi_next}}\"");
    let _ = writeln!(s, "    save_env --file \"{env}\" koompi_tries");
    let _ = writeln!(s, "  fi");
    let _ = writeln!(s, "fi");
    let _ = writeln!(s, "export koompi_good koompi_kernel koompi_initrd");
    let snap = format!(
        "/{}/${{koompi_good}}/snapshot",
        p.snapshots_subvol.trim_matches('/')
    );
    let rootflags = format!("subvol={}", snap.trim_start_matches('/'));
    let mut cmdline = p.cmdline.trim().to_string();
    if !cmdline.split_whitespace().any(|w| w.starts_with("panic=")) {
        cmdline.push_str(" panic=10");
    }
    let _ = writeln!(s, "if [ -n \"${{koompi_good}}\" ]; then");
    let _ = writeln!(
        s,
        "  menuentry \"KOOMPI OS: last known-good snapshot (${{koompi_good}})\" --id {FALLBACK_ID} {{"
    );
    let _ = writeln!(s, "    insmod btrfs");
    let _ = writeln!(
        s,
        "    search --no-floppy --fs-uuid --set=root {}",
        grub_quote(&p.root_uuid)
    );
    let _ = writeln!(
        s,
        "    echo \"KOOMPI watchdog: booting known-good snapshot ${{koompi_good}}\""
    );
    let _ = writeln!(
        s,
        "    linux \"{snap}${{koompi_kernel}}\" root=UUID={} rootflags={rootflags} ro {FALLBACK_PARAM}=${{koompi_good}} {}",
        p.root_uuid,
        cmdline.trim()
    );
    let _ = writeln!(s, "    initrd \"{snap}${{koompi_initrd}}\"");
    let _ = writeln!(s, "  }}");
    let _ = writeln!(s, "fi");
    s
}

/// Reads `koompi.fallback=N` from a kernel command line.
pub fn fallback_from_cmdline(cmdline: &str) -> Option<u32> {
    cmdline.split_whitespace().find_map(|w| {
        let v = w.strip_prefix(FALLBACK_PARAM)?.strip_prefix('=')?;
        v.parse().ok().filter(|n| *n > 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> ScriptParams {
        ScriptParams {
            esp_uuid: "ABCD-1234".into(),
            root_uuid: "1111-2222".into(),
            snapshots_subvol: "@snapshots".into(),
            cmdline: "console=ttyS0,115200 panic=10".into(),
        }
    }

    #[test]
    fn script_counts_and_falls_back_by_id() {
        let s = render(&params());
        assert!(s.contains("search --no-floppy --fs-uuid --set=koompi_esp 'ABCD-1234'"));
        assert!(s.contains("load_env --file \"(${koompi_esp})/koompi/grubenv\" koompi_tries"));
        assert!(s.contains("if [ \"${koompi_tries}\" = \"3\" -a -n \"${koompi_good}\" ]; then\n      set koompi_next=4\n      set default=koompi-fallback"));
        assert!(s.contains("elif [ \"${koompi_tries}\" = \"2\" ]; then\n      set koompi_next=3"));
        assert!(s.contains("elif [ \"${koompi_tries}\" = \"4\" ]; then\n      set koompi_next=1"));
        assert!(s.contains("save_env --file \"(${koompi_esp})/koompi/grubenv\" koompi_tries"));
        assert!(s.contains("--id koompi-fallback"));
        assert!(s.contains(
            "linux \"/@snapshots/${koompi_good}/snapshot${koompi_kernel}\" root=UUID=1111-2222 rootflags=subvol=@snapshots/${koompi_good}/snapshot ro koompi.fallback=${koompi_good} console=ttyS0,115200 panic=10"
        ));
        assert_eq!(s.matches("panic=").count(), 1);
    }

    #[test]
    fn panic_is_added_when_missing() {
        let mut p = params();
        p.cmdline = "quiet".into();
        assert!(render(&p).contains("quiet panic=10"));
    }

    #[test]
    fn every_if_is_closed() {
        let s = render(&params());
        let opens = s
            .lines()
            .filter(|l| l.trim_start().starts_with("if "))
            .count();
        let closes = s.lines().filter(|l| l.trim() == "fi").count();
        assert_eq!(opens, closes);
        assert_eq!(s.matches('{').count() - s.matches("${").count(), 1);
    }

    #[test]
    fn fallback_marker() {
        assert_eq!(
            fallback_from_cmdline("root=x koompi.fallback=12 quiet"),
            Some(12)
        );
        assert_eq!(fallback_from_cmdline("koompi.fallback=0"), None);
        assert_eq!(fallback_from_cmdline("koompi.fallbackx=3 ro"), None);
        assert_eq!(fallback_from_cmdline("ro"), None);
    }
}
