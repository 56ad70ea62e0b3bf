#!/usr/bin/env bash
# Create the separate virtual environment that runs yadage (the workflow engine of REANA).
#
# yadage and packtivity pin jsonschema<=4.9.1, which would pull JupyterLab back to 3.x in the main
# .venv, so they live in .venv-yadage. activesci itself is not installed there: the workflow steps
# call the main environment's `activesci` through PATH (see activesci/workflow/reana.py).
#
# Usage: scripts/yadage-venv.sh            (PYTHON=python3.11 or YADAGE_VENV=DIR to change)
# Idempotent: a stamp file records the pins; a second run with the same pins does nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="${YADAGE_VENV:-$ROOT/.venv-yadage}"
PINS="yadage==0.21.2 packtivity==0.17.1 yadage-schemas==0.11.1"
STAMP="$VENV/.installed"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$PINS" ]]; then
    echo "yadage-venv: $VENV is up to date ($PINS)"
    exit 0
fi

start=$SECONDS
if [[ ! -x "$VENV/bin/python" ]]; then
    echo "yadage-venv: creating $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
fi
echo "yadage-venv: installing $PINS (log: $VENV/pip.log)"
if ! "$VENV/bin/python" -m pip install --quiet $PINS >"$VENV/pip.log" 2>&1; then
    tail -n 20 "$VENV/pip.log" >&2
    echo "yadage-venv: pip install failed, see $VENV/pip.log" >&2
    exit 1
fi
"$VENV/bin/yadage-run" --help >/dev/null
echo "$PINS" >"$STAMP"
echo "yadage-venv: ready in $((SECONDS - start)) s: $VENV/bin/yadage-run, $VENV/bin/yadage-validate"
