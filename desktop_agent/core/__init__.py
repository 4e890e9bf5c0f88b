"""Pure-Python core of the desktop agent: no Qt, no sockets, only small files.

Everything here takes events and an explicit ``now`` and returns decisions, so it is
tested without a display, a server or a clock.
"""
