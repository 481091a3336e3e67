"""``valis serve``: personas over the OpenAI Chat Completions and Anthropic Messages APIs.

    from valis_actors.server import create_app
    app = create_app(va.load_config())      # an ASGI app; the runtime opens in its lifespan

Needs the ``server`` extra (``pip install 'valis_actors[server]'``). See docs/server.md.
"""

from ._app import create_app as create_app
from ._errors import ApiError as ApiError
from ._requests import ChatRequest as ChatRequest
from ._requests import pair_turns as pair_turns
from ._serve import ServerHandle as ServerHandle
from ._serve import check_exposure as check_exposure
from ._serve import run_server as run_server
from ._serve import serve as serve
from ._sessions import ResolvedSession as ResolvedSession
from ._sessions import resolve_session as resolve_session
from ._settings import ServerSettings as ServerSettings
from ._settings import load_server_config as load_server_config

__all__ = [
    "ApiError",
    "ChatRequest",
    "ResolvedSession",
    "ServerHandle",
    "ServerSettings",
    "check_exposure",
    "create_app",
    "load_server_config",
    "pair_turns",
    "resolve_session",
    "run_server",
    "serve",
]
