"""Qt views of the desktop agent: list models, delegates, windows and the tray.

Nothing here touches the network or the settings files: every class gets what it
shows through its constructor or its slots, and reports what the person asked for
through Qt signals, so the composition root (``desktop_agent.app``) wires it all.
"""
