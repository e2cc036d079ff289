#!/bin/sh
# fcitx5-probe.sh: does fcitx5 start with Khmer input for a user who never configured it?
# (issue 13)
#
# Starts a private session bus (dbus-run-session), an X server (Xvfb, on a free display it
# picks itself) and fcitx5 on them, as a user with an empty home: HOME and the XDG user
# directories are a new temporary directory, so the only profile fcitx5 can read is the
# system's, $XDG_CONFIG_DIRS/fcitx5/profile (/etc/xdg/fcitx5/profile when XDG_CONFIG_DIRS
# is unset). Then it asks fcitx5 over D-Bus (org.fcitx.Fcitx5 /controller,
# org.fcitx.Fcitx.Controller1) for its first input method group and for the input methods
# it has loaded, prints one line per fact, stops everything it started and exits with
#   0  every expectation holds,
#   1  fcitx5 ran, but an expectation does not hold (its line says "no"),
#   2  nothing could be checked (a program is missing, Xvfb or fcitx5 did not start in time,
#      another fcitx5 answered).
#
# Usage: fcitx5-probe.sh [IM...]
#   IM...  the input methods the first group must list, the first of them first. Default:
#          keyboard-us keyboard-kh m17n_km_yannis (KOOMPI's /etc/xdg/fcitx5/profile).
# Environment: XDG_CONFIG_DIRS as fcitx5 reads it (fcitx5 5.1 and later also read their
# built-in /etc/xdg/fcitx5 after it, unless SKIP_FCITX_PATH=1, which is passed on);
# FCITX5_PROBE_TIMEOUT, the seconds to wait for Xvfb and then for fcitx5 (default 30 each);
# TMPDIR for the temporary directory.
# Needs: fcitx5 (with fcitx5-m17n and m17n-db for the m17n methods), Xvfb, dbus-run-session
# and dbus-send (Arch: fcitx5 fcitx5-m17n xorg-server-xvfb dbus; Debian: fcitx5 fcitx5-m17n
# xvfb dbus-daemon dbus-bin dbus-session-bus-common). Runs as any user.
#
# The host test crates/koompi-testutil/tests/fcitx5_khmer.rs runs this script; the VM rig
# can run it in a guest as it is.

set -u

me="fcitx5-probe"
timeout=${FCITX5_PROBE_TIMEOUT:-30}
bus=org.fcitx.Fcitx5

say() { printf '%s\n' "$*"; }
die() {
    say "$me: $*" >&2
    exit 2
}

# A D-Bus call on the session bus, its reply printed by dbus-send.
call() { # DEST PATH INTERFACE.METHOD [ARG...]
    dest=$1 path=$2 method=$3
    shift 3
    dbus-send --session --print-reply --reply-timeout=5000 --dest="$dest" "$path" "$method" "$@"
}
fcitx() { # METHOD [ARG...]
    m=$1
    shift
    call "$bus" /controller "org.fcitx.Fcitx.Controller1.$m" "$@"
}
# The first string of each struct of a reply: the input method names of a(ss) and
# a(ssssssb).
struct_names() {
    awk '/struct {/ { want = 1; next }
         want && /^ *string "/ { sub(/^ *string "/, ""); sub(/"$/, ""); print; want = 0 }'
}
# describe IM <reply: the name and language AvailableInputMethods gives IM (its a(ssssssb)
# is unique name, name, native name, icon, label, language code, configurable).
describe() {
    awk -v im="$1" '/struct {/ { n = 0; next }
        /^ *string "/ { sub(/^ *string "/, ""); sub(/"$/, ""); s[++n] = $0
                        if (n == 6 && s[1] == im) { print s[2] ", language " s[6]; exit } }'
}
# The strings of a reply that are not inside a struct, in order.
plain_strings() {
    awk '/struct {/ { depth++ } /}/ && depth { depth--; next }
         !depth && /^ *string "/ { sub(/^ *string "/, ""); sub(/"$/, ""); print }'
}
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
# wait_for PID LOG LINES DIED TIMED_OUT CHECK...: runs CHECK every 0.2 s until it succeeds;
# dies with DIED (after the last LINES of LOG) when PID has exited, with TIMED_OUT after
# $timeout seconds.
wait_for() {
    w_pid=$1 w_log=$2 w_lines=$3 w_died=$4 w_late=$5
    shift 5
    waited=0
    until "$@"; do
        if ! alive "$w_pid"; then
            tail -n "$w_lines" "$w_log" >&2
            die "$w_died"
        fi
        [ "$waited" -ge $((timeout * 5)) ] && die "$w_late"
        sleep 0.2
        waited=$((waited + 1))
    done
}
# Xvfb has written its display number (to fd 3, -displayfd).
has_display() { [ -s "$tmp/display" ] && grep -q '^[0-9]' "$tmp/display"; }
# fcitx5 owns its bus name. Only the bus itself is asked: a call to org.fcitx.Fcitx5 before
# that would make the bus start a second fcitx5 of its own (D-Bus activation,
# org.fcitx.Fcitx5.service), and the one under test would exit.
fcitx5_on_bus() {
    call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner \
        "string:$bus" 2>/dev/null | grep -q 'boolean true'
}
# stop PID: TERM, up to 5 s, then KILL; reaped.
stop() {
    [ -n "$1" ] || return 0
    kill "$1" 2>/dev/null
    n=0
    while alive "$1" && [ "$n" -lt 25 ]; do
        sleep 0.2
        n=$((n + 1))
    done
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# Inside the private bus: Xvfb, fcitx5, the questions.
in_session() {
    tmp=$1
    shift
    xvfb_pid="" fcitx_pid=""
    trap 'stop "$fcitx_pid"; stop "$xvfb_pid"' EXIT
    trap 'exit 2' HUP INT TERM

    : >"$tmp/display"
    # Xvfb chooses a free display and writes its number to fd 3 once it accepts clients.
    Xvfb -displayfd 3 -nolisten tcp -screen 0 1024x768x24 3>"$tmp/display" >"$tmp/xvfb.log" 2>&1 &
    xvfb_pid=$!
    wait_for "$xvfb_pid" "$tmp/xvfb.log" 5 "Xvfb exited before it took a display" \
        "Xvfb took no display within ${timeout} s" has_display
    display=:$(head -n 1 "$tmp/display")

    DISPLAY=$display fcitx5 >"$tmp/fcitx5.log" 2>&1 &
    fcitx_pid=$!
    # Wait until fcitx5 owns its bus name (see fcitx5_on_bus).
    wait_for "$fcitx_pid" "$tmp/fcitx5.log" 10 "fcitx5 exited before it answered on D-Bus" \
        "fcitx5 did not answer on D-Bus within ${timeout} s" fcitx5_on_bus
    owner=$(call org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.GetConnectionUnixProcessID "string:$bus" | awk '/uint32/ { print $2 }')
    [ "$owner" = "$fcitx_pid" ] || die "$bus is owned by pid ${owner:-?}, not by the fcitx5 started here (pid $fcitx_pid)"
    say "fcitx5: $(fcitx5 --version 2>/dev/null | head -n 1), pid $fcitx_pid, display $display, answering as $bus"

    group=$(fcitx InputMethodGroups | plain_strings | head -n 1)
    [ -n "$group" ] || die "fcitx5 has no input method group"
    fcitx InputMethodGroupInfo "string:$group" >"$tmp/group" || die "InputMethodGroupInfo failed"
    struct_names <"$tmp/group" >"$tmp/listed"
    fcitx AvailableInputMethods >"$tmp/all" || die "AvailableInputMethods failed"
    struct_names <"$tmp/all" >"$tmp/available"

    say "group: $group"
    say "group order: $(tr '\n' ' ' <"$tmp/listed" | sed 's/ $//')"
    say "loaded input methods: $(wc -l <"$tmp/available" | tr -d ' ')"
    failed=0
    first=$(head -n 1 "$tmp/listed")
    if [ "$first" = "$1" ]; then
        say "first $1: yes"
    else
        say "first $1: no (first is ${first:-nothing})"
        failed=1
    fi
    for im in "$@"; do
        if grep -qxF -- "$im" "$tmp/listed"; then
            say "listed $im: yes"
        else
            say "listed $im: no"
            failed=1
        fi
    done
    for im in "$@"; do
        if grep -qxF -- "$im" "$tmp/available"; then
            say "available $im: yes ($(describe "$im" <"$tmp/all"))"
        else
            say "available $im: no"
            failed=1
        fi
    done
    alive "$fcitx_pid" || die "fcitx5 exited while it was asked"
    if [ "$failed" -eq 0 ]; then
        say "$me: ok"
    else
        say "$me: FAILED"
    fi
    return "$failed"
}

if [ "${1:-}" = --in-session ]; then
    shift
    in_session "$@"
    exit
fi

missing=
for prog in fcitx5 Xvfb dbus-run-session dbus-send awk; do
    command -v "$prog" >/dev/null 2>&1 || missing="$missing $prog"
done
[ -z "$missing" ] || die "not installed:$missing"
[ "$#" -gt 0 ] || set -- keyboard-us keyboard-kh m17n_km_yannis

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fcitx5-probe.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 2' HUP INT TERM
mkdir -m 700 "$tmp/home" "$tmp/run" || die "cannot create $tmp/home"

# A user who never configured anything: no fcitx5 files of the caller, no display, no bus.
unset DISPLAY WAYLAND_DISPLAY DBUS_SESSION_BUS_ADDRESS XDG_CONFIG_HOME XDG_DATA_HOME \
    XDG_CACHE_HOME XDG_STATE_HOME FCITX_CONFIG_HOME FCITX_CONFIG_DIRS FCITX_DATA_HOME \
    FCITX_DATA_DIRS
HOME=$tmp/home XDG_RUNTIME_DIR=$tmp/run
export HOME XDG_RUNTIME_DIR

profile=none
oldifs=$IFS
IFS=:
for dir in ${XDG_CONFIG_DIRS:-/etc/xdg}; do
    if [ -n "$dir" ] && [ -r "$dir/fcitx5/profile" ]; then
        profile=$dir/fcitx5/profile
        break
    fi
done
IFS=$oldifs
case ${SKIP_FCITX_PATH:-} in
1 | true | True) ;;
*)
    if [ "$profile" = none ] && [ -r /etc/xdg/fcitx5/profile ]; then
        profile="/etc/xdg/fcitx5/profile (read by fcitx5 5.1 and later only)"
    fi
    ;;
esac
say "system profile: $profile"
say "expected: $*"

dbus-run-session -- sh "$0" --in-session "$tmp" "$@"
