"""The frozen program's entry point (PyInstaller needs a script, not a module).

``--selftest`` and ``--status`` go straight to :mod:`desktop_agent.selftest`, so an
installed build can be checked even where the tray app cannot start (no display, a
chroot); everything else is the app's own ``main``.
"""

import sys


def main() -> int:
    args = sys.argv[1:]
    if "--selftest" in args or "--status" in args:
        from desktop_agent.selftest import main as selftest_main

        return selftest_main(args)
    from desktop_agent.__main__ import main as app_main

    return app_main(args)


if __name__ == "__main__":
    sys.exit(main())
