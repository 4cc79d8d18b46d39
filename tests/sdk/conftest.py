from __future__ import annotations

import pytest

from .upstream import Upstream


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.close()
