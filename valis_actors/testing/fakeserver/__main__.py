"""``python -m valis_actors.testing.fakeserver``: run the fake LLM server as a process."""

import sys

from ._main import main

sys.exit(main())
