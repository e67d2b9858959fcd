"""``python -m jwpipe``."""

import sys

from jwpipe.cli.main import main

sys.exit(main())
