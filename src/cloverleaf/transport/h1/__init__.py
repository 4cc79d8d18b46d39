"""cloverleaf's own HTTP/1.1 client on httptools (the server's hot path, see bench/README.md).

- :mod:`.head`: where a URL goes and the request head written for it (pure);
- :mod:`.parser`: the response side, a state machine over llhttp's callbacks (head, body,
  done, failed), with the body's decoding and the head size limit;
- :mod:`.connection`: the asyncio protocol around one kept-alive connection: flow control,
  timeouts, the one exchange in progress;
- :mod:`.pool`: idle connections per origin, and the transport contract.
"""


def available() -> bool:
    """True when httptools (llhttp) is importable: ``http_client = "auto"`` then takes h1."""
    import importlib.util

    return importlib.util.find_spec("httptools") is not None
