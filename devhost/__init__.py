"""devhost: a small local stand-in for the Azure Functions host, for machines without Core Tools.

A development tool, never deployed (.funcignore keeps it out of the package). See docs/DEVHOST.md.
"""

from .config import HostError
from .host import Host

__all__ = ["Host", "HostError"]
