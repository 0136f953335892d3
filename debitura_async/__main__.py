"""``python -m debitura_async``: the ``debitura-async`` command."""

import sys

from .cli import main

sys.exit(main())
