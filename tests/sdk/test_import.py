"""`import cloverleaf` stays cheap: no gateway, server, database, cloud SDK or HTTP client."""

import subprocess
import sys

HEAVY = ("cloverleaf.gateway", "cloverleaf.server", "sqlalchemy", "starlette", "uvicorn", "redis", "botocore",
         "psycopg", "httpx", "pydantic", "openai", "anthropic", "asyncio")


def test_import_pulls_in_nothing_heavy():
    code = (f"import sys, cloverleaf; heavy = {HEAVY!r}; "
            "print(','.join(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import cloverleaf imported: {out}"


def test_lazy_names_resolve():
    code = "import cloverleaf; print(cloverleaf.Client.__name__, cloverleaf.AsyncClient.__name__, cloverleaf.Settings.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["Client", "AsyncClient", "Settings"]
