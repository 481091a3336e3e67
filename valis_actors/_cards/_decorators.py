"""V3 lorebook decorators: ``@@name value`` lines at the top of an entry's content.

Only the first decorator of a name counts. An unknown decorator is ignored, and
the ``@@@`` fallbacks right below it are tried in turn; a fallback below a known
decorator is skipped. The lines are removed from the content before insertion.
"""

from __future__ import annotations

__all__ = ["HONOURED", "RECOGNIZED", "parse_decorators"]

# Decorators select_entries acts on.
HONOURED = frozenset(
    {
        "activate",
        "dont_activate",
        "scan_depth",
        "additional_keys",
        "exclude_keys",
        "activate_only_after",
        "activate_only_every",
        "position",
        "ignore_on_max_context",
    }
)
# Decorators of the V3 spec that have no effect here (no chat-depth injection, roles or user icons yet);
# being known, they do not make their @@@ fallbacks apply.
RECOGNIZED = HONOURED | {
    "depth",
    "instruct_depth",
    "reverse_depth",
    "reverse_instruct_depth",
    "role",
    "instruct_scan_depth",
    "is_greeting",
    "is_user_icon",
    "disable_ui_prompt",
    "keep_activate_after_match",
    "dont_activate_after_match",
}


def parse_decorators(content: str) -> tuple[dict[str, str], str]:
    """Split the leading ``@@`` lines off ``content``: (first value per known decorator, the rest)."""
    lines = content.split("\n")
    found: dict[str, str] = {}
    pending = False  # the decorator above was unknown: its @@@ fallbacks are candidates
    count = 0
    for line in lines:
        stripped = line.strip()
        if not stripped.startswith("@@"):
            break
        count += 1
        fallback = stripped.startswith("@@@")
        name, _, value = stripped.lstrip("@").partition(" ")
        name = name.lower()
        if fallback and not pending:
            continue
        if name in RECOGNIZED:
            found.setdefault(name, value.strip())
            pending = False
        else:
            pending = True
    return found, "\n".join(lines[count:]).strip("\n")
