"""valis_actors: answer chat messages as personas, across LLM providers, on anyio actors.

    import valis_actors as va
    async with va.open_runtime(va.load_config("config.json")) as runtime:
        reply = await runtime.ask("session-1", "jane", "I have a conflict with my manager")

Importing this package is cheap: it imports the error tree and nothing else. Every other
public name is imported on first use (PEP 562 ``__getattr__``), so ``import valis_actors``
costs no anyio, attrs or cattrs; a provider's SDK is imported only when ``open_runtime``
creates that provider, SQLite only when a SQLite store opens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING

from ._errors import ActorCrashedError as ActorCrashedError
from ._errors import CardError as CardError
from ._errors import ConfigError as ConfigError
from ._errors import ContentPolicyError as ContentPolicyError
from ._errors import EmptyMessageError as EmptyMessageError
from ._errors import IncompleteAnswerError as IncompleteAnswerError
from ._errors import InvalidPersonaIdError as InvalidPersonaIdError
from ._errors import InvalidRequestError as InvalidRequestError
from ._errors import InvalidSessionIdError as InvalidSessionIdError
from ._errors import MailboxFullError as MailboxFullError
from ._errors import MemoryStoreError as MemoryStoreError
from ._errors import MessageTooLongError as MessageTooLongError
from ._errors import PermanentProviderError as PermanentProviderError
from ._errors import PersonaError as PersonaError
from ._errors import PrefillRejectedError as PrefillRejectedError
from ._errors import ProviderError as ProviderError
from ._errors import ProviderTimeoutError as ProviderTimeoutError
from ._errors import ProviderUnavailableError as ProviderUnavailableError
from ._errors import ProviderUnreachableError as ProviderUnreachableError
from ._errors import RateLimitedError as RateLimitedError
from ._errors import RuntimeClosedError as RuntimeClosedError
from ._errors import SessionFailedError as SessionFailedError
from ._errors import TransientProviderError as TransientProviderError
from ._errors import UnknownPersonaError as UnknownPersonaError
from ._errors import ValisError as ValisError

if _TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports these
    from ._actors import Runtime as Runtime
    from ._actors import RuntimeStatistics as RuntimeStatistics
    from ._actors import open_runtime as open_runtime
    from ._actors._context import MessageInfo as MessageInfo
    from ._actors._context import SessionLifecycle as SessionLifecycle
    from ._actors._stream import ReplyStream as ReplyStream
    from ._cascade._breaker import BreakerStatistics as BreakerStatistics
    from ._cascade._breaker import CircuitState as CircuitState
    from ._config import Config as Config
    from ._config import MemorySettings as MemorySettings
    from ._config import ProviderSettings as ProviderSettings
    from ._config import SessionSettings as SessionSettings
    from ._config import load_config as load_config
    from ._events import EventKind as EventKind
    from ._events import RuntimeEvent as RuntimeEvent
    from ._messages import Attempt as Attempt
    from ._messages import AttemptOutcome as AttemptOutcome
    from ._messages import ProviderRequest as ProviderRequest
    from ._messages import ProviderResponse as ProviderResponse
    from ._messages import Reply as Reply
    from ._messages import Restart as Restart
    from ._messages import Segment as Segment
    from ._messages import Turn as Turn
    from ._messages import Usage as Usage
    from ._personas import LanguagePatterns as LanguagePatterns
    from ._personas import Persona as Persona
    from ._personas import PersonaStore as PersonaStore
    from ._personas import render_system_prompt as render_system_prompt
    from .providers._base import BaseProvider as BaseProvider
    from .providers._base import provider_options as provider_options
    from .providers._base import register_provider as register_provider
    from .providers._base import registered_provider_types as registered_provider_types

__version__ = "0.1.0"

__all__ = [
    "ActorCrashedError",
    "Attempt",
    "AttemptOutcome",
    "BaseProvider",
    "BreakerStatistics",
    "CardError",
    "CircuitState",
    "Config",
    "ConfigError",
    "ContentPolicyError",
    "EmptyMessageError",
    "EventKind",
    "IncompleteAnswerError",
    "InvalidPersonaIdError",
    "InvalidRequestError",
    "InvalidSessionIdError",
    "LanguagePatterns",
    "MailboxFullError",
    "MemorySettings",
    "MemoryStoreError",
    "MessageInfo",
    "MessageTooLongError",
    "PermanentProviderError",
    "Persona",
    "PersonaError",
    "PersonaStore",
    "PrefillRejectedError",
    "ProviderError",
    "ProviderRequest",
    "ProviderResponse",
    "ProviderSettings",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "ProviderUnreachableError",
    "RateLimitedError",
    "Reply",
    "ReplyStream",
    "Restart",
    "Runtime",
    "RuntimeClosedError",
    "RuntimeEvent",
    "RuntimeStatistics",
    "Segment",
    "SessionFailedError",
    "SessionLifecycle",
    "SessionSettings",
    "TransientProviderError",
    "Turn",
    "UnknownPersonaError",
    "Usage",
    "ValisError",
    "load_config",
    "open_runtime",
    "provider_options",
    "register_provider",
    "registered_provider_types",
    "render_system_prompt",
]

# Public name -> the module that defines it, imported by __getattr__ on first use.
_LAZY: dict[str, str] = {
    "Runtime": "._actors",
    "RuntimeStatistics": "._actors",
    "open_runtime": "._actors",
    "MessageInfo": "._actors._context",
    "SessionLifecycle": "._actors._context",
    "ReplyStream": "._actors._stream",
    "BreakerStatistics": "._cascade._breaker",
    "CircuitState": "._cascade._breaker",
    "Config": "._config",
    "MemorySettings": "._config",
    "ProviderSettings": "._config",
    "SessionSettings": "._config",
    "load_config": "._config",
    "EventKind": "._events",
    "RuntimeEvent": "._events",
    "Attempt": "._messages",
    "AttemptOutcome": "._messages",
    "ProviderRequest": "._messages",
    "ProviderResponse": "._messages",
    "Reply": "._messages",
    "Restart": "._messages",
    "Segment": "._messages",
    "Turn": "._messages",
    "Usage": "._messages",
    "LanguagePatterns": "._personas",
    "Persona": "._personas",
    "PersonaStore": "._personas",
    "render_system_prompt": "._personas",
    "BaseProvider": ".providers._base",
    "provider_options": ".providers._base",
    "register_provider": ".providers._base",
    "registered_provider_types": ".providers._base",
    "testing": ".testing",  # the kit itself, as a module
}

from ._util import fixup_module_metadata as _fixup_module_metadata

_fixup_module_metadata(__name__, globals(), [name for name in __all__ if name not in _LAZY])


def __getattr__(name: str) -> object:
    # PEP 562: import the defining module on first use, keep the name, report its public home.
    try:
        module_name = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    import importlib

    module = importlib.import_module(module_name, __name__)
    if name == "testing":
        return module
    value = getattr(module, name)
    globals()[name] = value
    _fixup_module_metadata(__name__, globals(), [name])
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
