#!/usr/bin/env bash
# shellcheck disable=SC2034 # mkarchiso sources this file and reads its variables
# KOOMPI OS Base Edition: the archiso profile (archiso v88 conventions, see docs/building.md).
# mkarchiso sources this file; scripts/build-iso.sh builds it; `cargo xtask iso-lint` checks it.

iso_name="koompi-os-base"
iso_label="KOOMPI_$(date --date="@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y%m)"
iso_publisher="KOOMPI <https://koompi.com>"
iso_application="KOOMPI OS Base Edition Live/Install"
iso_version="$(date --date="@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y.%m.%d)"
install_dir="koompi"
buildmodes=('iso')
# BIOS through syslinux, UEFI (x64 and IA32) through GRUB. uefi.grub, not uefi.systemd-boot:
# systemd-boot copies the kernel and initramfs into the El Torito FAT image as well, which costs
# ISO size against the 1.2 GB budget; GRUB reads them from the ISO 9660 file system.
bootmodes=('bios.syslinux'
           'uefi.grub')
pacman_conf="pacman.conf"
# squashfs with xz, not erofs: the ISO has a hard 1.2 GB budget and xz with 1 MiB blocks and the
# x86 BCJ filter gives the smallest image archiso can make (these are releng's settings). erofs
# (baseline's lzma with the default 4 KiB physical clusters) mounts and reads faster but compresses
# worse; boot speed from USB matters less to KOOMPI than fitting on the stick and the download.
airootfs_image_type="squashfs"
airootfs_image_tool_options=('-comp' 'xz' '-Xbcj' 'x86' '-b' '1M' '-Xdict-size' '1M')
bootstrap_tarball_compression=('zstd' '-c' '-T0' '--auto-threads=logical' '--long' '-19')
# Ownership and mode of everything in airootfs/ that must not be 0:0:644 (files) or 0:0:755
# (directories): secrets and the sudo rules. The lint checks that every executable and every
# secret in airootfs/ is listed here and that every path listed here exists.
file_permissions=(
  ["/etc/shadow"]="0:0:400"
  ["/etc/gshadow"]="0:0:400"
  ["/etc/sudoers.d"]="0:0:750"
  ["/etc/sudoers.d/wheel"]="0:0:440"
)
