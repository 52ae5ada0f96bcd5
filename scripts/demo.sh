#!/usr/bin/env bash
# Set up and start JupyterLab with jupyter-progress and the demo notebook.
# Open the printed URL, run the cells, reload the page mid-cell: the bars keep moving.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-8888}"
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
export PATH="$PWD/.venv/bin:$PATH"
python -m pip install -q -e . 2>&1 | grep -v "is ignored" || true
python -c "import jupyter_progress" || { echo "installation failed"; exit 1; }
mkdir -p .demo
cp -n notebooks/demo.ipynb .demo/ 2>/dev/null || true
TOKEN="${JUPYTER_TOKEN:-$(python -c 'import secrets; print(secrets.token_hex(16))')}"
ROOT_FLAG=""; [ "$(id -u)" -eq 0 ] && ROOT_FLAG="--allow-root"
cat <<INFO

  JupyterLab:  http://127.0.0.1:${PORT}/lab/tree/demo.ipynb?token=${TOKEN}
  Raw stream:  curl -N -H 'Authorization: token ${TOKEN}' http://127.0.0.1:${PORT}/jupyter-progress/api/events
  Terminal:    .venv/bin/jupyter progress watch --url http://127.0.0.1:${PORT}/ --token ${TOKEN}

INFO
exec jupyter lab --no-browser --ip=127.0.0.1 --port="${PORT}" $ROOT_FLAG \
  --IdentityProvider.token="${TOKEN}" --ServerApp.root_dir="$PWD/.demo"
