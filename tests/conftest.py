"""Project-wide test settings: Qt never needs a screen unless a test starts Xvfb."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
