"""A support-bot backend that embeds the VALIS runtime (see docs/embedding.md)."""
