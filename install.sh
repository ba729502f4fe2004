#!/usr/bin/env bash
# rtclean installer.
#
#   ./install.sh --dev [--system-deps] [--train]
#                                        local .venv in this checkout with the test
#                                        dependencies (nothing outside the checkout);
#                                        --system-deps also apt-installs ffmpeg and
#                                        chromium, which the tests use; --train adds
#                                        TensorFlow for `rtclean train` (~2 GB).
#   sudo ./install.sh                    ground-station install: venv in /opt/rtclean,
#                                        config in /etc/rtclean, recordings in
#                                        /var/lib/rtclean, systemd unit enabled.
#   ./install.sh --root DIR              stage the ground-station install into DIR
#                                        (no apt, no users, no systemctl): for tests.
#   sudo ./install.sh --uninstall        remove the service, venv and user; keep the
#                                        config and the recordings (also with --root).
#
# Running it again is safe: an edited config is never replaced, and nothing
# changes when nothing in the checkout changed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode=system
root=""
system_deps=0
extras=test
while [ $# -gt 0 ]; do
    case "$1" in
        --dev) mode=dev ;;
        --system-deps) system_deps=1 ;;
        --train) extras=test,train ;;
        --root) root="${2:?--root needs a directory}"; shift ;;
        --uninstall) mode=uninstall ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

pick_python() {
    for py in "${PYTHON:-}" python3 python3.13 python3.12 python3.11; do
        [ -n "$py" ] || continue
        command -v "$py" >/dev/null 2>&1 || continue
        if "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
            echo "$py"; return 0
        fi
    done
    die "Python 3.11 or newer is needed (found: $(python3 --version 2>&1 || echo none))"
}

apt_install() {
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* with your package manager"
    # Only ask apt when something is missing: keeps reruns fast and offline-safe.
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "apt-get install ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

make_venv() {  # make_venv DIR [venv options...]
    local dir="$1"; shift
    local py; py="$(pick_python)"
    if [ ! -x "$dir/bin/python" ]; then
        if ! "$py" -m venv "$@" "$dir" 2>/dev/null; then
            # Debian splits venv/ensurepip into python3-venv: fetch it and retry.
            rm -rf "$dir"
            if command -v apt-get >/dev/null 2>&1; then
                apt_install python3-venv
            fi
            "$py" -m venv "$@" "$dir" || die "cannot create a venv with $py (on Debian: apt install python3-venv)"
        fi
    fi
    "$dir/bin/python" -m pip install -q --upgrade pip
}

if [ "$mode" = dev ]; then
    if [ "$system_deps" = 1 ]; then
        apt_install python3-venv ffmpeg chromium
    fi
    make_venv "$here/.venv"
    "$here/.venv/bin/python" -m pip install -q -e "$here[$extras]"
    say "ready: $here/.venv/bin/rtclean ($("$here/.venv/bin/rtclean" --version))"
    exit 0
fi

# ---------------------------------------------------------------- ground station
[ -z "$root" ] || root="$(mkdir -p "$root" && cd "$root" && pwd)"
prefix="$root/opt/rtclean"
etc="$root/etc/rtclean"
state="$root/var/lib/rtclean"
unitdir="$root/etc/systemd/system"

if [ -z "$root" ] && [ "$(id -u)" != 0 ]; then
    die "the system install needs root: sudo ./install.sh (or ./install.sh --dev, or --root DIR)"
fi

if [ "$mode" = uninstall ]; then
    if [ -z "$root" ]; then
        systemctl disable --now rtclean.service 2>/dev/null || true
    fi
    rm -f "$unitdir/rtclean.service"
    rm -rf "$prefix"
    if [ -z "$root" ]; then
        systemctl daemon-reload
        if id rtclean >/dev/null 2>&1; then userdel rtclean || say "could not remove user rtclean"; fi
    fi
    say "removed rtclean; kept the config in $etc and the recordings in $state/recordings"
    exit 0
fi

if [ -z "$root" ]; then
    pkgs=(python3-venv ffmpeg)
    # picamera2 (and libcamera) only exist in the Raspberry Pi OS archive.
    if apt-cache show python3-picamera2 >/dev/null 2>&1; then pkgs+=(python3-picamera2); fi
    apt_install "${pkgs[@]}"
    if ! id rtclean >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/rtclean --shell /usr/sbin/nologin rtclean
    fi
    # video: V4L2 capture cards and the Pi's codecs; render: GPU/encoder nodes;
    # plugdev: a Coral USB stick (libedgetpu's udev rule); apex: a Coral PCIe card.
    for g in video render plugdev apex; do
        if getent group "$g" >/dev/null && ! id -nG rtclean | tr ' ' '\n' | grep -qx "$g"; then
            usermod -aG "$g" rtclean
        fi
    done
fi

mkdir -p "$prefix" "$etc" "$state/recordings" "$unitdir"
# --system-site-packages: picamera2 and libcamera come from apt, not PyPI.
# The venv is built once, the package reinstalled only when the checkout
# changed (a stamp of its files), so a rerun changes nothing.
if [ ! -x "$prefix/venv/bin/python" ]; then
    make_venv "$prefix/venv" --system-site-packages
fi
stamp="$(cd "$here" && find pyproject.toml rtclean -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 \
         | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$prefix/.source-stamp" 2>/dev/null)" != "$stamp" ]; then
    "$prefix/venv/bin/python" -m pip install -q "$here"
    echo "$stamp" > "$prefix/.source-stamp"
    say "installed rtclean into $prefix/venv"
else
    say "rtclean in $prefix/venv is up to date"
fi
# install -C copies only what differs, so unchanged files keep their times.
(cd "$here" && find models -type f) | while read -r f; do
    install -C -D -m 0644 "$here/$f" "$prefix/$f"
done
mkdir -p "$prefix/models"
install -C -m 0644 "$here/README.md" "$prefix/README.md"
# Never overwrite a config the user has edited.
if [ ! -e "$etc/rtclean.yaml" ]; then
    install -m 0644 "$here/config/rtclean.yaml" "$etc/rtclean.yaml"
    say "installed default config $etc/rtclean.yaml"
else
    say "kept existing config $etc/rtclean.yaml"
fi
install -C -m 0644 "$here/systemd/rtclean.service" "$unitdir/rtclean.service"

# Where the live view will be: live.host / live.port of the installed config.
port=$(sed -n '/^live:/,/^[^ #]/s/^  port: *\([0-9]*\).*/\1/p' "$etc/rtclean.yaml" | head -n1)
host=$(sed -n '/^live:/,/^[^ #]/s/^  host: *\([^ #]*\).*/\1/p' "$etc/rtclean.yaml" | head -n1)
case "${host:-127.0.0.1}" in
    0.0.0.0|::|"") host="$(hostname -I 2>/dev/null | awk '{print $1}')"; host="${host:-$(hostname)}" ;;
esac
url="http://${host:-127.0.0.1}:${port:-8080}/"

if [ -z "$root" ]; then
    chown -R rtclean:rtclean "$state"
    systemctl daemon-reload
    systemctl enable --now rtclean.service
    say "rtclean is running (systemctl status rtclean; journalctl -u rtclean)"
    say "live view: $url"
    say "check the set-up with: sudo -u rtclean $prefix/venv/bin/rtclean check --config $etc/rtclean.yaml"
else
    say "staged into $root"
    say "live view (once running): $url"
fi
