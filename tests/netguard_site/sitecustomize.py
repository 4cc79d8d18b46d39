"""Loaded by every Python process the suite starts (``tests/conftest.py`` puts this directory on
``PYTHONPATH``): the same no-socket-beyond-loopback hook as the test process, logging to the file
the session reads (``tests/netguard.py``)."""

import importlib.util
import os

_path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "netguard.py")
if os.environ.get("CLOVERLEAF_NETGUARD_LOG") and os.path.exists(_path):
    _spec = importlib.util.spec_from_file_location("_cloverleaf_netguard", _path)
    if _spec is not None and _spec.loader is not None:
        _module = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(_module)
        _module.install(child=True)
