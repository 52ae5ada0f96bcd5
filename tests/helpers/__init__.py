"""Helpers shared by the tests and the benchmarks: servers in subprocesses, stream readers,
job and notebook helpers, the Playwright page driver.

``tests/`` is on ``sys.path`` in the tests (pytest's rootdir-relative import) and the
benchmarks put it there themselves, so every user imports them as ``helpers.<module>``.
The server-run job targets stay in ``tests/progress_tasks.py``: servers, workers and
kernels import that module by its top-level name (``progress_tasks:square``).
"""
