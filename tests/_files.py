"""
Stand-ins for the files an audit writer opens: L{FileWrapper} passes
everything to a real file, and a test overrides what it changes (how much
a write takes, when it fails)::

    class Partial(FileWrapper):
        def write(self, data): return super().write(data[:10])
"""

from __future__ import annotations

from typing import Any


class FileWrapper:
    """
    A file that does what the real file C{real} does.
    """

    def __init__(self, real: Any) -> None:
        self.real = real

    def write(self, data: bytes) -> int:
        return int(self.real.write(data))

    def flush(self) -> None:
        self.real.flush()

    def tell(self) -> int:
        return int(self.real.tell())

    def fileno(self) -> int:
        return int(self.real.fileno())

    @property
    def closed(self) -> bool:
        return bool(self.real.closed)

    def close(self) -> None:
        self.real.close()
