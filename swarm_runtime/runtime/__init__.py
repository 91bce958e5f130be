"""The runtime: hosts agents' replicas and background services on one event loop."""

from .context import Context
from .runtime import Runtime

__all__ = ["Context", "Runtime"]
