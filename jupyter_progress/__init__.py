"""jupyter-progress: live, push-based progress for long work in Jupyter.

Import-light on purpose: a kernel or a script that only calls ``track`` never imports
jupyter_server.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "Job",
    "JobCancelled",
    "JobProgress",
    "JobsPanel",
    "__version__",
    "patch_tqdm",
    "run_notebook",
    "submit",
    "tqdm",
    "track",
    "trange",
]

_LAZY = {
    "track": ("jupyter_progress.tracking", "track"),
    "tqdm": ("jupyter_progress.tracking", "tqdm"),
    "trange": ("jupyter_progress.tracking", "trange"),
    "patch_tqdm": ("jupyter_progress.patching", "patch_tqdm"),
    "JobCancelled": ("jupyter_progress.tracking", "JobCancelled"),
    "Job": ("jupyter_progress.jobs", "Job"),
    "submit": ("jupyter_progress.jobs", "submit"),
    "run_notebook": ("jupyter_progress.jobs", "run_notebook"),
    "JobProgress": ("jupyter_progress.widget", "JobProgress"),
    "JobsPanel": ("jupyter_progress.widget", "JobsPanel"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module_name), attribute)
        globals()[name] = value  # resolve once
        return value
    raise AttributeError(f"module 'jupyter_progress' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_progress``: tqdm.auto/notebook bars of code imported from now on
    report here (see ``patch_tqdm``)."""
    from .patching import patch_tqdm

    patch_tqdm()


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .extension import JupyterProgress

    return [{"module": "jupyter_progress", "app": JupyterProgress}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyter-progress"}]
