"""Local embedding models (no network)."""
