"""Small example tasks for ``submit()`` demos, importable in any server's environment."""

from __future__ import annotations

import time


def slow_square(x: int, seconds: float = 0.2) -> int:
    """Square ``x`` slowly, like a file conversion or an API call would take time."""
    time.sleep(seconds)
    return x * x


def flaky_square(x: int) -> int:
    """Like ``slow_square``, but every seventh item fails: errors are counted, not fatal."""
    if x % 7 == 3:
        raise ValueError(f"item {x} is not convertible")
    return slow_square(x)
