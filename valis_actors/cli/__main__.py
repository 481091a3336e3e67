"""``python -m valis_actors.cli``: the ``valis`` command."""

import sys

from ._main import main

sys.exit(main())
