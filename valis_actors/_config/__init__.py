"""Configuration: the attrs classes of config.json, loading with path-named errors, the schema.

``_model`` defines ``Config`` and its sections and structures them with cattrs;
``_schema`` generates the JSON Schema from the same classes.
"""

from ._model import Config as Config
from ._model import MemorySettings as MemorySettings
from ._model import ProviderSettings as ProviderSettings
from ._model import SessionSettings as SessionSettings
from ._model import get_converter as get_converter
from ._model import load_config as load_config

__all__ = ["Config", "MemorySettings", "ProviderSettings", "SessionSettings", "get_converter", "load_config"]
