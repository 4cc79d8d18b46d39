"""A URL shown by the admin API, the dashboard, a dry run or the doctor: every credential masked,
everything else as stored."""

from __future__ import annotations

import pytest

from cloverleaf._secret_urls import masked_url


@pytest.mark.parametrize("url, shown", [
    ("https://x.example/v1?api-version=2024-10-21&api-key=AZ1", "https://x.example/v1?api-version=2024-10-21&api-key=***"),
    ("https://u:pw@x.example/v1?key=K", "https://u:***@x.example/v1?key=***"),
    ("https://x.example/v1?foo=1;api-key=SECRET", "https://x.example/v1?foo=1;api-key=***"),   # ';' separates too
    ("https://x.example/cb#access_token=T0K&state=s", "https://x.example/cb#access_token=***&state=s"),
    ("https://x.example/v1?alt=sse&region=eu", "https://x.example/v1?alt=sse&region=eu"),
])
def test_credentials_are_masked_wherever_they_sit(url: str, shown: str) -> None:
    assert masked_url(url, "***") == shown
