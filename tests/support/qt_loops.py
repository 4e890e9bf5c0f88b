"""qasync's event loop for tests, closed so that it can never crash a later test.

``qasync.QEventLoop.close()`` only marks its timer object stopped: the Qt timers it
started (reconnect backoffs, keep-alives, ``call_later``) stay registered until that
QObject is destroyed. Left to the garbage collector, it may be destroyed on whichever
thread happens to collect (a D-Bus readiness waiter, a server's log reader); Qt cannot
unregister timers from another thread ("QObject::~QObject: Timers cannot be stopped
from another thread"), and the next such timer then fires on a deleted object and
crashes the whole run. :class:`TestQEventLoop` destroys it in ``close()``, on the
thread that closes the loop.
"""

from __future__ import annotations

import qasync
import shiboken6


class TestQEventLoop(qasync.QEventLoop):  # type: ignore[misc]
    """``qasync.QEventLoop`` whose ``close()`` also destroys its timer object."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def close(self) -> None:
        super().close()
        timer = getattr(self, "_timer", None)
        if timer is not None and shiboken6.isValid(timer):
            shiboken6.delete(timer)
