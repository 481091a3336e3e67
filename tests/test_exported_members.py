"""The public surface: __all__ complete and sorted, names report their public home, no SDK imported."""

from __future__ import annotations

import ast
import subprocess
import sys
from types import ModuleType

import pytest

import valis_actors
import valis_actors.providers
import valis_actors.testing
import valis_actors.testing.fakeserver

# Subpackages appear in dir() once imported; they are modules, not exported names.
SUBMODULES = {"annotations", "testing", "providers", "cli", "strategies", "fakeserver", "server", "observability", "cluster", "cards"}
PUBLIC_MODULES = (valis_actors, valis_actors.testing, valis_actors.providers, valis_actors.testing.fakeserver)


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_all_is_sorted_and_complete(module: ModuleType) -> None:
    public = {name for name in dir(module) if not name.startswith("_")} - SUBMODULES
    assert module.__all__ == sorted(module.__all__)
    assert set(module.__all__) >= public, public - set(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is not None  # lazy names resolve too


def test_exported_members_have_docstrings() -> None:
    for name in valis_actors.__all__:
        member = getattr(valis_actors, name)
        assert getattr(member, "__doc__", None), f"{name} has no docstring"


def test_exported_members_report_the_public_module() -> None:
    assert valis_actors.ValisError.__module__ == "valis_actors"
    assert valis_actors.open_runtime.__module__ == "valis_actors"
    assert valis_actors.Runtime.__module__ == "valis_actors"
    for name in valis_actors.__all__:
        member = getattr(valis_actors, name)
        if isinstance(member, type) and not hasattr(member, "__attrs_attrs__"):
            assert member.__module__ == "valis_actors", name


def test_runtime_cannot_be_constructed_directly() -> None:
    with pytest.raises(TypeError, match="open_runtime"):
        valis_actors.Runtime()


def test_testing_kit_is_reachable_from_the_package_without_importing_it_first() -> None:
    code = "import valis_actors as va; print(va.testing.EventRecorder.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "EventRecorder"


def test_options_classes_are_importable_from_providers() -> None:
    from valis_actors.providers import AnthropicOptions, DesktopCommanderOptions, OpenAIOptions

    assert {AnthropicOptions.__name__, OpenAIOptions.__name__, DesktopCommanderOptions.__name__} == {
        "AnthropicOptions", "OpenAIOptions", "DesktopCommanderOptions",
    }


def test_import_does_not_import_provider_sdks() -> None:
    code = "import sys, valis_actors; bad = {'openai', 'anthropic', 'httpx', 'aiohttp'} & set(sys.modules); print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "set()"


def _top_level_modules_after(code: str) -> set[str]:
    code += "\nimport sys; print(sorted({m.split('.')[0] for m in sys.modules}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(ast.literal_eval(out.strip()))


# Each of these is imported only when its feature is used (memory on SQLite, the server,
# tracing, cluster mode, the trio backend, a provider, config loading).
OPTIONAL_STACKS = {
    "sqlite3", "starlette", "hypercorn", "prometheus_client", "opentelemetry", "coredis", "trio",
    "openai", "anthropic", "httpx", "httpx2", "aiohttp", "cattrs",
}


def test_import_keeps_the_optional_stacks_out() -> None:
    # `import valis_actors` imports the error tree only: the runtime stack too waits for first use.
    loaded = _top_level_modules_after("import valis_actors")
    assert loaded & (OPTIONAL_STACKS | {"anyio", "attrs", "attr"}) == set()
    assert not any(m.startswith("valis_actors._actors") for m in loaded)


def test_using_the_runtime_names_still_imports_no_converter_or_sdk() -> None:
    # The names a program touches before it loads a config: the converters are built on first use.
    code = "from valis_actors import Config, Persona, PersonaStore, Reply, Runtime, open_runtime"
    assert _top_level_modules_after(code) & OPTIONAL_STACKS == set()


def test_lazy_names_resolve_once_and_report_the_public_module() -> None:
    code = (
        "import valis_actors as va\n"
        "first = va.open_runtime\n"
        "assert va.open_runtime is first and 'open_runtime' in vars(va)\n"
        "assert set(va.__all__) <= set(dir(va))\n"
        "print(va.Runtime.__module__, va.CircuitState.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["valis_actors", "valis_actors"]
