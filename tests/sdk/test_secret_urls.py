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


def test_a_masked_url_sent_back_keeps_every_stored_secret() -> None:
    """The admin API's round trip (GET shows it masked, PUT sends it back) for ';' as well as '&'."""
    from cloverleaf.server.entry_secrets import MASK, kept_url, shown_url

    stored = "https://x.example/v1?foo=1;api-key=SECRET&sig=S2"
    assert MASK in shown_url(stored) and "SECRET" not in shown_url(stored)
    assert kept_url(shown_url(stored), stored) == stored
    assert kept_url(shown_url(stored).replace("/v1", "/v2"), stored) == stored.replace("/v1", "/v2")
