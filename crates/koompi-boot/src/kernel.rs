//! Which kernel and initramfs a root tree boots with, found from the names in its `/boot`.
//!
//! Arch names them `vmlinuz-<pkgbase>` and `initramfs-<pkgbase>.img`; Debian
//! `vmlinuz-<release>` and `initrd.img-<release>`. The choice is pure over the file names.

/// A kernel and its initramfs, as paths inside the root (`/boot/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFiles {
    pub kernel: String,
    pub initrd: String,
}

fn initrd_for(suffix: &str, names: &[String]) -> Option<String> {
    [
        format!("initramfs-{suffix}.img"),
        format!("initrd.img-{suffix}"),
        format!("initrd-{suffix}"),
    ]
    .into_iter()
    .find(|n| names.iter().any(|x| x == n))
}

/// Compares version-like strings with runs of digits as numbers.
fn version_key(s: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut num = String::new();
    let mut text = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !text.is_empty() {
                out.push((0, std::mem::take(&mut text)));
            }
            num.push(c);
        } else {
            if !num.is_empty() {
                out.push((num.parse().unwrap_or(0), String::new()));
                num.clear();
            }
            text.push(c);
        }
    }
    if !num.is_empty() {
        out.push((num.parse().unwrap_or(0), String::new()));
    }
    if !text.is_empty() {
        out.push((0, text));
    }
    out
}

/// Picks the kernel to boot from the names in `/boot`: the running release if present,
/// otherwise the Arch `linux-lts`/`linux` package, otherwise the highest version.
pub fn choose(names: &[String], running_release: Option<&str>) -> Option<BootFiles> {
    let mut cands: Vec<(String, String)> = names
        .iter()
        .filter_map(|n| {
            let suffix = n.strip_prefix("vmlinuz-")?;
            Some((suffix.to_string(), initrd_for(suffix, names)?))
        })
        .collect();
    if cands.is_empty() {
        return None;
    }
    let pick = |suffix: &str| cands.iter().find(|(s, _)| s == suffix).cloned();
    let chosen = running_release
        .and_then(pick)
        .or_else(|| pick("linux-lts"))
        .or_else(|| pick("linux"))
        .or_else(|| {
            cands.sort_by_key(|(s, _)| version_key(s));
            cands.last().cloned()
        })?;
    Some(BootFiles {
        kernel: format!("/boot/vmlinuz-{}", chosen.0),
        initrd: format!("/boot/{}", chosen.1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn debian_prefers_the_running_release_then_the_newest() {
        let n = names(&[
            "vmlinuz-6.1.0-9-cloud-amd64",
            "initrd.img-6.1.0-9-cloud-amd64",
            "vmlinuz-6.1.0-28-cloud-amd64",
            "initrd.img-6.1.0-28-cloud-amd64",
            "config-6.1.0-28-cloud-amd64",
            "grub",
        ]);
        assert_eq!(
            choose(&n, Some("6.1.0-9-cloud-amd64")).map(|b| b.kernel),
            Some("/boot/vmlinuz-6.1.0-9-cloud-amd64".into())
        );
        let b = choose(&n, Some("5.0-other")).expect("a kernel");
        assert_eq!(b.kernel, "/boot/vmlinuz-6.1.0-28-cloud-amd64");
        assert_eq!(b.initrd, "/boot/initrd.img-6.1.0-28-cloud-amd64");
    }

    #[test]
    fn arch_pkgbase_names() {
        let n = names(&[
            "vmlinuz-linux-lts",
            "initramfs-linux-lts.img",
            "initramfs-linux-lts-fallback.img",
            "amd-ucode.img",
        ]);
        let b = choose(&n, Some("6.6.30-1-lts")).expect("a kernel");
        assert_eq!(b.kernel, "/boot/vmlinuz-linux-lts");
        assert_eq!(b.initrd, "/boot/initramfs-linux-lts.img");
    }

    #[test]
    fn a_kernel_without_initramfs_is_not_bootable() {
        assert_eq!(choose(&names(&["vmlinuz-6.1"]), None), None);
        assert_eq!(choose(&[], None), None);
    }
}
