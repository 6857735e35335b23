"""Loops compiled by Numba, with their machine code cached on disk where a cache can be written.

Numba caches what it compiles beside the source (a writable `__pycache__`), else in the user's cache
folder, or in `NUMBA_CACHE_DIR` where that is set. An install where none of these can be written (a
read-only image run by a user with no home, as render farms and containers run it) made `cache=True`
fail at import, and with it every command. There each process now compiles the loops afresh instead
(several seconds at its first frame) and says once how to keep them.
"""
from __future__ import annotations

import warnings

import numba


class CompileCacheWarning(UserWarning):
    """Numba found no folder it can write its cache to: the loops are compiled in every process."""


_warned = False


def compiled(**options):
    """A decorator: `numba.njit(nogil=True, **options)`, cached on disk where Numba can write a cache.
    `nogil`: a group's faces run these loops on threads side by side."""
    def decorate(function):
        try:
            return numba.njit(cache=True, nogil=True, **options)(function)
        except RuntimeError as error:  # Numba: "cannot cache function ...: no locator available for file ..."
            if "no locator available" not in str(error):
                raise
            _warn_once(function.__module__)
            return numba.njit(nogil=True, **options)(function)
    return decorate


def _warn_once(module: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"No folder to cache {module}'s compiled loops in (the install and the user's cache folder "
                      "are read-only): each process compiles them afresh, a few seconds at its first frame. "
                      "Set NUMBA_CACHE_DIR to a writable folder to keep them.", CompileCacheWarning, stacklevel=3)
