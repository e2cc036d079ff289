#!/usr/bin/env bash
# Build KOOMPI's packages (koompi-tools, koompi-branding, koompi-configs) from this checkout,
# and paru from the AUR, into a local pacman repository named `koompi`:
#
#   packaging/build-repo.sh [--no-paru] [--paru-bin] OUTDIR
#
# OUTDIR receives the packages and koompi.db.tar.gz (repo-add). Run it as a normal user on
# an Arch host; makepkg refuses root, so under sudo it drops to $SUDO_USER.
#
# Environment:
#   KOOMPI_PREBUILT_BIN  directory with already built binaries (target/release): koompi-tools
#                        packages them instead of running cargo
#   MAKEPKG_CONF         makepkg configuration (default /etc/makepkg.conf, plus ~/.makepkg.conf)
#   CARGO_TARGET_DIR     where cargo builds koompi-tools (default: makepkg's build directory)
#
# Options:
#   --no-paru   skip paru (tests, or when the repository already has it)
#   --paru-bin  package paru-bin (upstream's released binary) instead of building paru
set -euo pipefail

usage() { echo "usage: $0 [--no-paru] [--paru-bin] OUTDIR" >&2; exit 2; }

paru=paru
outdir=
while (($#)); do
    case $1 in
    --no-paru) paru= ;;
    --paru-bin) paru='paru-bin' ;;
    -h | --help) usage ;;
    -*) echo "build-repo.sh: unknown option $1" >&2; usage ;;
    *) [[ -z $outdir ]] || usage; outdir=$1 ;;
    esac
    shift
done
[[ -n $outdir ]] || usage

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

if ((EUID == 0)); then
    if [[ -z ${SUDO_USER:-} || $SUDO_USER == root ]]; then
        echo "build-repo.sh: makepkg cannot run as root; run this as a normal user (or with sudo from one)" >&2
        exit 1
    fi
    # OUTDIR is created for, and handed to, the user who builds.
    mkdir -p "$outdir"
    chown "$SUDO_USER": "$outdir"
    args=()
    if [[ -z $paru ]]; then args+=(--no-paru); fi
    if [[ $paru == paru-bin ]]; then args+=(--paru-bin); fi
    exec runuser -u "$SUDO_USER" -- "${BASH_SOURCE[0]}" "${args[@]}" "$outdir"
fi

for tool in makepkg repo-add bsdtar fakeroot; do
    command -v "$tool" >/dev/null || { echo "build-repo.sh: $tool not found (pacman, base-devel)" >&2; exit 1; }
done
if [[ -z ${KOOMPI_PREBUILT_BIN:-} ]] && ! command -v cargo >/dev/null; then
    echo "build-repo.sh: cargo not found; install rust or set KOOMPI_PREBUILT_BIN" >&2
    exit 1
fi
if [[ -n $paru ]]; then
    if [[ ! -f /etc/arch-release ]]; then
        echo "build-repo.sh: paru is built on an Arch host only; use --no-paru here" >&2
        exit 1
    fi
    command -v git >/dev/null || { echo "build-repo.sh: git not found" >&2; exit 1; }
fi

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
[[ -w $outdir ]] || { echo "build-repo.sh: $outdir is not writable by $(id -un)" >&2; exit 1; }

# Every PKGBUILD's pkgver must be the workspace version.
version=$(awk '/^\[/{s=($0=="[workspace.package]")} s&&/^version *=/{gsub(/[" ]/,"");sub(/^version=/,"");print;exit}' "$root/Cargo.toml")
pkgs=(koompi-tools koompi-branding koompi-configs)
for p in "${pkgs[@]}"; do
    v=$(sed -n 's/^pkgver=\([^ #]*\).*/\1/p' "$here/$p/PKGBUILD")
    if [[ $v != "$version" ]]; then
        echo "build-repo.sh: $p/PKGBUILD has pkgver=$v but Cargo.toml's workspace version is $version" >&2
        exit 1
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/koompi-build-repo.XXXXXX")
trap 'rm -rf "$work"' EXIT
export PKGDEST=$outdir BUILDDIR=$work/build SRCDEST=$work/sources
mkdir -p "$BUILDDIR" "$SRCDEST"

built=()
build_pkg() { # DIR [makepkg options...]
    local dir=$1 f
    shift
    (cd "$dir" && makepkg --force --cleanbuild --noconfirm "$@")
    while IFS= read -r f; do
        if [[ -f $f ]]; then built+=("$f"); fi
    done < <(cd "$dir" && makepkg --packagelist)
}

# KOOMPI's own packages: runtime dependencies (grub, systemd, ...) need not be on the builder.
for p in "${pkgs[@]}"; do
    echo "==> $p"
    build_pkg "$here/$p" --nodeps
done

if [[ -n $paru ]]; then
    echo "==> $paru (AUR)"
    git clone --depth 1 "https://aur.archlinux.org/$paru.git" "$work/$paru"
    # --syncdeps installs paru's build dependencies through sudo pacman if some are missing.
    build_pkg "$work/$paru" --syncdeps
fi

echo "==> repo-add $outdir/koompi.db.tar.gz"
repo-add --remove --quiet "$outdir/koompi.db.tar.gz" "${built[@]}"
printf '%s\n' "${built[@]##*/}"
