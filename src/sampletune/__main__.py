"""``python -m sampletune``: the command line (:func:`sampletune.cli.main`)."""

import sys

from sampletune.cli import main

sys.exit(main())
