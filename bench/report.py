"""Turning repetitions into the table: medians per cell, differences from the direct call.

Machines are shared and noisy, so no number here is one timing: each figure is the median
over the repetitions of a cell, and "added" latency is a target's median minus the direct
call's median in the same scenario and concurrency. The verdict lines check the issue's
targets against those medians.
"""

from __future__ import annotations

import statistics
from typing import Any

METRICS = ("rps", "p50_ms", "p99_ms", "ttft_p50_ms", "ttft_p99_ms", "cpu_us_per_req", "cpu_us_per_chunk", "intact")


def _median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def progress_line(row: dict[str, Any]) -> str:
    ttft = f" ttft p50 {row['ttft_p50_ms']:.2f} ms" if row.get("ttft_p50_ms") is not None else ""
    p50 = f"{row['p50_ms']:.2f}" if row.get("p50_ms") is not None else "-"
    err = f" errors {row['errors']} ({row['first_error']})" if row.get("errors") else ""
    return (f"  {row['scenario']:<8} c={row['concurrency']:<3} {row['target']:<20} #{row['repeat']}: "
            f"{row['rps']:8.1f} req/s  p50 {p50} ms{ttft}{err}")


def aggregate(cells: list[dict[str, Any]], targets: list[str]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for row in cells:
        cpu = row.get("gateway_cpu_s")
        count = row.get("completed_all") or row.get("count") or 0
        row["cpu_us_per_req"] = cpu * 1e6 / count if cpu is not None and count else None
        if row["scenario"] in ("stream", "burst"):  # share of measured streams that arrived whole
            total = (row.get("count") or 0) + (row.get("errors") or 0)
            row["intact"] = (row.get("count") or 0) / total if total else None
        groups.setdefault((row["scenario"], row["concurrency"], row["target"]), []).append(row)
    out = []
    for (scenario, conc, target), rows in groups.items():
        agg: dict[str, Any] = {"scenario": scenario, "concurrency": conc, "target": target, "repeats": len(rows),
                               "errors": sum(r.get("errors") or 0 for r in rows),
                               "first_error": next((r["first_error"] for r in rows if r.get("first_error")), None)}
        for m in METRICS:
            agg[m] = _median([r.get(m) for r in rows])
        agg["rps_all"] = [round(r["rps"], 1) for r in rows]
        agg["cpu_all"] = [round(r["cpu_us_per_req"]) for r in rows if r.get("cpu_us_per_req") is not None]
        out.append(agg)
    by_key = {(a["scenario"], a["concurrency"], a["target"]): a for a in out}
    for a in out:
        base = by_key.get((a["scenario"], a["concurrency"], "direct"))
        if base is None or a["target"] == "direct":
            continue
        for m in ("p50_ms", "p99_ms", "ttft_p50_ms", "ttft_p99_ms"):
            if a.get(m) is not None and base.get(m) is not None:
                a["added_" + m] = a[m] - base[m]
        if base.get("rps"):
            a["rps_ratio"] = (a["rps"] or 0.0) / base["rps"]
    order = {t: i for i, t in enumerate(targets)}
    out.sort(key=lambda a: (a["scenario"], a["concurrency"], order.get(a["target"], 99)))
    return out


def _f(value: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


def render(summary: dict[str, Any]) -> str:
    args = summary.get("args", {})
    env = summary.get("environment", {})
    lines = [
        f"cloverleaf benchmark — {env.get('cpu')} ({env.get('cores')} cores), Python {env.get('python')}, "
        f"commit {env.get('commit')}",
        f"packages: {env.get('packages')}; litellm {env.get('litellm')}",
        f"{args.get('repeats')} repeats per cell (medians shown), {args.get('duration')} s per non-stream cell after "
        f"{args.get('warmup')} s warmup, {args.get('streams')} measured stream(s) per client; gateway on core 0, "
        "mock upstream + load generator on core 1",
        "",
    ]
    header = (f"{'scenario':<8} {'conc':>4}  {'target':<20} {'req/s':>8} {'vs direct':>9} {'p50 ms':>8} "
              f"{'p99 ms':>8} {'+p50 ms':>8} {'+p99 ms':>8} {'ttft p50':>8} {'+ttft50':>8} {'+ttft99':>8} "
              f"{'cpu µs/req':>10} {'µs/chunk':>8} {'intact':>6} {'errors':>6}")
    lines += [header, "-" * len(header)]
    prev = None
    for a in summary.get("cells", []):
        key = (a["scenario"], a["concurrency"])
        if prev is not None and key != prev:
            lines.append("")
        prev = key
        stream = a["scenario"] in ("stream", "burst")
        lines.append(
            f"{a['scenario']:<8} {a['concurrency']:>4}  {a['target']:<20} {_f(a['rps'], '{:.1f}'):>8} "
            f"{_f(a.get('rps_ratio'), '{:.0%}'):>9} {_f(a['p50_ms']):>8} {_f(a['p99_ms']):>8} "
            f"{_f(a.get('added_p50_ms')):>8} {_f(a.get('added_p99_ms')):>8} "
            f"{_f(a['ttft_p50_ms']) if stream else '':>8} {_f(a.get('added_ttft_p50_ms')) if stream else '':>8} "
            f"{_f(a.get('added_ttft_p99_ms')) if stream else '':>8} "
            f"{_f(a.get('cpu_us_per_req'), '{:.0f}'):>10} {_f(a.get('cpu_us_per_chunk'), '{:.1f}'):>8} "
            f"{_f(a.get('intact'), '{:.0%}') if stream else '':>6} {a['errors']:>6}")
    memory = summary.get("memory") or {}
    if memory:
        lines += ["", f"resident memory (MiB) — sustained run of {args.get('sustain'):.0f} s at 48 non-stream + "
                  "16 stream clients (20 ms upstream)",
                  f"{'target':<20} {'at start':>9} {'before':>9} {'during p50':>10} {'during max':>10} "
                  f"{'right after':>11} {'after 5s':>9} {'2nd-half growth':>15} {'req/s':>8} {'errors':>6}"]
        starts = summary.get("rss_at_start_mib", {})
        for name, m in memory.items():
            load = m.get("load", {})
            rps = sum((load.get(k) or {}).get("rps") or 0.0 for k in ("d20", "stream"))
            errors = sum((load.get(k) or {}).get("errors") or 0 for k in ("d20", "stream"))
            lines.append(f"{name:<20} {_f(starts.get(name), '{:.1f}'):>9} {_f(m['rss_before_mib'], '{:.1f}'):>9} "
                         f"{_f(m['rss_during_median_mib'], '{:.1f}'):>10} {_f(m['rss_during_max_mib'], '{:.1f}'):>10} "
                         f"{_f(m['rss_right_after_mib'], '{:.1f}'):>11} {_f(m['rss_after_idle_mib'], '{:.1f}'):>9} "
                         f"{_f(m['rss_growth_second_half_mib'], '{:+.1f}'):>15} {rps:>8.1f} {errors:>6}")
    lines += ["", *verdicts(summary)]
    return "\n".join(lines) + "\n"


def paired_ratio(a: dict[str, Any], base: dict[str, Any]) -> float:
    """``a``'s throughput over ``base``'s, as the median of the per-repetition ratios. The
    targets run one after the other within a repetition, so a neighbour's burst on this shared
    machine lands on both cells of one repetition far more often than on one of them alone:
    pairing cancels it, where a ratio of two medians mixes repetitions of different noise."""
    pairs = [x / y for x, y in zip(a.get("rps_all") or [], base.get("rps_all") or [], strict=False) if y]
    if not pairs:
        return float(a["rps"]) / float(base["rps"])
    return float(_median(pairs) or 0.0)


def verdicts(summary: dict[str, Any]) -> list[str]:
    """Issue 13's targets, checked for every cloverleaf target (LiteLLM and Portkey are shown
    for comparison only)."""
    cells = {(a["scenario"], a["concurrency"], a["target"]): a for a in summary.get("cells", [])}
    gateways = sorted({t for (_, _, t) in cells if t.startswith("cloverleaf")})
    out = ["targets (issue 13 §5; medians of the repeats):"]
    for scenario in ("instant", "d20"):      # the yardstick: what a bare Python relay adds here
        a = cells.get((scenario, 1, "floor")) or {}
        if a.get("added_p50_ms") is not None:
            out.append(f"  (floor c=1 {scenario}: added p50 {_f(a['added_p50_ms'])} ms, p99 {_f(a.get('added_p99_ms'))} ms)")
    a = cells.get(("d20", 256, "floor")) or {}
    if a.get("rps"):
        out.append(f"  (floor c=256 d20: {a['rps']:.0f} req/s, {_f(a.get('cpu_us_per_req'), '{:.0f}')} µs CPU a request)")
    for gw in gateways:
        open_gw = "cloverleaf" if "governed" in gw else None
        for scenario in ("instant", "d20"):
            a = cells.get((scenario, 1, gw))
            if a and a.get("added_p50_ms") is not None:
                ok = a["added_p50_ms"] <= 0.3 and (a.get("added_p99_ms") or 0.0) <= 1.0
                out.append(f"  {gw} c=1 {scenario}: added p50 {a['added_p50_ms']:.2f} ms (≤ 0.3), "
                           f"p99 {a.get('added_p99_ms', 0.0):.2f} ms (≤ 1): {'PASS' if ok else 'FAIL'}")
        a = cells.get(("d20", 256, gw))
        if a and a.get("rps"):
            line = f"  {gw} c=256 d20: {a['rps']:.0f} req/s (≥ 5,000)"
            ok = a["rps"] >= 5000
            base = cells.get(("d20", 256, open_gw)) if open_gw else None
            if base and base.get("rps"):
                ratio = paired_ratio(a, base)
                line += f", {ratio:.0%} of open (≥ 90%; median of the repetitions' ratios)"
                ok = ok and ratio >= 0.9
            out.append(f"{line}: {'PASS' if ok else 'FAIL'}")
        burst = [c for (s, _, t), c in cells.items() if s == "burst" and t == gw]
        for b in burst:
            ok = (b.get("intact") or 0) >= 1.0 and (b.get("added_ttft_p50_ms") or 1e9) <= 5.0
            out.append(f"  {gw} burst of {b['concurrency']} streams: intact {_f(b.get('intact'), '{:.0%}')}, "
                       f"added TTFT p50 {_f(b.get('added_ttft_p50_ms'))} ms (≤ 5), "
                       f"{_f(b.get('cpu_us_per_chunk'), '{:.1f}')} µs CPU per chunk: {'PASS' if ok else 'FAIL'}")
        m = (summary.get("memory") or {}).get(gw)
        if m and m.get("rss_growth_second_half_mib") is not None:
            growth = m["rss_growth_second_half_mib"]
            peak = m.get("rss_during_max_mib") or 0.0
            ok = growth <= max(2.0, 0.02 * (m.get("rss_before_mib") or 0.0)) and peak <= 80e6 / 2**20
            out.append(f"  {gw} memory: max {peak:.1f} MiB during the sustained run (≤ 80 MB), {growth:+.1f} MiB "
                       f"over its second half (flat = within 2 MiB or 2%): {'PASS' if ok else 'FAIL'}")
    return out
