"""The only I/O: send an HttpRequest, return bytes (see transport.core)."""
