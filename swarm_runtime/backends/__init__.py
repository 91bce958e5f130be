"""Backends: one per URL scheme, handing out the queue and every store.

``memory://`` (:mod:`.memory`), ``file://DIR`` (:mod:`.file`) and
``redis://HOST:PORT/DB`` (:mod:`.redis`, needs the ``redis`` extra); each is imported
only when a URL names it. See :class:`Backend` and ARCHITECTURE.md.
"""

from ._registry import backend_class
from .base import Backend

__all__ = ["Backend", "backend_class"]
