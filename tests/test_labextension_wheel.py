"""The package as a user gets it: an sdist built from this checkout, a wheel built from that
sdist without node, installed in a fresh venv, shows the JupyterLab extension enabled.

Slow (it builds the front end with npm once, and installs jupyterlab in a new venv), so it
is marked ``slow``; CI runs it (``scripts/test.sh`` selects every test).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LABEXT = "share/jupyter/labextensions/jupyter-progress"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def run(command: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{output[-4000:]}"
    return output


def test_wheel_from_sdist_without_node_installs_an_enabled_labextension(
    tmp_path: Path,
) -> None:
    dist = tmp_path / "dist"
    # 1. The sdist, built from the checkout: runs `npm install` + `npm run build` in js/.
    # (`npm run build` calls `jupyter-builder`, found on PATH like in pip's build env.)
    with_venv = dict(os.environ)
    with_venv["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{with_venv.get('PATH', '')}"
    run(
        [sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(dist)],
        cwd=REPO,
        env=with_venv,
    )
    (sdist,) = dist.glob("jupyter_progress-*.tar.gz")

    # 2. A wheel from that sdist with no node anywhere on PATH: the built files travel in it.
    no_node = {key: value for key, value in os.environ.items() if key != "PATH"}
    no_node["PATH"] = str(tmp_path / "empty-bin")
    (tmp_path / "empty-bin").mkdir()
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(sdist)],
        env=no_node,
    )
    (wheel,) = dist.glob("jupyter_progress-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    data = "-".join(wheel.name.split("-")[:2]) + ".data"
    assert f"{data}/data/{LABEXT}/package.json" in names
    assert any(re.match(rf"{data}/data/{LABEXT}/static/remoteEntry\.\w+\.js$", n) for n in names)
    assert f"{data}/data/etc/jupyter/jupyter_server_config.d/jupyter_progress.json" in names
    assert "jupyter_progress/static/widget.js" in names
    assert not any(name.startswith("jupyter_progress/labextension/") for name in names)

    # 3. A fresh venv: the wheel (and JupyterLab, to ask it) and nothing else.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel), "jupyterlab>=4,<5"])
    clean = {key: value for key, value in os.environ.items() if not key.startswith("JUPYTER")}
    clean["PATH"] = f"{bin_dir}{os.pathsep}{clean.get('PATH', '')}"
    listing = run([str(bin_dir / "jupyter"), "labextension", "list"], env=clean)
    line = next((ln for ln in listing.splitlines() if "jupyter-progress" in ln), "")
    assert re.search(r"jupyter-progress v\S+ .*enabled.*OK", line), listing
    assert str(env_dir) in listing
    servers = run([str(bin_dir / "jupyter"), "server", "extension", "list"], env=clean)
    assert re.search(r"jupyter_progress\s.*enabled", servers), servers
