#!/usr/bin/env bash
# Prepare this checkout: Debian packages (where missing), .venv, and the Python packages.
#   scripts/setup.sh run    what the show needs (GL, EGL, PortAudio)
#   scripts/setup.sh test   that plus what the tests need (Xvfb, Chromium)
# Safe to run again: it only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-run}"
PYTHON="${PYTHON:-python3}"
VENV=".venv"

run_pkgs=(libgl1 libegl1 libportaudio2 libasound2)  # libasound2: python-rtmidi (MIDI) links it
# jackd2: a dummy JACK server gives the MIDI tests real ports without a sound card. Its debconf
# question (realtime priority) takes its default, "no", when DEBIAN_FRONTEND=noninteractive.
test_pkgs=(xvfb xauth xdotool chromium iproute2 jackd2 redis-server)

log() { printf 'setup: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else return 1
    fi
}

apt_updated=0
apt_install() {
    if [ "$apt_updated" -eq 0 ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    # Through env: sudo drops DEBIAN_FRONTEND from the environment (env_reset), and then debconf would ask.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 \
        --no-install-recommends "$@"
}

system_packages() {
    local wanted=("${run_pkgs[@]}")
    [ "$mode" = "test" ] && wanted+=("${test_pkgs[@]}")
    if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
        log "not a Debian/Ubuntu system: make sure these (or your system's equivalents) are installed: ${wanted[*]}"
        return 0
    fi
    local missing=()
    for p in "${wanted[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$p")
        fi
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    if ! apt_install "${missing[@]}"; then
        log "could not install ${missing[*]} (need root or sudo); install them by hand"
        [ "$mode" = "test" ] && return 1
    fi
}

python_ok() {
    "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null
}

make_venv() {
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
        return 0
    fi
    python_ok || { log "$PYTHON is missing or older than 3.11; set PYTHON=/path/to/python3.11"; exit 1; }
    rm -rf "$VENV"
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        # Debian splits venv/ensurepip out of the interpreter package.
        log "python venv support missing; installing it"
        local ver
        ver="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        apt_install "python${ver}-venv" || apt_install python3-venv
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV"
    fi
}

python_packages() {
    # The tests build tiny diffusers pipelines, so test mode adds the local extra. torch is pinned in the same
    # pip command: on the CI machines that pin resolves to a CPU wheel already on disk, while a bare `torch`
    # (or one pinned in a later command) pulls the CUDA build, about 3 GB. `make run` needs neither.
    local test_pin="torch==2.13.0"
    local want_run want_test
    want_run="$(sha256sum < pyproject.toml | cut -d' ' -f1)"
    want_test="$( (cat pyproject.toml; echo "$test_pin") | sha256sum | cut -d' ' -f1)"
    # The test install is a superset of the run install: either stamp will do for `run`.
    if [ -f "$VENV/.installed-test" ] && [ "$(cat "$VENV/.installed-test")" = "$want_test" ]; then
        return 0
    fi
    if [ "$mode" != "test" ] && [ -f "$VENV/.installed" ] && [ "$(cat "$VENV/.installed")" = "$want_run" ]; then
        return 0
    fi
    log "installing Python packages into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip 2>/dev/null || true
    if [ "$mode" = "test" ]; then
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[test,local]" "$test_pin"
        echo "$want_test" > "$VENV/.installed-test"
    else
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e .
        echo "$want_run" > "$VENV/.installed"
    fi
}

system_packages
make_venv
python_packages
