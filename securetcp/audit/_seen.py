# -*- test-case-name: tests.test_auditseen,tests.test_auditfiles -*-
"""
Which log events an audit file writer has written, so that an event
delivered again (by a second log publisher the writer also observes, or
replayed from a publisher's history) is not written twice::

    seen = SeenEvents(256)
    if not seen.again(event):   # remembers it
        ...                     # write its record

An L{AuditEvent} (what L{securetcp.audit.emitter.AuditEmitter} makes) is
remembered by a weak reference, forgotten when it dies: it cannot be
delivered again then.  Any other event (a plain C{dict}) is held, the last
few of them, so that its id is not reused while it is remembered.

Holding every event would keep each record (a dozen containers) alive for
hundreds of events: long enough to outlive the young generations of
Python's garbage collector, whose full collections of a server's whole
heap they then bring on, costing more than writing the records.
"""

from __future__ import annotations

import weakref
from typing import Any, Dict


class AuditEvent(dict):  # type: ignore[type-arg]
    """
    A log event that can be weakly referenced; otherwise a C{dict}.
    """

    __slots__ = ("__weakref__",)


class _Remembered(weakref.ref):  # type: ignore[type-arg]
    """
    A weak reference to an event, with the event's id.
    """

    __slots__ = ("key",)
    key: int


class SeenEvents:
    """
    The events seen recently: every L{AuditEvent} still alive (up to
    C{bound} of them) and the last C{bound} other events.  Not
    thread-safe: a writer asks under its lock.
    """

    def __init__(self, bound: int) -> None:
        self._bound = bound
        self._held: Dict[int, Dict[str, Any]] = {}  # by id, oldest first
        weak: Dict[int, _Remembered] = {}
        self._weak = weak

        def forget(ref: _Remembered, weak: Dict[int, _Remembered] = weak) -> None:
            # called while the event is freed: before its id can be reused
            key = ref.key
            if weak.get(key) is ref:
                weak.pop(key, None)

        self._forget = forget

    def again(self, event: Dict[str, Any]) -> bool:
        """
        Whether C{event} (this object) was seen; if not, remember it.
        """
        key = id(event)
        if type(event) is AuditEvent:
            weak = self._weak
            known = weak.get(key)
            if known is not None and known() is event:
                return True
            if len(weak) >= self._bound:
                # (forget may remove entries meanwhile, in another thread)
                weak.pop(next(iter(weak), 0), None)
            ref = weak[key] = _Remembered(event, self._forget)
            ref.key = key
            return False
        held = self._held
        if held.get(key) is event:
            return True
        if len(held) >= self._bound:
            del held[next(iter(held))]
        held[key] = event
        return False
