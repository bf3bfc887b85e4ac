#!/usr/bin/env bash
# Installs everything hwgen needs into .venv at the repository root, from nothing, on Debian 12 + Python 3.11.
# Idempotent: a second run only checks. System packages (iverilog, python3-venv) come from apt when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v iverilog >/dev/null 2>&1 || need_apt+=(iverilog)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++ make)
if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing system packages: ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

extras="dev,train,explore"
stamp=".venv/.hwgen-installed"
# Japanese Vowels: only the data files of the sktime wheel are used (its dependencies would clash
# with the pinned scikit-learn), hence --no-deps.
data_pkgs="sktime==1.2.0"
want="$(sha256sum pyproject.toml scripts/setup.sh | cut -d' ' -f1 | tr '\n' ' ')$extras"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: installing Python packages into .venv (a few minutes the first time)"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[$extras]"
    .venv/bin/python -m pip install -q --no-deps $data_pkgs
    echo "$want" > "$stamp"
fi
