"""``python -m backend`` is ``deskbell-server``."""

import sys

from backend.cli import main

sys.exit(main())
