"""Prometheus metrics, written by hand in the text exposition format (version 0.0.4).

No ``prometheus_client`` dependency: the server needs counters, one gauge and a few
histograms, which are a dict and a ``bisect`` each; the text format is a dozen lines to
write. Everything runs on the event loop thread, so no locks. Recording a request is a few
dict updates keyed by tuples of the raw values; all string formatting waits for a scrape. Label values that come from
clients are bounded: a model label is only set once the model is known to exist, and at
most ``MAX_MODELS`` names get their own series, so a caller cannot blow up the series
count with random names. Error codes, often an upstream's own, are bounded alike
(``MAX_ERROR_CODES``, each at most ``MAX_ERROR_CODE_LENGTH`` characters).

Series::

    cloverleaf_requests_total{api,model,provider,status}
    cloverleaf_errors_total{api,model,provider,status,code}
    cloverleaf_request_duration_seconds{api,model,provider}      histogram
    cloverleaf_time_to_first_token_seconds{api,model,provider}   histogram (streams)
    cloverleaf_gateway_overhead_seconds{api}                     histogram
    cloverleaf_tokens_total{model,provider,type}                 type: input|output|cached|reasoning
    cloverleaf_cost_usd_total{model,provider}
    cloverleaf_cache_total{api,model,result}                      result: hit|miss
    cloverleaf_in_flight_requests                                not the scrape, nor health probes (app.NOT_IN_FLIGHT)
    cloverleaf_breaker_state{target}                             0 closed, 1 half-open, 2 open
                                                                 (at most MAX_MODELS targets, open ones first)
    cloverleaf_store_records_pending                             the store writer's queue
    cloverleaf_store_records_dropped_total                       records lost for good
    cloverleaf_store_database_away                               1 while writes wait for the database
    cloverleaf_otel_spans_dropped_total{reason}                  spans on: queue_full|export_failed

With ``--workers N`` every process keeps its own counts and answers the scrapes that reach
it, so each series also carries ``worker`` (the process id): a scrape then shows one worker's
series, which never go backwards (without the label the totals jumped between workers' counts
and Prometheus read every drop as a counter reset). Sum over ``worker`` for the server's total.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from .._jsoncodec import utf8_replacing
from .._types import Usage

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
BREAKER_VALUES = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}
#: Distinct model label values kept; later new names are counted as "other" (a client may
#: ask for any ``provider/<name>``, and each name must not become a new series forever).
MAX_MODELS = 500
#: Distinct error ``code`` label values kept, and their longest length: the code is often the
#: upstream's own (an OpenAI-compatible server, another gateway may put anything there), so past
#: these, codes are counted as "other" and long ones cut, as model names are.
MAX_ERROR_CODES = 100
MAX_ERROR_CODE_LENGTH = 64


def counted_usage(usage: Usage | None, cache: str | None) -> Usage | None:
    """The usage an answer adds to ``cloverleaf_tokens_total``: none for a cache hit, which
    consumed no tokens (the client still sees the cached answer's usage, as the provider gave
    it). The one rule for a whole answer and for a stream."""
    return None if cache == "hit" else usage


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: tuple[str | int, ...], extra: str = "") -> str:
    pairs = [f'{n}="{_escape(str(v))}"' for n, v in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _with_label(line: str, label: str) -> str:
    """A sample line with one more label first (comment lines as they are)."""
    if line.startswith("#"):
        return line
    head, brace, rest = line.partition("{")
    if brace and " " not in head:
        return f"{head}{{{label},{rest}"
    name, _, value = line.partition(" ")
    return f"{name}{{{label}}} {value}"


def _num(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class Counter:
    def __init__(self, name: str, help_text: str, labels: tuple[str, ...]) -> None:
        self.name, self.help, self.labels = name, help_text, labels
        self.values: dict[tuple[str | int, ...], float] = {}

    def inc(self, labels: tuple[str | int, ...], amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        for key, value in self.values.items():
            yield f"{self.name}{_labels(self.labels, key)} {_num(value)}"


class Histogram:
    def __init__(self, name: str, help_text: str, labels: tuple[str, ...], buckets: tuple[float, ...]) -> None:
        self.name, self.help, self.labels, self.buckets = name, help_text, labels, buckets
        # per label set: [count per bucket (non-cumulative, last = +Inf)..., sum, count]
        self.series: dict[tuple[str, ...], list[float]] = {}

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        row = self.series.get(labels)
        if row is None:
            row = self.series[labels] = [0.0] * (len(self.buckets) + 3)
        row[bisect_left(self.buckets, value)] += 1
        row[-2] += value
        row[-1] += 1

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        for key, row in self.series.items():
            running = 0.0
            for i, bound in enumerate(self.buckets):
                running += row[i]
                le = 'le="' + str(bound) + '"'
                yield f"{self.name}_bucket{_labels(self.labels, key, le)} {_num(running)}"
            running += row[len(self.buckets)]
            inf = 'le="+Inf"'
            yield f"{self.name}_bucket{_labels(self.labels, key, inf)} {_num(running)}"
            yield f"{self.name}_sum{_labels(self.labels, key)} {repr(row[-2])}"
            yield f"{self.name}_count{_labels(self.labels, key)} {_num(row[-1])}"


class Metrics:
    def __init__(self, worker: str | None = None) -> None:
        """``worker``: this process's label value when the server runs several (see above)."""
        self._worker = f'worker="{_escape(worker)}"' if worker else ""
        self.requests = Counter("cloverleaf_requests_total", "Requests answered, by API, model, provider and status.",
                                ("api", "model", "provider", "status"))
        self.errors = Counter("cloverleaf_errors_total", "Error responses, by API, model, provider, status and code.",
                              ("api", "model", "provider", "status", "code"))
        self.duration = Histogram("cloverleaf_request_duration_seconds", "Time from request to last byte.",
                                  ("api", "model", "provider"), LATENCY_BUCKETS)
        self.ttft = Histogram("cloverleaf_time_to_first_token_seconds", "Streams: time to the first output event.",
                              ("api", "model", "provider"), LATENCY_BUCKETS)
        self.overhead = Histogram("cloverleaf_gateway_overhead_seconds",
                                  "Time spent in the gateway, excluding the upstream call.", ("api",), OVERHEAD_BUCKETS)
        self.tokens = Counter("cloverleaf_tokens_total", "Tokens, by model, provider and type.",
                              ("model", "provider", "type"))
        self.cost = Counter("cloverleaf_cost_usd_total", "Cost in US dollars, where the price is known.",
                            ("model", "provider"))
        self.cache = Counter("cloverleaf_cache_total", "Response cache lookups, by API, model and result (hit|miss).",
                             ("api", "model", "result"))
        self.in_flight = 0
        self._models: set[str] = set()
        self._codes: set[str] = set()

    def record(self, api: str, model: str, provider: str, status: int, seconds: float, *,
               usage: Usage | None = None, cost: float | None = None, ttft: float | None = None,
               code: str | None = None) -> None:
        if model not in self._models:
            if len(self._models) >= MAX_MODELS:
                model = "other"
            else:
                self._models.add(model)
        # label values stay as given (the status an int): formatting happens at scrape time
        self.requests.inc((api, model, provider, status))
        self.duration.observe((api, model, provider), seconds)
        if status >= 400:
            self.errors.inc((api, model, provider, status, self._error_code(code)))
        if ttft is not None:
            self.ttft.observe((api, model, provider), ttft)
        if usage is not None:
            for kind, n in (("input", usage.input_tokens), ("output", usage.output_tokens),
                            ("cached", usage.cached_tokens), ("reasoning", usage.reasoning_tokens)):
                if n:
                    self.tokens.inc((model, provider, kind), n)
        if cost:
            self.cost.inc((model, provider), cost)

    def _error_code(self, code: str | None) -> str:
        """``code`` as a label value: cut to ``MAX_ERROR_CODE_LENGTH``, and "other" once
        ``MAX_ERROR_CODES`` distinct codes have their own series."""
        code = (code or "")[:MAX_ERROR_CODE_LENGTH]
        if code not in self._codes:
            if len(self._codes) >= MAX_ERROR_CODES:
                return "other"
            self._codes.add(code)
        return code

    def cache_result(self, api: str, model: str, result: str) -> None:
        self.cache.inc((api, model if model in self._models or len(self._models) < MAX_MODELS else "other", result))

    def observe_overhead(self, api: str, seconds: float) -> None:
        self.overhead.observe((api,), max(0.0, seconds))

    def render(self, breakers: dict[str, str] | None = None, store: StoreQueue | None = None,
               spans_dropped: Mapping[str, int] | None = None) -> bytes:
        """The exposition text; ``breakers`` maps a target to closed/half_open/open; ``store``:
        the store writer's queue (None: no store); ``spans_dropped``: OpenTelemetry spans the
        exporter dropped, by reason (None: spans are off)."""
        lines: list[str] = []
        for metric in (self.requests, self.errors, self.duration, self.ttft, self.overhead, self.tokens, self.cost,
                       self.cache):
            lines.extend(metric.render())
        lines += ["# HELP cloverleaf_in_flight_requests Requests being served now.",
                  "# TYPE cloverleaf_in_flight_requests gauge", f"cloverleaf_in_flight_requests {self.in_flight}"]
        lines += ["# HELP cloverleaf_breaker_state Circuit breaker per target: 0 closed, 1 half-open, 2 open.",
                  "# TYPE cloverleaf_breaker_state gauge"]
        # targets are as many as the model names callers try: the ones not closed first, then a bounded rest
        shown = sorted((breakers or {}).items(), key=lambda kv: (BREAKER_VALUES.get(kv[1], 0) == 0, kv[0]))
        for target, state in sorted(shown[:MAX_MODELS]):
            lines.append(f'cloverleaf_breaker_state{{target="{_escape(target)}"}} {BREAKER_VALUES.get(state, 0)}')
        if store is not None:
            lines += ["# HELP cloverleaf_store_records_pending Call records and spend waiting to be written to the store.",
                      "# TYPE cloverleaf_store_records_pending gauge",
                      f"cloverleaf_store_records_pending {store.pending}",
                      "# HELP cloverleaf_store_records_dropped_total Records lost for good: refused by the database, "
                      "beyond the queue's cap, or queued when the writer closed with the database away.",
                      "# TYPE cloverleaf_store_records_dropped_total counter",
                      f"cloverleaf_store_records_dropped_total {store.dropped}",
                      "# HELP cloverleaf_store_database_away 1 while the store's database cannot take writes "
                      "(records wait in the queue).",
                      "# TYPE cloverleaf_store_database_away gauge",
                      f"cloverleaf_store_database_away {int(store.away)}"]
        if spans_dropped is not None:
            lines += ["# HELP cloverleaf_otel_spans_dropped_total OpenTelemetry spans never delivered: refused by a "
                      "full export queue (queue_full) or in a batch the collector refused, stayed busy for or "
                      "could not be reached for (export_failed).",
                      "# TYPE cloverleaf_otel_spans_dropped_total counter"]
            lines += [f'cloverleaf_otel_spans_dropped_total{{reason="{_escape(reason)}"}} {n}'
                      for reason, n in spans_dropped.items()]
        if self._worker:
            lines = [_with_label(line, self._worker) for line in lines]
        # a label no UTF-8 can carry (a lone surrogate) is written as U+FFFD: one such name once
        # made every scrape a 500 for as long as the process held it
        return utf8_replacing("\n".join(lines) + "\n")


class StoreQueue(NamedTuple):
    """The store writer's queue as ``/metrics`` shows it."""

    pending: int
    dropped: int
    away: bool


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
