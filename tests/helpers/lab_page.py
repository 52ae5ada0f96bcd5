"""Driving a JupyterLab or Notebook 7 page from Playwright: shared by the browser tests
and the browser benchmarks."""

from __future__ import annotations

from typing import Any

# Debian's chromium (RECIPES.md: never ``playwright install``), headless, nothing in the
# background that would make requests of its own.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

KERNEL_READY = """() => {
    const name = document.querySelector('.jp-KernelName, .jp-Toolbar-kernelName');
    const idle = document.querySelector('.jp-Notebook-ExecutionIndicator[data-status="idle"]');
    return name && !/no kernel/i.test(name.textContent) && idle;
}"""

CELL_RAN = """() => [...document.querySelectorAll('.jp-InputArea-prompt')]
    .some((p) => /\\[(\\*|\\d+)\\]/.test(p.textContent))"""


def open_notebook(page: Any, url: str, *, kernel: bool = True) -> None:
    """Open a notebook; with ``kernel``, wait until its kernel is truly ready.

    The execution indicator reads "idle" for a moment while the kernel name still says
    "No Kernel" (RECIPES.md): running then does nothing, so wait for both.
    """
    page.goto(url)
    wait_notebook_ready(page, kernel=kernel)


def wait_notebook_ready(page: Any, *, kernel: bool = True) -> None:
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    if kernel:
        page.wait_for_function(KERNEL_READY, timeout=60_000)


def run_all(page: Any, *, ran: str = CELL_RAN) -> None:
    """Run every cell; retry while the kernel was not really ready yet.

    ``ran`` is a JS predicate telling that the cells started (by default: a prompt shows
    ``[*]`` or ``[n]``).
    """
    for _ in range(5):
        # Not awaited: the command's promise resolves only when every cell has run.
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        try:
            page.wait_for_function(ran, timeout=15_000)
            return
        except Exception:
            page.keyboard.press("Escape")
    raise AssertionError("the notebook's cells never ran")
