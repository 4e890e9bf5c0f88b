"""Project-wide test settings: Qt never needs a screen unless a test starts Xvfb."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Fixtures shared by suites in different folders (the SSO ones: provider, chromium).
pytest_plugins = ["tests.support.oidc"]
