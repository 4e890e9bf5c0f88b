"""The frozen program's entry point (PyInstaller needs a script, not a module).

The same as ``python -m desktop_agent``: ``--selftest`` and ``--status`` work without
a display (they run before the app looks for one).
"""

import sys

from desktop_agent.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
