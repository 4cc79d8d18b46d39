"""Keeps ``bench/ui_pages.py`` from rotting: it seeds a few records and visits every page once.
No timing is asserted (the 1,000,000-record benchmark never runs in the suite)."""

from __future__ import annotations

from pathlib import Path

from bench import ui_pages


async def test_seeds_and_visits_every_page(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    visit = ui_pages.seed(url, 500)
    assert visit["count"] == "500" and visit["trace_id"].startswith("tr_")
    assert ui_pages.ids_in(url)["count"] == "500"
    results = await ui_pages.measure(url, visit, repeat=1)
    assert [label for label, _ in results] == [label for label, _ in ui_pages.PAGES]
    assert all(len(times) == 1 and times[0] >= 0 for _, times in results)
    assert "500 call records, sqlite" in ui_pages.report(results, url, visit["count"])
