"""The cyclic garbage collector paused around a burst of acyclic objects.

Its own module (no PyYAML) so that the plugin's item pass can use it in a suite
without case files without importing the loader.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["gc_paused"]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while one file is composed and read, or its items made.

    Composing builds tens of thousands of node objects that live until the file is read,
    and the collector, triggered by the allocations, walked them again and again: with
    100 cases a file it took about 40 % of the loader's time. Reference counting frees
    the nodes once the file is read (the caller drops them before this block ends); a
    rare cycle (a recursive alias) waits for the next collection. The collector is
    switched back on, if it was on, whatever happens.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
