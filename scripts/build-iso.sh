#!/usr/bin/env bash
# Builds the KOOMPI OS Base Edition ISO on an Arch Linux host:
#
#     sudo ./scripts/build-iso.sh
#
# 1. builds KOOMPI's packages (koompi-tools with the Rust tools, koompi-branding,
#    koompi-configs) and paru into a local pacman repository (packaging/build-repo.sh, run as
#    the user who called sudo, because makepkg refuses to run as root);
# 2. copies the archiso profile (iso/) and points its pacman.conf at that repository;
# 3. runs mkarchiso;
# 4. prints the ISO's size and fails if it exceeds the budget of 1.2 GB.
#
# Needs: root, archiso, the packages packaging/build-repo.sh needs (base-devel, git, rust).
# Environment (all optional):
#   KOOMPI_BUILD_USER  who builds the packages (default: $SUDO_USER)
#   KOOMPI_REPO_DIR    use this already built repository (must hold koompi.db) and skip step 1
#   KOOMPI_WORK_DIR    mkarchiso's work directory (default: /var/tmp/koompi-iso-work; emptied first)
#   KOOMPI_OUT_DIR     where the ISO goes (default: ./out)
#   KOOMPI_KEEP_WORK   1 keeps the work directory afterwards (default: removed on success)
#   KOOMPI_ISO_MAX_BYTES  the size budget (default: 1200000000)
set -euo pipefail

# The seed's "under 1.2GB", read in decimal units (1 GB = 10^9 bytes), the stricter reading
# (1.2 GiB would be 1288490188 bytes) and the unit USB sticks and download pages use.
readonly DEFAULT_MAX_BYTES=1200000000

die() {
    printf 'build-iso: error: %s\n' "$*" >&2
    exit 1
}
step() {
    printf '\n==> %s\n' "$*"
}

root_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
profile_src="${root_dir}/iso"
work_dir="${KOOMPI_WORK_DIR:-/var/tmp/koompi-iso-work}"
out_dir="${KOOMPI_OUT_DIR:-${root_dir}/out}"
max_bytes="${KOOMPI_ISO_MAX_BYTES:-${DEFAULT_MAX_BYTES}}"

(( EUID == 0 )) || die "run as root: sudo $0"
command -v mkarchiso >/dev/null || die "mkarchiso not found: pacman -S archiso"
command -v pacman >/dev/null || die "this needs an Arch Linux host (pacman not found)"
[[ -f "${profile_src}/profiledef.sh" ]] || die "${profile_src}/profiledef.sh not found"
[[ "${max_bytes}" =~ ^[0-9]+$ ]] || die "KOOMPI_ISO_MAX_BYTES must be a number of bytes"
case "${work_dir}" in
    / | /root | /home | /var | /var/tmp | /tmp | "${root_dir}") die "refusing to use ${work_dir} as work directory" ;;
esac

tmp="$(mktemp -d /var/tmp/koompi-iso.XXXXXX)"
cleanup() {
    rm -rf -- "${tmp}"
}
trap cleanup EXIT

# 1. The local repository.
if [[ -n "${KOOMPI_REPO_DIR:-}" ]]; then
    repo_dir="$(realpath -- "${KOOMPI_REPO_DIR}")"
    step "Using the prebuilt repository ${repo_dir}"
else
    build_user="${KOOMPI_BUILD_USER:-${SUDO_USER:-}}"
    [[ -n "${build_user}" && "${build_user}" != root ]] \
        || die "makepkg does not run as root: run this with sudo from a normal account, or set KOOMPI_BUILD_USER"
    id "${build_user}" >/dev/null 2>&1 || die "no such user: ${build_user}"
    repo_dir="${tmp}/repo"
    install -d -o "${build_user}" -- "${repo_dir}"
    # The build user needs to reach the repository directory inside the private temp dir.
    chmod 0755 -- "${tmp}"
    step "Building koompi-tools, koompi-branding, koompi-configs and paru as ${build_user} (packaging/build-repo.sh)"
    runuser -u "${build_user}" -- "${root_dir}/packaging/build-repo.sh" "${repo_dir}"
fi
[[ -f "${repo_dir}/koompi.db" ]] || die "${repo_dir}/koompi.db not found: the repository was not built"

# 2. The profile, with pacman.conf pointing at the repository.
step "Preparing the profile"
profile="${tmp}/profile"
cp -a -- "${profile_src}" "${profile}"
grep -q '/@KOOMPI_LOCAL_REPO@' "${profile}/pacman.conf" \
    || die "iso/pacman.conf has no /@KOOMPI_LOCAL_REPO@ placeholder in its [koompi] section"
sed -i "s|/@KOOMPI_LOCAL_REPO@|${repo_dir}|g" "${profile}/pacman.conf"
grep -A3 '^\[koompi\]' "${profile}/pacman.conf"

# 3. mkarchiso. A stale work directory would make mkarchiso skip steps, so start empty.
step "Running mkarchiso (work: ${work_dir}, out: ${out_dir})"
rm -rf -- "${work_dir}"
mkdir -p -- "${work_dir}" "${out_dir}"
started="$(date +%s)"
mkarchiso -v -w "${work_dir}" -o "${out_dir}" "${profile}"

# 4. Size check of the ISO this run made.
iso="$(find "${out_dir}" -maxdepth 1 -name 'koompi-os-base-*.iso' -newermt "@${started}" -printf '%T@ %p\n' \
    | sort -n | tail -n 1 | cut -d' ' -f2-)"
[[ -n "${iso}" && -f "${iso}" ]] || die "mkarchiso finished but no koompi-os-base-*.iso appeared in ${out_dir}"
size="$(stat -c %s -- "${iso}")"
if [[ "${KOOMPI_KEEP_WORK:-0}" != 1 ]]; then
    rm -rf -- "${work_dir}"
fi
if [[ -n "${SUDO_USER:-}" ]]; then
    chown "${SUDO_USER}:" -- "${iso}" || true
fi

step "ISO"
printf '%s\n' "${iso}"
printf 'size: %s bytes (%s MB, %s MiB); budget %s bytes\n' "${size}" \
    "$(( size / 1000000 ))" "$(( size / 1048576 ))" "${max_bytes}"
sha256sum -- "${iso}"
if (( size > max_bytes )); then
    die "the ISO is $(( size - max_bytes )) bytes over the budget of ${max_bytes} bytes (see docs/building.md, size budget)"
fi
printf 'OK: within the budget by %s bytes. Test it: cargo xtask vm-run --iso %s\n' "$(( max_bytes - size ))" "${iso}"
