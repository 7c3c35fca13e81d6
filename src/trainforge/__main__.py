"""``python -m trainforge``."""

import sys

from trainforge.cli.main import main

sys.exit(main())
