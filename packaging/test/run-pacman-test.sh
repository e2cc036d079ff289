#!/usr/bin/env bash
# Packaging test: build KOOMPI's pacman packages with makepkg as an unprivileged user, put
# them in a local repository with repo-add, install them with pacman into a throwaway root,
# check what landed where (paths, modes, contents), upgrade Arch's `filesystem` underneath the
# branding, and remove everything again.
#
#   packaging/test/run-pacman-test.sh
#
# Runs as root on Debian 12 (or Arch). Needs: pacman-package-manager makepkg libarchive-tools
# fakeroot zstd busybox-static python3 binutils man-db (and cargo unless KOOMPI_PREBUILT_BIN is set).
#   KOOMPI_PREBUILT_BIN=/path/to/target/release   use these binaries, do not run cargo
#   KOOMPI_TEST_KEEP=1                            keep the temporary directory
#
# The throwaway root gets a stand-in `filesystem` package that owns /usr/lib/os-release, the
# /etc/os-release symlink, /etc/motd and /etc/issue like Arch's, and a busybox package so that
# pacman hooks and install scriptlets really run (chrooted, as on Arch). Ends with
# `pacman-test: N passed, M failed` and fails if M > 0.
# shellcheck disable=SC2016 # check's `eval '...'` strings expand when check runs them, on purpose
# shellcheck disable=SC2317 # check runs its arguments ("$@") and trap runs cleanup: both are reached
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$here/../.." && pwd)
build_user=koompi-build
pkgs=(koompi-tools koompi-branding koompi-configs)

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "  ok    $*"; }
fail() { failed=$((failed + 1)); echo "  FAIL  $*"; }
# check DESCRIPTION COMMAND...: one counted check.
check() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}
finish() {
    echo "pacman-test: $passed passed, $failed failed"
    ((failed == 0))
    exit
}
# setup_failed MESSAGE: a step the rest depends on failed; count it and stop.
setup_failed() {
    fail "$*"
    finish
}
section() { echo "== $*"; }

same_file() { [[ -f $1 && -f $2 ]] && cmp -s "$1" "$2"; }
mode_is() { [[ -e $1 && $(stat -c %a "$1") == "$2" ]]; }
owner_root() { [[ $(stat -c %u:%g "$1") == 0:0 ]]; }
absent() { [[ ! -e $1 && ! -L $1 ]]; }
log_has() { grep -qF -- "$2" "$1"; }
log_lacks() { ! grep -qiF -- "$2" "$1"; }

section "prerequisites"
if ((EUID != 0)); then
    setup_failed "must run as root (creates $build_user, chroots pacman hooks into the test root)"
fi
missing=()
for tool in pacman makepkg repo-add bsdtar fakeroot zstd busybox python3 strip runuser useradd cmp man; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
    setup_failed "missing tools: ${missing[*]} (apt-get install pacman-package-manager makepkg libarchive-tools fakeroot zstd busybox-static python3 binutils man-db)"
fi
ok "tools present ($(pacman --version | sed -n 's/.*\(Pacman v[0-9.]*\).*/\1/p'))"
# The busybox that goes into the test root must not need the host's shared libraries.
if ldd "$(command -v busybox)" >/dev/null 2>&1; then
    setup_failed "$(command -v busybox) is dynamically linked; install busybox-static"
fi

if ! id "$build_user" >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$build_user" || setup_failed "useradd $build_user"
fi
ok "unprivileged build user $build_user"

T=$(mktemp -d /tmp/koompi-pacman-test.XXXXXX) || setup_failed "mktemp"
cleanup() {
    if [[ -n ${KOOMPI_TEST_KEEP:-} ]]; then echo "kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
ROOT=$T/root
mkdir -p "$T/src" "$T/bin" "$T/fake" "$T/tmp" "$T/logs"

section "binaries"
if [[ -n ${KOOMPI_PREBUILT_BIN:-} ]]; then
    bindir=$KOOMPI_PREBUILT_BIN
    echo "  using prebuilt binaries in $bindir"
else
    echo "  cargo build --release -p koompi-cli"
    (cd "$repo_root" && cargo build --release -p koompi-cli --quiet) ||
        setup_failed "cargo build --release -p koompi-cli"
    bindir=${CARGO_TARGET_DIR:-$repo_root/target}/release
fi
mapfile -t built_bins < <(find "$bindir" -maxdepth 1 -type f -name 'koompi*' -perm -u+x -printf '%f\n' | sort)
((${#built_bins[@]})) || setup_failed "no koompi* executables in $bindir"
cp "${built_bins[@]/#/$bindir/}" "$T/bin/"

# The binaries the PKGBUILD lists, and the ones the workspace declares.
mapfile -t listed_bins < <(startdir=$repo_root/packaging/koompi-tools bash -c \
    'source "$startdir/PKGBUILD" && printf "%s\n" "${_bins[@]}"')
mapfile -t declared_bins < <(
    for toml in "$repo_root"/crates/*/Cargo.toml; do
        crate=$(dirname "$toml")
        awk '/^\[\[bin\]\]/{b=1;next} /^\[/{b=0} b&&/^name *=/{gsub(/[" ]/,"");sub(/^name=/,"");print}' "$toml"
        for f in "$crate"/src/bin/*.rs; do [[ -f $f ]] && basename "$f" .rs; done
        if [[ -f $crate/src/main.rs ]]; then
            sed -n 's/^name *= *"\(.*\)"/\1/p' "$toml" | head -n 1
        fi
    done | grep '^koompi' | sort -u
)
for b in "${declared_bins[@]}"; do
    check "workspace binary $b is listed in koompi-tools' _bins" \
        grep -qxF -- "$b" <(printf '%s\n' "${listed_bins[@]}")
done
for b in "${listed_bins[@]}"; do
    check "listed binary $b was built" test -x "$T/bin/$b"
done

section "versions"
workspace_version=$(awk '/^\[/{s=($0=="[workspace.package]")} s&&/^version *=/{gsub(/[" ]/,"");sub(/^version=/,"");print;exit}' "$repo_root/Cargo.toml")
for p in "${pkgs[@]}"; do
    v=$(sed -n 's/^pkgver=\([^ #]*\).*/\1/p' "$repo_root/packaging/$p/PKGBUILD")
    check "$p pkgver $v = workspace version $workspace_version" test "$v" = "$workspace_version"
done

section "source tree for the build user"
cp -a "$repo_root/Cargo.toml" "$repo_root/packaging" "$repo_root/system" "$T/src/"
[[ -d $repo_root/configs ]] && cp -a "$repo_root/configs" "$T/src/"
mkdir -p "$T/src/branding"
[[ -d $repo_root/branding ]] && cp -a "$repo_root/branding/." "$T/src/branding/"
# Branding the other half of the project has not committed yet: throwaway stand-ins here only.
b=$T/src/branding
placeholder() { echo "  note: branding/$1 is missing; using a throwaway stand-in"; }
for f in motd issue os-release fastfetch/config.jsonc; do
    if [[ ! -f $b/$f ]]; then
        placeholder "$f"
        mkdir -p "$(dirname "$b/$f")"
        case $f in
        os-release) printf 'NAME="KOOMPI OS"\nID=koompi\nID_LIKE=arch\nPRETTY_NAME="KOOMPI OS Base Edition"\n' >"$b/$f" ;;
        fastfetch/config.jsonc) printf '{\n    "modules": ["os"]\n}\n' >"$b/$f" ;;
        *) printf 'KOOMPI OS (%s stand-in)\n' "$f" >"$b/$f" ;;
        esac
    fi
done
if [[ -z $(find "$b/plymouth/koompi" -type f 2>/dev/null) ]]; then
    placeholder "plymouth/koompi/"
    mkdir -p "$b/plymouth/koompi"
    printf '[Plymouth Theme]\nName=KOOMPI\nModuleName=script\n\n[script]\nImageDir=/usr/share/plymouth/themes/koompi\nScriptFile=/usr/share/plymouth/themes/koompi/koompi.script\n' >"$b/plymouth/koompi/koompi.plymouth"
    printf 'Window.SetBackgroundTopColor(0.05, 0.07, 0.09);\nWindow.SetBackgroundBottomColor(0.05, 0.07, 0.09);\n' >"$b/plymouth/koompi/koompi.script"
fi
if ! compgen -G "$b/wallpapers/*.png" >/dev/null; then
    placeholder "wallpapers/*.png"
    mkdir -p "$b/wallpapers"
    # A 1x1 #1e88e5 PNG.
    base64 -d >"$b/wallpapers/koompi-placeholder.png" <<<'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVQI12OQe9EKAAKoAaWEsJqBAAAAAElFTkSuQmCC'
fi
chown -R "$build_user:" "$T"
chmod 0755 "$T"
mkdir -p "$ROOT/var/lib/pacman" "$ROOT/var/log"

section "makepkg.conf for this host"
cat >"$T/makepkg.conf" <<'EOF'
# Minimal makepkg configuration for the packaging test (Debian's defaults differ from Arch's).
CARCH="x86_64"
CHOST="x86_64-pc-linux-gnu"
PACKAGER="KOOMPI packaging test <packaging-test@koompi.invalid>"
BUILDENV=(!distcc !color !ccache !check !sign)
OPTIONS=(strip docs !libtool !staticlibs emptydirs zipman purge !debug !lto)
INTEGRITY_CHECK=(sha256)
STRIP_BINARIES="--strip-all"
STRIP_SHARED="--strip-unneeded"
STRIP_STATIC="--strip-debug"
MAN_DIRS=({usr{,/local}{,/share},opt/*}/{man,info})
DOC_DIRS=(usr/{,local/}{,share/}{doc,gtk-doc} opt/*/{doc,gtk-doc})
PURGE_TARGETS=(usr/{,share}/info/dir .packlist *.pod)
DBGSRCDIR="/usr/src/debug"
COMPRESSZST=(zstd -c -T0 -q -)
PKGEXT='.pkg.tar.zst'
SRCEXT='.src.tar.gz'
EOF
ok "makepkg.conf written"

# makepkg asks pacman for the builder's installed packages (.BUILDINFO); this host has no pacman
# database, so point that query at an empty one instead of the host's /var/lib/pacman.
mkdir -p "$T/hostdb/local"
pacman --dbpath "$T/hostdb" -Q >/dev/null 2>&1 # writes the database version stamp
printf '#!/bin/sh\nexec pacman --dbpath "%s" "$@"\n' "$T/hostdb" >"$T/pacman-host"
chmod 0755 "$T/pacman-host"
export PACMAN=$T/pacman-host

section "build-repo.sh"
env -u SUDO_USER "$T/src/packaging/build-repo.sh" --no-paru "$T/refused" >"$T/logs/refuse.out" 2>"$T/logs/refuse.err"
rc=$?
check "build-repo.sh refuses plain root (exit $rc, one line)" \
    test "$rc" -ne 0 -a "$(wc -l <"$T/logs/refuse.err")" -eq 1
check "build-repo.sh explains the refusal" log_has "$T/logs/refuse.err" "cannot run as root"

if SUDO_USER=$build_user MAKEPKG_CONF=$T/makepkg.conf KOOMPI_PREBUILT_BIN=$T/bin TMPDIR=$T/tmp \
    "$T/src/packaging/build-repo.sh" --no-paru "$T/repo" >"$T/logs/build.log" 2>&1; then
    ok "build-repo.sh --no-paru built the packages as $build_user"
else
    sed 's/^/    | /' "$T/logs/build.log" | tail -n 30
    setup_failed "build-repo.sh --no-paru"
fi
for p in "${pkgs[@]}"; do
    f=$(compgen -G "$T/repo/$p-$workspace_version-1-*.pkg.tar.zst" | head -n 1)
    check "package file $p-$workspace_version-1 exists" test -n "$f"
    [[ -n $f ]] && check "$p package is owned by $build_user (built unprivileged)" \
        test "$(stat -c %U "$f")" = "$build_user"
done
check "koompi-tools is x86_64, the others any" \
    test -n "$(compgen -G "$T/repo/koompi-tools-*-x86_64.pkg.tar.zst")" \
    -a -n "$(compgen -G "$T/repo/koompi-branding-*-any.pkg.tar.zst")" \
    -a -n "$(compgen -G "$T/repo/koompi-configs-*-any.pkg.tar.zst")"
db_entries=$(bsdtar -tf "$T/repo/koompi.db.tar.gz" 2>/dev/null | grep -c '/desc$')
check "koompi.db has the three packages ($db_entries entries)" test "$db_entries" -eq 3
check "koompi.db symlink exists (repo-add)" test -L "$T/repo/koompi.db"
check "the repository tree was not touched (no src/ or pkg/ beside the PKGBUILDs)" \
    test -z "$(find "$T/src/packaging" -mindepth 2 -maxdepth 2 -type d \( -name src -o -name pkg \))"

section "stand-in Arch base packages (filesystem, busybox)"
arch_issue='Arch Linux \r (\l)'
make_fake_filesystem() { # PKGREL BUILD_ID
    local dir=$T/fake/filesystem-$1
    mkdir -p "$dir"
    cat >"$dir/PKGBUILD" <<EOF
pkgname=filesystem
pkgver=2025.01.01
pkgrel=$1
pkgdesc='Stand-in for Arch filesystem: owns os-release, motd and issue'
arch=('any')
license=('GPL-3.0-or-later')
backup=('etc/issue' 'etc/motd')
package() {
  cd "\$pkgdir"
  install -d -m755 etc usr/bin usr/lib usr/share/factory/etc var/lib
  install -d -m1777 tmp
  ln -s usr/bin bin
  ln -s usr/bin sbin
  ln -s usr/lib lib
  printf 'NAME="Arch Linux"\nPRETTY_NAME="Arch Linux"\nID=arch\nBUILD_ID=$2\n' >usr/lib/os-release
  ln -s ../usr/lib/os-release etc/os-release
  : >etc/motd
  printf '%s\n\n' '$arch_issue' >etc/issue
  cp etc/motd etc/issue usr/share/factory/etc/
}
EOF
}
make_fake_filesystem 1 rolling
make_fake_filesystem 2 rolling-upgraded
mkdir -p "$T/fake/busybox"
cp "$(command -v busybox)" "$T/fake/busybox/busybox"
cat >"$T/fake/busybox/PKGBUILD" <<'EOF'
pkgname=koompi-test-busybox
pkgver=1
pkgrel=1
pkgdesc='A shell and core utilities so hooks and scriptlets run in the test root'
arch=('x86_64')
license=('GPL-2.0-only')
options=('!strip')
package() {
  install -Dm755 "$startdir/busybox" "$pkgdir/usr/bin/busybox"
  local a
  for a in sh cat cp cut chmod echo ln ls mkdir mv printf rm sha256sum touch; do
    ln -s busybox "$pkgdir/usr/bin/$a"
  done
}
EOF
chown -R "$build_user:" "$T/fake"
fake_ok=1
for d in filesystem-1 filesystem-2 busybox; do
    if ! (cd "$T/fake/$d" && runuser -u "$build_user" -- env MAKEPKG_CONF="$T/makepkg.conf" \
        PKGDEST="$T/fake/out/$d" BUILDDIR="$T/tmp/fake-$d" makepkg --nodeps --noconfirm --force \
        >"$T/logs/fake-$d.log" 2>&1); then
        fake_ok=0
        tail -n 20 "$T/logs/fake-$d.log"
    fi
done
((fake_ok)) || setup_failed "makepkg of the stand-in packages"
fs1=$(compgen -G "$T/fake/out/filesystem-1/filesystem-*.pkg.tar.zst")
fs2=$(compgen -G "$T/fake/out/filesystem-2/filesystem-*.pkg.tar.zst")
bb=$(compgen -G "$T/fake/out/busybox/koompi-test-busybox-*.pkg.tar.zst")

cat >"$T/pacman.conf" <<EOF
[options]
RootDir = $ROOT
DBPath = $ROOT/var/lib/pacman/
CacheDir = $ROOT/var/cache/pacman/pkg/
LogFile = $ROOT/var/log/pacman.log
GPGDir = $ROOT/etc/pacman.d/gnupg/
HookDir = $ROOT/etc/pacman.d/hooks/
Architecture = x86_64
SigLevel = Never
LocalFileSigLevel = Never

[koompi]
Server = file://$T/repo
EOF
pac() {
    pacman --config "$T/pacman.conf" --root "$ROOT" --dbpath "$ROOT/var/lib/pacman" \
        --cachedir "$ROOT/var/cache/pacman/pkg" --logfile "$ROOT/var/log/pacman.log" \
        --noconfirm --color never "$@"
}
# pac_files PKG...: the paths pacman lists for packages, without the test root's prefix.
pac_files() {
    pac -Qlq "$@" | while IFS= read -r f; do printf '%s\n' "${f#"$ROOT"}"; done
}
# run_pac LOG ARGS...: pacman into the test root, output kept in LOG (and shown on failure).
run_pac() {
    local log=$1
    shift
    if pac --noprogressbar "$@" >"$log" 2>&1; then return 0; fi
    sed 's/^/    | /' "$log" | tail -n 30
    return 1
}
run_pac "$T/logs/base.log" -U "$fs1" "$bb" || setup_failed "pacman -U stand-in filesystem and busybox"
ok "stand-in filesystem and busybox installed"
cp "$ROOT/usr/lib/os-release" "$T/arch-os-release-1"
cp "$ROOT/etc/issue" "$T/arch-issue"
cp "$ROOT/etc/motd" "$T/arch-motd"

section "pacman -Sy koompi-tools koompi-branding koompi-configs"
if run_pac "$T/logs/install.log" -Sy --nodeps --nodeps --needed "${pkgs[@]}"; then
    ok "pacman installed the three packages"
else
    setup_failed "pacman -Sy --nodeps --nodeps --needed ${pkgs[*]}"
fi
check "no file conflicts reported" eval \
    'log_lacks "$T/logs/install.log" "conflicting files" && log_lacks "$T/logs/install.log" "exists in filesystem"'

check "no errors reported" log_lacks "$T/logs/install.log" "error"
check "the branding hook ran" log_has "$T/logs/install.log" "Applying KOOMPI OS branding"
check "koompi-tools' install scriptlet ran" log_has "$T/logs/install.log" "systemctl enable koompi-snapshot-daily.timer"
for p in "${pkgs[@]}"; do
    check "pacman -Q $p = $workspace_version-1" \
        test "$(pac -Q "$p" 2>/dev/null)" = "$p $workspace_version-1"
done
check "pacman -Qkk finds every file intact" eval 'pac -Qkk "${pkgs[@]}" >"$T/logs/qkk.log" 2>&1'
not_root=$(pac_files "${pkgs[@]}" | while IFS= read -r f; do owner_root "$ROOT$f" || echo "$f"; done)
check "every installed path is owned by root:root (${not_root:-all})" test -z "$not_root"

section "koompi-tools: files and modes"
pac_files koompi-tools >"$T/tools.list"
for b in "${listed_bins[@]}"; do
    f=$ROOT/usr/bin/$b
    check "/usr/bin/$b is in the package" grep -qxF "/usr/bin/$b" "$T/tools.list"
    check "/usr/bin/$b mode 755 and executable" eval 'mode_is "$f" 755 && [[ -x $f ]]'
    out=$("$f" --version 2>&1)
    check "/usr/bin/$b --version says $b $workspace_version ('$out')" test "$out" = "$b $workspace_version"
    check "the man page of $b is in the package" grep -qE "^/usr/share/man/man1/$b\.1(\.gz)?$" "$T/tools.list"
    check "bash, zsh and fish completions of $b are in the package" eval \
        'grep -qxF "/usr/share/bash-completion/completions/$b" "$T/tools.list" &&
         grep -qxF "/usr/share/zsh/site-functions/_$b" "$T/tools.list" &&
         grep -qxF "/usr/share/fish/vendor_completions.d/$b.fish" "$T/tools.list"'
    # Installed where man and the shells look, and usable: man renders the page, bash
    # loads the completion and registers it for the command.
    check "man $b renders the installed page" eval \
        'MANPATH="$ROOT/usr/share/man" MANPAGER=cat MANWIDTH=80 man "$b" >"$T/logs/man-$b.txt" 2>&1 &&
         grep -q "^NAME" "$T/logs/man-$b.txt" && grep -q "^       $b" "$T/logs/man-$b.txt"'
    check "bash loads the installed completion of $b" eval \
        'bash -c "source \"\$1\" && complete -p \"\$2\"" _ "$ROOT/usr/share/bash-completion/completions/$b" "$b" >/dev/null 2>&1'
done
check "man koompi-snapshot shows its subcommands (rollback, cleanup)" eval \
    'grep -q "rollback" "$T/logs/man-koompi-snapshot.txt" && grep -q "cleanup" "$T/logs/man-koompi-snapshot.txt"'
# Every page a SUBCOMMANDS section names is installed (man koompi-snapshot-rollback).
named=$(sed -n 's/^       \(koompi[a-z-]*\)(1)$/\1/p' "$T"/logs/man-*.txt | sort -u)
missing_pages=$(for p in $named; do grep -qE "^/usr/share/man/man1/$p\.1(\.gz)?$" "$T/tools.list" || echo "$p"; done)
check "every subcommand page the man pages name is installed ($(wc -w <<<"$named") named${missing_pages:+; missing: $missing_pages})" \
    eval '[[ -n $named && -z $missing_pages ]]'
check "man koompi-snapshot-rollback renders" eval \
    'MANPATH="$ROOT/usr/share/man" MANPAGER=cat MANWIDTH=80 man koompi-snapshot-rollback 2>&1 | grep -q "^NAME"'
check "man koompi describes each operation (KOOMPI INSTALL, KOOMPI UPGRADE)" eval \
    'grep -q "^KOOMPI INSTALL" "$T/logs/man-koompi.txt" && grep -q "^KOOMPI UPGRADE" "$T/logs/man-koompi.txt"'
for unit in "$T/src/system/systemd"/*; do
    u=$(basename "$unit")
    f=$ROOT/usr/lib/systemd/system/$u
    check "/usr/lib/systemd/system/$u, mode 644, same as system/systemd/$u" \
        eval 'grep -qxF "/usr/lib/systemd/system/$u" "$T/tools.list" && mode_is "$f" 644 && same_file "$f" "$unit"'
done
for unit in "$T/src/system/systemd-user"/*; do
    u=$(basename "$unit")
    f=$ROOT/usr/lib/systemd/user/$u
    check "/usr/lib/systemd/user/$u, mode 644, same as system/systemd-user/$u" \
        eval 'grep -qxF "/usr/lib/systemd/user/$u" "$T/tools.list" && mode_is "$f" 644 && same_file "$f" "$unit"'
done
f=$ROOT/etc/grub.d/42_koompi_watchdog
check "/etc/grub.d/42_koompi_watchdog, mode 755, same as system/grub.d/" \
    eval 'mode_is "$f" 755 && same_file "$f" "$T/src/system/grub.d/42_koompi_watchdog"'
f=$ROOT/etc/snapper/configs/root
check "/etc/snapper/configs/root (where snapper reads it), mode 640, same as system/snapper/root" \
    eval 'mode_is "$f" 640 && same_file "$f" "$T/src/system/snapper/root"'
f=$ROOT/etc/koompi/watchdog.conf
check "/etc/koompi/watchdog.conf, mode 644, same as system/koompi/watchdog.conf" \
    eval 'mode_is "$f" 644 && same_file "$f" "$T/src/system/koompi/watchdog.conf"'
pac -Qii koompi-tools >"$T/tools.info"
check "both configs are backup= files" eval \
    'grep -q "etc/snapper/configs/root" "$T/tools.info" && grep -q "etc/koompi/watchdog.conf" "$T/tools.info"'
check "nothing under /usr/local" eval '! grep -q "^/usr/local" "$T/tools.list"'

section "koompi-branding: files"
b=$T/src/branding
check "/usr/lib/os-release is KOOMPI's (byte-identical to branding/os-release)" \
    same_file "$ROOT/usr/lib/os-release" "$b/os-release"
check "/etc/os-release is still filesystem's symlink to ../usr/lib/os-release" \
    test "$(readlink "$ROOT/etc/os-release")" = ../usr/lib/os-release
check "/etc/os-release reads KOOMPI's os-release" same_file "$ROOT/etc/os-release" "$b/os-release"
check "/etc/motd is branding/motd" same_file "$ROOT/etc/motd" "$b/motd"
check "/etc/issue is branding/issue" same_file "$ROOT/etc/issue" "$b/issue"
check "os-release, motd, issue mode 644" \
    eval 'mode_is "$ROOT/usr/lib/os-release" 644 && mode_is "$ROOT/etc/motd" 644 && mode_is "$ROOT/etc/issue" 644'
check "/usr/lib/os-release and /etc/motd stay owned by filesystem (no conflict)" eval \
    '[[ $(pac -Qqo "$ROOT/usr/lib/os-release") == filesystem && $(pac -Qqo "$ROOT/etc/motd") == filesystem ]]'
check "/etc/fastfetch/config.jsonc is branding/fastfetch/config.jsonc, mode 644" \
    eval 'same_file "$ROOT/etc/fastfetch/config.jsonc" "$b/fastfetch/config.jsonc" && mode_is "$ROOT/etc/fastfetch/config.jsonc" 644'
n=0 bad=0
while IFS= read -r -d '' f; do
    n=$((n + 1))
    t=$ROOT/usr/share/plymouth/themes/koompi/${f#"$b/plymouth/koompi/"}
    { same_file "$t" "$f" && mode_is "$t" 644; } || bad=$((bad + 1))
done < <(find "$b/plymouth/koompi" -type f -print0)
check "Plymouth theme: $n files in /usr/share/plymouth/themes/koompi/, identical, 644" test "$bad" -eq 0 -a "$n" -gt 0
n=0 bad=0
for f in "$b"/wallpapers/*.png; do
    n=$((n + 1))
    t=$ROOT/usr/share/koompi/wallpapers/$(basename "$f")
    { same_file "$t" "$f" && mode_is "$t" 644; } || bad=$((bad + 1))
done
check "wallpapers: $n PNGs in /usr/share/koompi/wallpapers/, identical, 644" test "$bad" -eq 0 -a "$n" -gt 0
check "hook script is executable" test -x "$ROOT/usr/share/libalpm/scripts/koompi-branding"

section "koompi-configs: files"
n=0 bad=0
while IFS= read -r -d '' f; do
    n=$((n + 1))
    t=$ROOT/usr/share/koompi/configs/${f#"$T/src/configs/"}
    { same_file "$t" "$f" && mode_is "$t" 644; } || { bad=$((bad + 1)); echo "    differs: $t"; }
done < <(find "$T/src/configs" -type f -print0)
check "$n config files under /usr/share/koompi/configs/, identical, 644" test "$bad" -eq 0 -a "$n" -gt 0
for app in hyprland/hyprland.conf waybar/config waybar/style.css foot/foot.ini fuzzel/fuzzel.ini \
    zellij/config.kdl neovim/init.lua openbox/rc.xml openbox/autostart tint2/tint2rc rofi/config.rasi; do
    check "configs/$app shipped" test -f "$ROOT/usr/share/koompi/configs/$app"
done
c=$ROOT/usr/share/koompi/configs
check "waybar/config parses as JSONC" python3 -c '
import json, re, sys
text = re.sub(r"^\s*//.*$", "", open(sys.argv[1]).read(), flags=re.M)
json.loads(text)' "$c/waybar/config"
check "openbox/rc.xml is well-formed XML" python3 -c '
import sys, xml.etree.ElementTree as ET
ET.parse(sys.argv[1])' "$c/openbox/rc.xml"
check "openbox/autostart is valid sh" sh -n "$c/openbox/autostart"
for home in hyprland/home/hyprland.conf waybar/home/config waybar/home/style.css foot/home/foot.ini \
    fuzzel/home/fuzzel.ini neovim/home/init.lua openbox/home/autostart rofi/home/config.rasi \
    zellij/layouts/koompi.kdl palette.toml; do
    check "configs/$home shipped" test -f "$c/$home"
done
f=$ROOT/usr/share/themes/KOOMPI/openbox-3/themerc
check "the KOOMPI Openbox theme in /usr/share/themes (rc.xml names it), mode 644, same as configs/" \
    eval 'mode_is "$f" 644 && same_file "$f" "$T/src/configs/openbox/themes/KOOMPI/openbox-3/themerc"'
# Khmer input, system-wide: where fcitx5 and /etc/profile read them.
pac_files koompi-configs >"$T/configs.list"
f=$ROOT/etc/xdg/fcitx5/profile
check "/etc/xdg/fcitx5/profile (where fcitx5 reads a profile the user has not got), mode 644, same as configs/fcitx5/profile" \
    eval 'grep -qxF /etc/xdg/fcitx5/profile "$T/configs.list" && mode_is "$f" 644 && same_file "$f" "$T/src/configs/fcitx5/profile"'
check "the profile's group lists keyboard-us first, then keyboard-kh and m17n_km_yannis" eval \
    '[[ $(sed -n "s/^Name=//p" "$f" | tr "\n" " ") == "Default keyboard-us keyboard-kh m17n_km_yannis " ]]'
f=$ROOT/etc/profile.d/koompi-input-method.sh
check "/etc/profile.d/koompi-input-method.sh, mode 644, same as configs/fcitx5/koompi-input-method.sh" \
    eval 'grep -qxF /etc/profile.d/koompi-input-method.sh "$T/configs.list" && mode_is "$f" 644 && same_file "$f" "$T/src/configs/fcitx5/koompi-input-method.sh"'
check "sourcing it sets XMODIFIERS, QT_IM_MODULE, GTK_IM_MODULE for fcitx (X11 session)" eval \
    '[[ $(env -i XDG_SESSION_TYPE=x11 sh -c ". \"\$1\" && echo \"\$XMODIFIERS \$QT_IM_MODULE \$GTK_IM_MODULE\"" _ "$f") == "@im=fcitx fcitx fcitx" ]]'
check "in a Wayland session it leaves GTK_IM_MODULE unset, and keeps a value already set" eval \
    '[[ $(env -i XDG_SESSION_TYPE=wayland QT_IM_MODULE=ibus sh -c ". \"\$1\" && echo \"\$XMODIFIERS \$QT_IM_MODULE \${GTK_IM_MODULE-unset}\"" _ "$f") == "@im=fcitx ibus unset" ]]'
check "both are backup= files" eval \
    'pac -Qii koompi-configs | grep -q "etc/xdg/fcitx5/profile" && pac -Qii koompi-configs | grep -q "etc/profile.d/koompi-input-method.sh"'

section "filesystem upgrade underneath the branding"
run_pac "$T/logs/fs-upgrade.log" -U "$fs2"
check "pacman -U filesystem (new os-release) succeeded" test $? -eq 0
check "the hook ran again on the filesystem upgrade" log_has "$T/logs/fs-upgrade.log" "Applying KOOMPI OS branding"
check "/usr/lib/os-release is KOOMPI's again" same_file "$ROOT/usr/lib/os-release" "$b/os-release"
bsdtar -xOf "$fs2" usr/lib/os-release >"$T/arch-os-release-2"
check "the new Arch os-release is kept for removal" \
    same_file "$ROOT/var/lib/koompi-branding/os-release.orig" "$T/arch-os-release-2"
check "no .pacnew for motd or issue" test -z "$(find "$ROOT/etc" -name '*.pacnew')"

section "reinstall, local edits"
run_pac "$T/logs/reinstall.log" -S --nodeps --nodeps koompi-branding
check "pacman -S koompi-branding (reinstall) succeeded" test $? -eq 0
check "branding still in place after reinstall" eval \
    'same_file "$ROOT/usr/lib/os-release" "$b/os-release" && same_file "$ROOT/etc/motd" "$b/motd"'
echo "Welcome to the Grade 6 lab" >"$ROOT/etc/motd"
run_pac "$T/logs/edit.log" -S --nodeps --nodeps koompi-branding
check "a locally edited /etc/motd is kept" eval \
    '[[ $(cat "$ROOT/etc/motd") == "Welcome to the Grade 6 lab" ]] && log_has "$T/logs/edit.log" "edited locally"'
cp "$b/motd" "$ROOT/etc/motd"

section "pacman -R"
pac_files "${pkgs[@]}" | grep -v '/$' >"$T/files.list"
echo 'SUCCESS_DELAY_SEC="120"' >>"$ROOT/etc/koompi/watchdog.conf"
run_pac "$T/logs/remove.log" -R "${pkgs[@]}"
check "pacman -R of the three packages succeeded" test $? -eq 0
check "the restore hook ran" log_has "$T/logs/remove.log" "Restoring the distribution's"
check "no errors on removal" log_lacks "$T/logs/remove.log" "error"
left=()
while IFS= read -r f; do
    if [[ -e $ROOT$f || -L $ROOT$f ]]; then
        case $f in
        /usr/lib/os-release | /etc/motd | /etc/issue) ;; # filesystem's, restored below
        *) left+=("$f") ;;
        esac
    fi
done <"$T/files.list"
check "every packaged file is gone (${#left[@]} left: ${left[*]:-none})" test "${#left[@]}" -eq 0
check "the edited /etc/koompi/watchdog.conf is saved as .pacsave" \
    grep -q 'SUCCESS_DELAY_SEC="120"' "$ROOT/etc/koompi/watchdog.conf.pacsave"
check "the unedited snapper config leaves no .pacsave" absent "$ROOT/etc/snapper/configs/root.pacsave"
check "/usr/lib/os-release is Arch's again" same_file "$ROOT/usr/lib/os-release" "$T/arch-os-release-2"
check "/etc/motd is Arch's again" same_file "$ROOT/etc/motd" "$T/arch-motd"
check "/etc/issue is Arch's again" same_file "$ROOT/etc/issue" "$T/arch-issue"
check "/etc/os-release is still the symlink" test "$(readlink "$ROOT/etc/os-release")" = ../usr/lib/os-release
check "/var/lib/koompi-branding is gone" absent "$ROOT/var/lib/koompi-branding"
# Anything in the root that no remaining package owns, besides pacman's own state.
pac_files >"$T/owned.list"
strays=$(cd "$ROOT" && find . -mindepth 1 \( -path ./var/lib/pacman -o -path ./var/cache/pacman \
    -o -path ./var/log \) -prune -o -print | sed 's|^\.||' |
    while IFS= read -r p; do
        [[ -d $ROOT$p && ! -L $ROOT$p ]] && p=$p/
        grep -qxF -- "$p" "$T/owned.list" || echo "$p"
    done | grep -vxF -e /var/ -e /var/cache/ -e /etc/koompi/ -e /etc/koompi/watchdog.conf.pacsave)
check "no stray files or directories left (${strays:-none})" test -z "$strays"

section "branding script on its own (busybox sh and dash)"
for shell in "busybox sh" "/bin/sh"; do
    r=$T/script-root-${shell//[ \/]/-}
    mkdir -p "$r/usr/share/koompi/branding" "$r/etc" "$r/usr/lib"
    cp "$b/os-release" "$b/motd" "$b/issue" "$r/usr/share/koompi/branding/"
    printf 'ID=arch\n' >"$r/usr/lib/os-release"
    printf 'ID=arch\n' >"$r/etc/os-release" # a regular file, not the symlink
    echo "our own issue" >"$r/etc/issue"    # edited: must be kept
    s=$T/src/packaging/koompi-branding/koompi-branding.sh
    KOOMPI_BRANDING_ROOT=$r $shell "$s" apply >"$T/logs/script.log" 2>&1
    check "[$shell] apply: os-release in both places, edited issue kept, motd created" eval \
        'same_file "$r/usr/lib/os-release" "$b/os-release" && same_file "$r/etc/os-release" "$b/os-release" &&
         [[ $(cat "$r/etc/issue") == "our own issue" ]] && same_file "$r/etc/motd" "$b/motd"'
    KOOMPI_BRANDING_ROOT=$r $shell "$s" apply >>"$T/logs/script.log" 2>&1
    KOOMPI_BRANDING_ROOT=$r $shell "$s" restore >>"$T/logs/script.log" 2>&1
    check "[$shell] restore: originals back, created motd removed, state gone" eval \
        '[[ $(cat "$r/usr/lib/os-release") == ID=arch && $(cat "$r/etc/os-release") == ID=arch ]] &&
         [[ $(cat "$r/etc/issue") == "our own issue" ]] && absent "$r/etc/motd" && absent "$r/var/lib/koompi-branding"'
    rm -f "$r/etc/os-release"
    KOOMPI_BRANDING_ROOT=$r $shell "$s" apply >>"$T/logs/script.log" 2>&1
    check "[$shell] a missing /etc/os-release becomes the symlink, and goes on restore" eval \
        '[[ $(readlink "$r/etc/os-release") == ../usr/lib/os-release ]] &&
         KOOMPI_BRANDING_ROOT=$r $shell "$s" restore >>"$T/logs/script.log" 2>&1 && absent "$r/etc/os-release"'
done

finish
