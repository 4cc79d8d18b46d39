"""The offline fake provider, mounted on the transport like an httpx mount."""
