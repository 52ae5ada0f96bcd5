"""The package's public names (__init__.py)."""

from __future__ import annotations


def test_public_names_are_the_functions_whatever_was_imported_first() -> None:
    import jupyter_progress
    import jupyter_progress.tracking
    from jupyter_progress import JobCancelled, track

    assert callable(track) and track.__name__ == "track"
    assert issubclass(JobCancelled, Exception)
    assert jupyter_progress.track is track
