"""``patch_tqdm()``: the ``tqdm.auto`` and ``tqdm.notebook`` bars of any library report here.

It rebinds the module attributes ``tqdm.auto.tqdm``/``trange`` (and the same in
``tqdm.autonotebook`` and ``tqdm.notebook``, plus tqdm's own helpers that bound
``tqdm.auto`` already, as a global or a default argument: ``tqdm.contrib``'s ``tenumerate``,
``tmap``, ``tzip`` and ``tqdm.contrib.concurrent``'s ``thread_map``/``process_map``). Code that
looks these names up after the patch gets ``jupyter_progress.tqdm``. What stays as it was: any
other module that ran ``from tqdm.auto import tqdm`` before the patch (it holds the old
class), and plain ``tqdm.tqdm`` / ``tqdm.std.tqdm`` text bars.

In kernels the server starts with ``c.JupyterProgress.patch_tqdm_in_kernels = True``, the
server points ``PYTHONSTARTUP`` at ``kernel_startup.py``; IPython kernels run that file
before the first cell (plain ``python`` runs it only for its interactive prompt).
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["kernel_environment", "patch_tqdm"]

STARTUP_FILE = Path(__file__).with_name("kernel_startup.py")
#: The user's own ``PYTHONSTARTUP``, which ``kernel_startup.py`` runs after patching.
PREVIOUS_STARTUP_ENV = "JUPYTER_PROGRESS_PYTHONSTARTUP"

#: Module → its attributes that hold tqdm.auto's class or trange.
_TARGETS = {
    "tqdm.auto": ("tqdm", "trange"),
    "tqdm.autonotebook": ("tqdm", "trange"),
    "tqdm.notebook": ("tqdm", "trange", "tqdm_notebook", "tnrange"),
}
#: tqdm's helpers that bound ``tqdm.auto.tqdm`` when imported, as a global or a default.
_BOUND = ("tqdm.contrib", "tqdm.contrib.concurrent")


def patch_tqdm() -> None:
    """Make ``tqdm.auto``, ``tqdm.autonotebook`` and ``tqdm.notebook`` produce
    jupyter-progress bars, for code that imports them from now on. Idempotent."""
    from .tracking import tqdm, trange

    before = getattr(sys.modules.get("tqdm.auto"), "tqdm", None)
    for module_name, names in _TARGETS.items():
        try:
            module = importlib.import_module(module_name)
        except Exception:  # tqdm.notebook without ipywidgets, say: the others still count
            continue
        for name in names:
            setattr(module, name, trange if name in ("trange", "tnrange") else tqdm)
    if before is None or before is tqdm:
        return
    for module_name in _BOUND:  # imported before the patch: rebind what holds the old class
        loaded = sys.modules.get(module_name)
        if loaded is None:
            continue
        for name, value in list(vars(loaded).items()):
            if value is before:
                setattr(loaded, name, tqdm)
            elif isinstance(value, types.FunctionType):
                _rebind_defaults(value, before, tqdm)


def _rebind_defaults(function: types.FunctionType, old: Any, new: Any) -> None:
    """``tqdm_class=tqdm_auto`` in a signature was bound when the function was defined."""
    if function.__defaults__ and old in function.__defaults__:
        function.__defaults__ = tuple(new if d is old else d for d in function.__defaults__)
    if function.__kwdefaults__ and old in function.__kwdefaults__.values():
        function.__kwdefaults__ = {
            key: new if value is old else value for key, value in function.__kwdefaults__.items()
        }


def kernel_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables that make kernels started with ``environ`` patch tqdm at startup."""
    env = {"PYTHONSTARTUP": str(STARTUP_FILE)}
    previous = environ.get("PYTHONSTARTUP", "")
    if previous and previous != str(STARTUP_FILE):
        env[PREVIOUS_STARTUP_ENV] = previous
    return env


def _kernel_startup(namespace: dict[str, Any]) -> None:
    """``kernel_startup.py``: patch in an IPython kernel, then run the user's own startup
    file, if any, in the same namespace (the kernel's user namespace)."""
    shell = sys.modules.get("IPython")
    ip = shell.get_ipython() if shell is not None else None  # type: ignore[attr-defined]
    if ip is not None and getattr(ip, "kernel", None) is not None:
        try:
            patch_tqdm()
        except Exception as error:  # a broken patch must not break the kernel's start
            print(f"[jupyter-progress] patch_tqdm failed: {error}", file=sys.stderr)
    previous = os.environ.get(PREVIOUS_STARTUP_ENV)
    if previous and os.path.isfile(previous):
        with open(previous, encoding="utf-8") as source:
            code = compile(source.read(), previous, "exec")
        exec(code, namespace)
