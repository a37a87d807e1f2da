"""``python -m mann.commands`` is the ``mann`` command."""

import sys

from mann.commands import main

sys.exit(main())
