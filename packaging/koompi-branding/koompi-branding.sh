#!/bin/sh
# koompi-branding: put KOOMPI's identity files in place of the distribution's, or give the
# distribution's back.
#
#   koompi-branding apply     pacman hook, after koompi-branding or filesystem is installed
#                             or upgraded (koompi-branding.hook)
#   koompi-branding restore   pacman hook, before koompi-branding is removed
#                             (koompi-branding-restore.hook)
#
# Arch's `filesystem` package owns /usr/lib/os-release, the /etc/os-release symlink to it,
# /etc/motd and /etc/issue, so koompi-branding cannot own them; it ships its copies in
# /usr/share/koompi/branding/ and this script copies them over. The file each copy replaces
# is kept in /var/lib/koompi-branding/ and put back by `restore`.
#
# /usr/lib/os-release is the vendor's identity: always KOOMPI's. /etc/motd and /etc/issue are
# the administrator's: replaced only while they are empty, Arch's pristine copy
# (/usr/share/factory/etc/) or the copy KOOMPI put there before; a local edit is kept.
#
# KOOMPI_BRANDING_ROOT=/path runs it on another root directory (tests). POSIX sh; uses only
# cp, mv, rm, mkdir, chmod, ln, touch, sha256sum and cut, so it runs in a bare chroot.
set -eu

root=${KOOMPI_BRANDING_ROOT:-}
src=$root/usr/share/koompi/branding
state=$root/var/lib/koompi-branding

hash_of() { sha256sum <"$1" | cut -d ' ' -f 1; }

# same A B: both are readable files with the same bytes.
same() { [ -f "$1" ] && [ -f "$2" ] && [ "$(hash_of "$1")" = "$(hash_of "$2")" ]; }

# put SRC DEST: replace DEST by a copy of SRC, mode 0644, atomically.
put() {
    cp "$1" "$2.koompi-new"
    chmod 0644 "$2.koompi-new"
    mv -f "$2.koompi-new" "$2"
}

# apply_file NAME PATH KIND KEY: install branding/NAME at PATH. KIND is vendor or config;
# KEY names the saved state (/var/lib/koompi-branding/KEY.{orig,absent,applied}).
apply_file() {
    new=$src/$1 target=$root$2 kind=$3 key=$4
    [ -f "$new" ] || return 0
    if same "$target" "$new"; then
        cp "$new" "$state/$key.applied"
        return 0
    fi
    if [ "$kind" = config ] && [ -s "$target" ] &&
        ! same "$target" "$state/$key.applied" &&
        ! same "$target" "$root/usr/share/factory$2"; then
        echo "koompi-branding: $2 was edited locally; keeping it (KOOMPI's is /usr/share/koompi/branding/$1)"
        return 0
    fi
    if [ -e "$target" ] || [ -L "$target" ]; then
        # Keep what KOOMPI replaces, unless it is KOOMPI's own earlier copy.
        if ! same "$target" "$state/$key.applied"; then
            cp "$target" "$state/$key.orig"
            rm -f "$state/$key.absent"
        fi
    else
        mkdir -p "${target%/*}"
        touch "$state/$key.absent"
        rm -f "$state/$key.orig"
    fi
    put "$new" "$target"
    cp "$new" "$state/$key.applied"
}

# restore_file PATH KEY: put back what apply_file replaced, if the file is still KOOMPI's.
restore_file() {
    target=$root$1 key=$2
    [ -f "$state/$key.applied" ] || return 0
    if ! same "$target" "$state/$key.applied"; then
        echo "koompi-branding: $1 changed since KOOMPI installed it; leaving it"
    elif [ -f "$state/$key.orig" ]; then
        put "$state/$key.orig" "$target"
    elif [ -f "$state/$key.absent" ]; then
        rm -f "$target"
    fi
}

apply() {
    mkdir -p "$state"
    apply_file os-release /usr/lib/os-release vendor os-release
    # Arch's /etc/os-release is a symlink to ../usr/lib/os-release: nothing to do then. A
    # regular file there (older systems, other tools) gets KOOMPI's copy too; a missing one
    # becomes the symlink.
    etc=$root/etc/os-release
    if [ -L "$etc" ]; then
        :
    elif [ -e "$etc" ]; then
        apply_file os-release /etc/os-release vendor etc-os-release
    else
        mkdir -p "$root/etc"
        ln -s ../usr/lib/os-release "$etc"
        touch "$state/etc-os-release.link"
    fi
    apply_file motd /etc/motd config motd
    apply_file issue /etc/issue config issue
}

restore() {
    [ -d "$state" ] || return 0
    restore_file /usr/lib/os-release os-release
    if [ -f "$state/etc-os-release.link" ]; then
        if [ -L "$root/etc/os-release" ]; then rm -f "$root/etc/os-release"; fi
    elif [ ! -L "$root/etc/os-release" ]; then
        restore_file /etc/os-release etc-os-release
    fi
    restore_file /etc/motd motd
    restore_file /etc/issue issue
    rm -rf "$state"
}

case ${1:-} in
apply) apply ;;
restore) restore ;;
*)
    echo "usage: koompi-branding apply|restore" >&2
    exit 2
    ;;
esac
