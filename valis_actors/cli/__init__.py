"""The ``valis`` command line: ``ask``, ``chat``, ``personas``, ``config``, ``history``, ``forget``.

``_main`` parses the arguments and runs the commands, ``_chat`` is the interactive
``valis chat`` loop, ``_output`` formats replies for people and for ``--json``.
"""

from ._main import main as main

__all__ = ["main"]
