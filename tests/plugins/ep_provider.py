"""A provider module found through an entry point (tests/test_registry.py)."""

import valis_actors as va


@va.register_provider("ep_demo")
class EntryPointDemo(va.BaseProvider):
    async def get_response(self, request: va.ProviderRequest) -> va.ProviderResponse:
        return va.ProviderResponse(f"ep: {request.message}")
