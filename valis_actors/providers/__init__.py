"""The built-in providers. Each module imports its SDK only when the provider is created.

- ``anthropic`` (legacy ``anthropic_api``): Anthropic Messages API via the official SDK.
- ``openai`` (legacy ``openai_api``): OpenAI Chat Completions (or any compatible server) via the official SDK.
- ``desktop_commander`` (legacy ``desktop_commander_mcp``): a local command run as an async subprocess.
- ``persona_fallback`` (legacy ``hardcoded_fallback``): answers from the persona's metadata; never fails.
"""
