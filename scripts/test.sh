#!/usr/bin/env bash
# Set up everything from a fresh clone and run every test: lint, JS unit tests,
# server/API/stream tests, runners, and the browser tests in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  echo "== installing Debian chromium for the browser tests"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  python3 -m venv .venv
fi
export PATH="$PWD/.venv/bin:$PATH"
echo "== installing jupyter-progress and its test dependencies (builds the JS with npm)"
python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
python -m pip install -q -e '.[test]' 2>&1 | grep -v "is ignored" || true
python -c "import jupyter_progress, playwright, pytest_jupyter" \
  || { echo "installation failed"; exit 1; }

echo "== lint and types"
ruff check .
ruff format --check .
mypy jupyter_progress
(cd js && npm run typecheck)

echo "== JavaScript unit tests"
(cd js && npm test)

echo "== Python and browser tests"
mkdir -p .pytest-tmp
python -m pytest -q --basetemp="$PWD/.pytest-tmp/run" "$@"
