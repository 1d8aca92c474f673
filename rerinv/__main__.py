"""``python -m rerinv`` is the ``rerinv`` command."""

import sys

from rerinv.cli import main

sys.exit(main())
