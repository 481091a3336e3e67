"""Testing kit: drive the runtime deterministically in your own tests.

- ``ScriptedProvider`` (config type ``"scripted"``) and ``Step``: providers whose
  every call follows a script or a seeded fault plan, recording what they received.
- ``EventRecorder``: collects the runtime's events and checks its invariants.
- ``valis_actors.testing.strategies``: Hypothesis strategies.

See docs/testing.md.
"""

from ._recorder import APP_EVENT as APP_EVENT
from ._recorder import EventRecorder as EventRecorder
from ._recorder import InvariantViolation as InvariantViolation
from ._scripted import Call as Call
from ._scripted import ScriptedOptions as ScriptedOptions
from ._scripted import ScriptedProvider as ScriptedProvider
from ._scripted import Step as Step
from ._virtual import run_on_virtual_time as run_on_virtual_time

__all__ = [
    "APP_EVENT",
    "Call",
    "EventRecorder",
    "InvariantViolation",
    "ScriptedOptions",
    "ScriptedProvider",
    "Step",
    "run_on_virtual_time",
]
