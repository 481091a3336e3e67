"""Testing kit: drive the runtime deterministically in your own tests.

- ``ScriptedProvider`` (config type ``"scripted"``) and ``Step``: providers whose
  every call follows a script or a seeded fault plan, recording what they received.
- ``EventRecorder``: collects the runtime's events (and your app's, ``record_app``)
  and checks its invariants.
- ``override_provider``: a config with one provider swapped (for a scripted one).
- ``fallback_text``: the answer the persona fallback gives for given inputs.
- ``run_on_virtual_time``: run a workload on a clock that jumps (trio by default).
- ``valis_actors.testing.strategies``: Hypothesis strategies.

``pip install "valis_actors[testing]"`` installs what the last two need.

See docs/testing.md.
"""

from ._fallback import fallback_text as fallback_text
from ._override import override_provider as override_provider
from ._recorder import APP_EVENT as APP_EVENT
from ._recorder import EventRecorder as EventRecorder
from ._recorder import InvariantViolation as InvariantViolation
from ._scripted import Call as Call
from ._scripted import ReplyFunction as ReplyFunction
from ._scripted import ScriptedOptions as ScriptedOptions
from ._scripted import ScriptedProvider as ScriptedProvider
from ._scripted import Step as Step
from ._virtual import run_on_virtual_time as run_on_virtual_time

__all__ = [
    "APP_EVENT",
    "Call",
    "EventRecorder",
    "InvariantViolation",
    "ReplyFunction",
    "ScriptedOptions",
    "ScriptedProvider",
    "Step",
    "fallback_text",
    "override_provider",
    "run_on_virtual_time",
]
