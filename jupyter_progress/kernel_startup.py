# Run by IPython kernels (through PYTHONSTARTUP) when the Jupyter server that started them
# has c.JupyterProgress.patch_tqdm_in_kernels = True: tqdm.auto bars report to the server.
# It runs in the kernel's user namespace, so it leaves no names behind.
try:
    from jupyter_progress.patching import _kernel_startup as _jupyter_progress_startup
except ImportError:  # a Python without jupyter-progress (a terminal's REPL, say)
    import os as _jupyter_progress_os

    _jupyter_progress_previous = _jupyter_progress_os.environ.get("JUPYTER_PROGRESS_PYTHONSTARTUP")
    if _jupyter_progress_previous and _jupyter_progress_os.path.isfile(_jupyter_progress_previous):
        with open(_jupyter_progress_previous, encoding="utf-8") as _jupyter_progress_file:
            exec(compile(_jupyter_progress_file.read(), _jupyter_progress_previous, "exec"))
        del _jupyter_progress_file
    del _jupyter_progress_os, _jupyter_progress_previous
else:
    _jupyter_progress_startup(globals())
    del _jupyter_progress_startup
