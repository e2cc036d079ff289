#!/usr/bin/env bash
# Boots a built KOOMPI OS ISO in QEMU, once with BIOS and once with UEFI (OVMF), and checks on
# the serial console that the live system comes up branded:
#
#     ./scripts/test-vm.sh out/koompi-os-base-YYYY.MM.DD-x86_64.iso
#     ./scripts/test-vm.sh --uefi ISO        # one firmware only (--bios / --uefi / --both)
#
# For each firmware: presses the boot menu's hotkey `r` ("with serial console") until the kernel
# starts, waits for `koompi-live login:`, logs in as koompi/koompi, waits for the motd's
# "Quick Start:" and checks PRETTY_NAME="KOOMPI OS Base Edition" in /etc/os-release.
# Serial logs are kept in the log directory that is printed at the end.
#
# Needs qemu-system-x86_64 and, for UEFI, OVMF (Arch: edk2-ovmf; Debian: ovmf). KVM is used only
# when /dev/kvm is usable and a probe guest runs promptly on it; otherwise software emulation
# (TCG), which takes a few minutes per boot.
# Environment (all optional):
#   KOOMPI_VM_TIMEOUT   seconds allowed per boot, firmware to logged-in shell (default 1500)
#   KOOMPI_VM_ACCEL     auto | kvm | tcg (default auto)
#   KOOMPI_VM_MEM       memory in MiB (default 2048)
#   KOOMPI_VM_LOG_DIR   where the serial logs go (default: a new directory under /tmp)
#   KOOMPI_OVMF_CODE, KOOMPI_OVMF_VARS   OVMF firmware files (default: searched)
set -euo pipefail

die() {
    printf 'test-vm: error: %s\n' "$*" >&2
    exit 2
}
say() {
    printf 'test-vm: %s\n' "$*"
}

modes=(bios uefi)
iso=""
while (( $# )); do
    case "$1" in
        --bios) modes=(bios) ;;
        --uefi) modes=(uefi) ;;
        --both) modes=(bios uefi) ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        -*) die "unknown option $1 (see --help)" ;;
        *)
            [[ -z "${iso}" ]] || die "one ISO at a time"
            iso="$1"
            ;;
    esac
    shift
done
[[ -n "${iso}" ]] || die "usage: $0 [--bios|--uefi|--both] ISO"
[[ -f "${iso}" ]] || die "${iso}: no such file"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (Arch: qemu-system-x86 / qemu-base; Debian: qemu-system-x86)"

timeout_s="${KOOMPI_VM_TIMEOUT:-1500}"
mem="${KOOMPI_VM_MEM:-2048}"
log_dir="${KOOMPI_VM_LOG_DIR:-$(mktemp -d /tmp/koompi-test-vm.XXXXXX)}"
mkdir -p -- "${log_dir}"
[[ "${timeout_s}" =~ ^[0-9]+$ ]] || die "KOOMPI_VM_TIMEOUT must be a number of seconds"

# --- acceleration ----------------------------------------------------------------------------

# A 512-byte boot sector that writes "KVM" to the first serial port and halts: if a KVM guest
# does not get that far within a few seconds, KVM is not usable here (on some nested hosts
# /dev/kvm exists but guests crawl or hang).
kvm_works() {
    [[ -r /dev/kvm && -w /dev/kvm ]] || return 1
    local probe out pid i
    probe="${log_dir}/kvm-probe.img"
    out="${log_dir}/kvm-probe.out"
    printf '\xba\xf8\x03\xb0\x4b\xee\xb0\x56\xee\xb0\x4d\xee\xb0\x0a\xee\xf4\xeb\xfd' >"${probe}"
    truncate -s 510 "${probe}"
    printf '\x55\xaa' >>"${probe}"
    : >"${out}"
    qemu-system-x86_64 -accel kvm -m 16 -nodefaults -display none -no-reboot \
        -drive "file=${probe},format=raw,if=ide" -serial "file:${out}" 2>/dev/null &
    pid=$!
    for (( i = 0; i < 10; i++ )); do
        sleep 0.5
        grep -q KVM "${out}" 2>/dev/null && break
    done
    kill "${pid}" 2>/dev/null || true
    wait "${pid}" 2>/dev/null || true
    grep -q KVM "${out}"
}

accel="${KOOMPI_VM_ACCEL:-auto}"
case "${accel}" in
    auto)
        if kvm_works; then accel=kvm; else accel=tcg; fi
        ;;
    kvm | tcg) ;;
    *) die "KOOMPI_VM_ACCEL must be auto, kvm or tcg" ;;
esac
say "acceleration: ${accel}"
accel_args=(-accel "${accel}")
[[ "${accel}" == kvm ]] && accel_args+=(-cpu host)

# --- firmware --------------------------------------------------------------------------------

find_ovmf() {
    local pair code vars
    if [[ -n "${KOOMPI_OVMF_CODE:-}" ]]; then
        printf '%s\n%s\n' "${KOOMPI_OVMF_CODE}" "${KOOMPI_OVMF_VARS:?set KOOMPI_OVMF_VARS too}"
        return 0
    fi
    for pair in \
        /usr/share/edk2/x64/OVMF_CODE.4m.fd:/usr/share/edk2/x64/OVMF_VARS.4m.fd \
        /usr/share/edk2-ovmf/x64/OVMF_CODE.fd:/usr/share/edk2-ovmf/x64/OVMF_VARS.fd \
        /usr/share/OVMF/OVMF_CODE_4M.fd:/usr/share/OVMF/OVMF_VARS_4M.fd \
        /usr/share/OVMF/OVMF_CODE.fd:/usr/share/OVMF/OVMF_VARS.fd \
        /usr/share/edk2/ovmf/OVMF_CODE.fd:/usr/share/edk2/ovmf/OVMF_VARS.fd; do
        code="${pair%%:*}"
        vars="${pair#*:}"
        if [[ -f "${code}" && -f "${vars}" ]]; then
            printf '%s\n%s\n' "${code}" "${vars}"
            return 0
        fi
    done
    return 1
}

# --- one boot --------------------------------------------------------------------------------

# True when the serial log contains the fixed string $1.
seen() {
    grep -aqF -- "$1" "${serial_log}"
}

# Waits until the serial log contains $1; fails on the deadline or when QEMU exits.
wait_for() {
    local what="$1"
    while ! seen "${what}"; do
        kill -0 "${qemu_pid}" 2>/dev/null || { say "QEMU exited while waiting for '${what}'"; return 1; }
        (( SECONDS < deadline )) || { say "timed out waiting for '${what}'"; return 1; }
        sleep 2
    done
}

# Types $1 on the serial console.
type_line() {
    printf '%s\r' "$1" >&"${to_vm}"
}

boot_one() {
    local mode="$1" machine=() firmware=() ovmf=() dir
    dir="${log_dir}/${mode}"
    mkdir -p -- "${dir}"
    serial_log="${dir}/serial.log"
    : >"${serial_log}"
    case "${mode}" in
        bios)
            machine=(-machine pc)
            ;;
        uefi)
            mapfile -t ovmf < <(find_ovmf) || true
            (( ${#ovmf[@]} == 2 )) || { say "OVMF not found (Arch: edk2-ovmf; Debian: ovmf), or set KOOMPI_OVMF_CODE/KOOMPI_OVMF_VARS"; return 1; }
            cp -- "${ovmf[1]}" "${dir}/OVMF_VARS.fd"
            machine=(-machine q35)
            firmware=(-drive "if=pflash,format=raw,readonly=on,file=${ovmf[0]}"
                      -drive "if=pflash,format=raw,file=${dir}/OVMF_VARS.fd")
            ;;
    esac

    rm -f -- "${dir}/in"
    mkfifo -- "${dir}/in"
    say "${mode}: booting ${iso} (serial log: ${serial_log})"
    qemu-system-x86_64 "${accel_args[@]}" "${machine[@]}" "${firmware[@]}" \
        -m "${mem}" -smp 2 -display none -no-reboot -nic none \
        -cdrom "${iso}" -boot d \
        -chardev stdio,id=serial0,signal=off -serial chardev:serial0 -monitor none \
        <"${dir}/in" >"${serial_log}" 2>"${dir}/qemu.stderr" &
    qemu_pid=$!
    exec {to_vm}>"${dir}/in"
    deadline=$(( SECONDS + timeout_s ))

    local ok=0
    # The boot menu: press the serial-console entry's hotkey until the kernel talks on ttyS0.
    while ! seen 'Linux version'; do
        if ! kill -0 "${qemu_pid}" 2>/dev/null; then
            say "${mode}: QEMU exited before the kernel started"
            ok=1
            break
        fi
        if (( SECONDS >= deadline )); then
            say "${mode}: the kernel never wrote to the serial console (was the 'serial console' entry chosen?)"
            ok=1
            break
        fi
        printf 'r' >&"${to_vm}"
        sleep 2
    done
    if (( ok == 0 )); then
        say "${mode}: kernel started after ${SECONDS}s of this run; waiting for the login prompt"
        if wait_for 'koompi-live login:'; then
            sleep 2
            type_line koompi
            if wait_for 'Password:'; then
                sleep 1
                type_line koompi
                if wait_for 'Quick Start:'; then
                    sleep 3
                    type_line 'grep PRETTY_NAME /etc/os-release'
                    wait_for 'PRETTY_NAME="KOOMPI OS Base Edition"' || ok=1
                else
                    ok=1
                fi
            else
                ok=1
            fi
        else
            ok=1
        fi
    fi

    exec {to_vm}>&-
    kill "${qemu_pid}" 2>/dev/null || true
    wait "${qemu_pid}" 2>/dev/null || true
    if (( ok == 0 )); then
        say "${mode}: PASS (login prompt, motd and os-release seen)"
    else
        say "${mode}: FAIL; last lines of the serial console:"
        tail -n 25 "${serial_log}" | tr -d '\r' | sed 's/^/    /' || true
    fi
    return "${ok}"
}

failed=()
for mode in "${modes[@]}"; do
    SECONDS=0
    boot_one "${mode}" || failed+=("${mode}")
done

say "logs: ${log_dir}"
if (( ${#failed[@]} )); then
    say "FAILED: ${failed[*]}"
    exit 1
fi
say "all passed: ${modes[*]}"
