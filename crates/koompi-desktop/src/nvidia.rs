//! NVIDIA graphics: found in PCI data, and the driver package that fits.
//!
//! A display controller (PCI class 0x03) from vendor 0x10de is an NVIDIA GPU. Arch's
//! driver today is `nvidia-open-dkms` (the open kernel modules; `nvidia-dkms` left the
//! repositories), which runs Turing (GeForce 16/20 series) and newer. Turing's chips start
//! at device ID 0x1e00 (TU102), and every later generation has higher IDs, so a device ID
//! from 0x1e00 up is offered `nvidia-open-dkms` (NVIDIA's list of GPUs for the open
//! modules starts at 0x1e02). Maxwell, Pascal and Volta (0x1340 to 0x1dff, the IDs of
//! NVIDIA's 580 legacy branch) lost support with driver 590: only the AUR's
//! `nvidia-580xx-dkms` drives them, so they keep the free nouveau driver (Mesa) and the user
//! is told of that branch instead of being offered a package that would not drive the card.
//! Older cards get nouveau. Nothing is installed without a yes ([`crate::desktop`]).

use std::path::Path;

use serde::Serialize;

/// NVIDIA's PCI vendor ID.
pub const VENDOR: u16 = 0x10de;
/// The first Turing device ID: the open kernel modules support this and later.
pub const FIRST_TURING: u16 = 0x1e00;
/// The first ID of NVIDIA's 580 legacy branch (Maxwell).
pub const FIRST_580: u16 = 0x1340;
/// The AUR package of the 580 legacy branch.
pub const LEGACY_580: &str = "nvidia-580xx-dkms";
/// The package for Turing and newer.
pub const OPEN_PACKAGE: &str = "nvidia-open-dkms";

/// One PCI function as sysfs describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciDevice {
    pub vendor: u16,
    pub device: u16,
    /// The 24-bit class code (0x030000 is a VGA controller).
    pub class: u32,
}

/// What the machine's NVIDIA GPU needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Advice {
    /// A card the open modules drive: offer this package.
    Offer { device: String, package: String },
    /// An older card: no package is offered; nouveau drives it. `aur`: the AUR's legacy
    /// driver for it, when there is one.
    Legacy { device: String, aur: Option<String> },
}

impl Advice {
    /// One line for a person.
    pub fn describe(&self) -> String {
        match self {
            Advice::Offer { device, package } => {
                format!("NVIDIA GPU found (PCI 10de:{device}); its driver is {package}")
            }
            Advice::Legacy { device, aur } => format!(
                "NVIDIA GPU found (PCI 10de:{device}), older than Turing: Arch's \
                 {OPEN_PACKAGE} does not drive it, so the free nouveau driver stays{}",
                match aur {
                    Some(p) => format!(" (the AUR's {p} is an option for experts)"),
                    None => String::new(),
                }
            ),
        }
    }
}

/// The advice for the first NVIDIA display controller in `devices`, if any.
pub fn advise(devices: &[PciDevice]) -> Option<Advice> {
    let gpu = devices
        .iter()
        .find(|d| d.vendor == VENDOR && d.class >> 16 == 0x03)?;
    let device = format!("{:04x}", gpu.device);
    Some(if gpu.device >= FIRST_TURING {
        Advice::Offer {
            device,
            package: OPEN_PACKAGE.into(),
        }
    } else {
        Advice::Legacy {
            device,
            aur: (gpu.device >= FIRST_580).then(|| LEGACY_580.to_string()),
        }
    })
}

fn hex(text: &str) -> Option<u32> {
    let t = text.trim();
    u32::from_str_radix(t.strip_prefix("0x").unwrap_or(t), 16).ok()
}

/// Parses one sysfs device directory's `vendor`, `device` and `class` files' contents.
pub fn parse(vendor: &str, device: &str, class: &str) -> Option<PciDevice> {
    Some(PciDevice {
        vendor: u16::try_from(hex(vendor)?).ok()?,
        device: u16::try_from(hex(device)?).ok()?,
        class: hex(class)?,
    })
}

/// The PCI functions under `sysfs_devices` (`/sys/bus/pci/devices`); unreadable ones are
/// skipped, and a missing directory (a container) means none.
pub fn scan(sysfs_devices: &Path) -> Vec<PciDevice> {
    let Ok(rd) = std::fs::read_dir(sysfs_devices) else {
        return Vec::new();
    };
    let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).ok();
    let mut out = Vec::new();
    for e in rd.flatten() {
        let d = e.path();
        if let (Some(v), Some(dev), Some(c)) =
            (read(&d, "vendor"), read(&d, "device"), read(&d, "class"))
        {
            if let Some(p) = parse(&v, &dev, &c) {
                out.push(p);
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn dev(vendor: u16, device: u16, class: u32) -> PciDevice {
        PciDevice {
            vendor,
            device,
            class,
        }
    }

    #[test]
    fn offers_the_open_driver_from_turing_on() {
        // An Intel iGPU and an RTX 3050 Mobile (GA107, 0x25a2) as a 3D controller.
        let devices = [dev(0x8086, 0x9a49, 0x030000), dev(0x10de, 0x25a2, 0x030200)];
        assert_eq!(
            advise(&devices),
            Some(Advice::Offer {
                device: "25a2".into(),
                package: "nvidia-open-dkms".into()
            })
        );
        // GTX 1050 (Pascal, 0x1c81): legacy.
        let a = advise(&[dev(0x10de, 0x1c81, 0x030000)]).unwrap();
        assert!(matches!(a, Advice::Legacy { .. }));
        assert!(a.describe().contains("nouveau"));
        assert!(a.describe().contains("nvidia-580xx-dkms"));
        // A Kepler GTX 780 (0x1004): nouveau, no AUR branch named.
        let k = advise(&[dev(0x10de, 0x1004, 0x030000)]).unwrap();
        assert_eq!(
            k,
            Advice::Legacy {
                device: "1004".into(),
                aur: None
            }
        );
        // NVIDIA's audio function is not a GPU; no NVIDIA at all is no advice.
        assert_eq!(advise(&[dev(0x10de, 0x10fa, 0x040300)]), None);
        assert_eq!(advise(&[dev(0x1234, 0x1111, 0x030000)]), None);
    }

    #[test]
    fn reads_sysfs_files() {
        let d = tempfile::tempdir().unwrap();
        for (name, v, dv, c) in [
            ("0000:00:02.0", "0x8086\n", "0x9a49\n", "0x030000\n"),
            ("0000:01:00.0", "0x10de\n", "0x2520\n", "0x030000\n"),
            ("0000:01:00.1", "0x10de\n", "0x228e\n", "0x040300\n"),
        ] {
            let p = d.path().join(name);
            std::fs::create_dir(&p).unwrap();
            std::fs::write(p.join("vendor"), v).unwrap();
            std::fs::write(p.join("device"), dv).unwrap();
            std::fs::write(p.join("class"), c).unwrap();
        }
        std::fs::create_dir(d.path().join("junk")).unwrap();
        let devices = scan(d.path());
        assert_eq!(devices.len(), 3);
        assert!(matches!(advise(&devices), Some(Advice::Offer { .. })));
        assert!(scan(&d.path().join("absent")).is_empty());
    }
}
