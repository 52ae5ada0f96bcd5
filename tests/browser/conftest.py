"""Browser fixtures: a real ``jupyter lab`` subprocess and headless Debian Chromium.

One server per test module (started in a temp root with its own job store, settings,
workspaces and runtime dir, on a free port), one browser per module, a fresh context
and page per test. The lab extension of this package is disabled on this server (a
temp ``labconfig/page_config.json``) so the outputs render with the anywidget front end
under test, not the JupyterLab MIME renderer, which takes precedence where installed.
The launcher and the page driver are in ``tests/helpers`` (shared with ``benchmarks/``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.lab_page import CHROMIUM, CHROMIUM_ARGS
from helpers.lab_server import LabServer, run_lab_server


@pytest.fixture(scope="module")
def lab_extension_enabled() -> bool:
    """Whether this package's JupyterLab extension runs on the module's server (override in a
    test module: the lab extension's tests return True)."""
    return False


@pytest.fixture(scope="module")
def lab_server(
    tmp_path_factory: pytest.TempPathFactory, lab_extension_enabled: bool
) -> Iterator[LabServer]:
    with run_lab_server(
        tmp_path_factory.mktemp("lab"), lab_extension_enabled=lab_extension_enabled
    ) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("Debian chromium is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            args=CHROMIUM_ARGS,
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()


# pytest-jupyter's autouse cleanup runs on an asyncio loop of its own; Playwright's sync
# API keeps its loop current in this thread. These tests use no in-process server, so
# the plugin's loop and cleanup are replaced by no-ops here.
@pytest.fixture
def jp_asyncio_loop() -> None:
    return None


@pytest.fixture
def jp_server_cleanup() -> None:
    return None
