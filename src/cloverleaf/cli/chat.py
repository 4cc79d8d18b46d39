"""``cloverleaf chat``: a prompt in, the answer streamed out.

The prompt comes from the argument or stdin. ``--dry-run`` builds the exact HTTP request
the provider would receive, prints it with secrets redacted, and sends nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .._errors import REDACTED, redact, url_secrets
from .common import (
    add_privacy_arguments,
    at_least_one,
    choose_model,
    finite_number,
    load_settings,
    privacy_options,
    usage_error,
)


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("prompt", nargs="?", help="the prompt (default: read stdin)")
    p.add_argument("-m", "--model", help="model id, e.g. openai/gpt-4o-mini, anthropic/claude-sonnet-4-5, fake/echo")
    p.add_argument("--provider", help="provider name; combined with -m MODEL as PROVIDER/MODEL")
    p.add_argument("-s", "--system", help="system prompt")
    p.add_argument("--max-tokens", type=at_least_one, help="maximum tokens to generate")
    p.add_argument("-t", "--temperature", type=finite_number, help="sampling temperature")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--schema", metavar="FILE", help="JSON Schema file: answer with JSON that matches it")
    fmt.add_argument("--json", action="store_true", help="answer with a JSON object")
    p.add_argument("-a", "--attach", action="append", default=[], metavar="PATH_OR_URL",
                   help="attach an image, PDF or audio file (repeatable)")
    p.add_argument("--reasoning", help="reasoning effort (low, medium, high) or a token budget")
    p.add_argument("--no-stream", action="store_true", help="wait for the whole answer instead of streaming")
    p.add_argument("-v", "--verbose", action="store_true", help="print latency, tokens and cost to stderr")
    p.add_argument("--dry-run", action="store_true",
                   help="print the exact HTTP request (secrets redacted) and send nothing")
    add_privacy_arguments(p)


def _prompt(args: argparse.Namespace) -> str:
    if args.prompt is not None:
        if not args.prompt.strip():   # `chat "$PROMPT"` with the variable unset: as empty stdin is
            usage_error("the prompt argument is empty; give the prompt, or leave it out to read stdin")
        return str(args.prompt)   # UTF-8: cli.main refuses an argument that is not
    if sys.stdin is None or sys.stdin.isatty():
        usage_error("give a prompt argument or pipe one on stdin")
    text = _stdin_text()
    if not text.strip():
        usage_error("the prompt on stdin is empty")
    return text


def _stdin_text() -> str:
    """stdin as UTF-8 text, read as bytes: the locale's decoding turned a Latin-1 byte into a
    lone surrogate that failed only when the request was encoded, blamed on the provider."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:   # already text (a StringIO in place of stdin)
        return str(sys.stdin.read())
    data = buffer.read()
    try:
        return str(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SystemExit(f"error: the prompt on stdin is not UTF-8 text (byte {exc.start}: {data[exc.start]:#04x}); "
                         "convert it first, e.g. iconv -f latin1 -t utf-8") from None


def _options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if args.system:
        opts["system"] = args.system
    if args.max_tokens is not None:
        opts["max_tokens"] = args.max_tokens
    if args.temperature is not None:
        opts["temperature"] = args.temperature
    if args.schema:
        try:
            with open(args.schema, encoding="utf-8") as f:
                opts["response_format"] = json.load(f)
        except OSError as exc:
            raise SystemExit(f"error: cannot read schema file {args.schema}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise SystemExit(f"error: {args.schema} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
        except ValueError as exc:
            raise SystemExit(f"error: {args.schema} is not valid JSON: {exc}") from None
    elif args.json:
        opts["response_format"] = "json"
    if args.attach:
        opts["attachments"] = list(args.attach)
    if args.reasoning:
        opts["reasoning"] = int(args.reasoning) if args.reasoning.isdigit() else args.reasoning
    opts.update(privacy_options(args))
    return opts


def run(name: str, args: argparse.Namespace) -> int:
    from .._client import Client
    from .._structured import to_response_format

    settings = load_settings(args)
    model = choose_model(settings, args.model, args.provider)
    prompt = _prompt(args)
    options = _options(args)
    fmt = to_response_format(options.get("response_format"))
    # a top-level array travels as {"items": [...]}: the answer printed is the array, as .parsed
    listed = fmt is not None and bool(fmt.wrapped_key)
    resp: Any = None
    with Client(settings) as client:
        if args.dry_run:
            return _dry_run(client, model, prompt, options, stream=not args.no_stream)
        if args.no_stream:
            resp = client.chat(model, prompt, **options)
            if resp.reasoning and args.verbose:
                print(f"[reasoning] {resp.reasoning}", file=sys.stderr)
            print(json.dumps(resp.parsed, ensure_ascii=False) if listed else resp.content)
        else:
            resp = _streamed(client, model, prompt, options, args, listed=listed)
        if resp is not None:
            for call in resp.tool_calls:
                print(f"[tool call] {call.name}({json.dumps(call.arguments)})")
        if args.verbose and resp is not None:
            _report(resp)
    return 0


def _streamed(client: Any, model: str, prompt: str, options: dict[str, Any], args: argparse.Namespace, *,
              listed: bool) -> Any:
    """The answer printed as it arrives (a list answer once whole: its wire form is a wrapper);
    the response, or None. Both outputs end their line whatever happens, so a stream cut
    mid-answer, or the summary after streamed reasoning, does not run into the next line."""
    from .._errors import UnsupportedCapability

    stream = client.stream(model, prompt, **options)
    open_lines = {"out": False, "err": False}
    try:
        for ev in stream:
            if ev.type == "text" and ev.text and not listed:
                sys.stdout.write(ev.text)
                sys.stdout.flush()
                open_lines["out"] = not ev.text.endswith("\n")
            elif ev.type == "reasoning" and ev.text and args.verbose:
                sys.stderr.write(ev.text)
                open_lines["err"] = not ev.text.endswith("\n")
    except UnsupportedCapability as exc:
        if options.get("response_format") is None or exc.operation != "streaming + structured":
            raise
        raise SystemExit(f"error: {exc}; pass --no-stream to get the structured answer whole") from None
    finally:
        if open_lines["err"]:
            sys.stderr.write("\n")
        if open_lines["out"] or (not listed and stream.response is not None):
            sys.stdout.write("\n")
            sys.stdout.flush()
    resp = stream.response
    if listed and resp is not None:
        print(json.dumps(resp.parsed, ensure_ascii=False))
    return resp


def _report(resp: Any) -> None:
    u = resp.usage
    md = resp.metadata
    cost = (f"${resp.cost:.6f}" if resp.cost is not None else "unknown (no price for this model)" if u.reported
            else "unknown (the upstream reported no usage)")
    ttft = f", first token {md.time_to_first_token_ms:.0f} ms" if md.time_to_first_token_ms is not None else ""
    print(f"[{resp.provider}/{resp.model}] latency {md.latency_ms:.0f} ms{ttft}; tokens in {u.input_tokens} "
          f"(cached {u.cached_tokens}), out {u.output_tokens} (reasoning {u.reasoning_tokens}); cost {cost}; "
          f"finish {resp.finish_reason}", file=sys.stderr)


def _dry_run(client: Any, model: str, prompt: str, options: dict[str, Any], *, stream: bool) -> int:
    """The request ``chat`` would send: the streaming one unless ``--no-stream`` (a provider's
    streaming request differs: OpenAI's body asks for usage, Gemini's URL is another method)."""
    from .._options import build_request

    if model in client.settings.routes:   # a route: the request its first target would get
        from ..gateway.config import parse_route

        first = parse_route(model, client.settings.routes[model], client.settings.env).targets[0]
        print(f"# route {model!r}: its first target, {first.key}", file=sys.stderr)
        model = first.model
        options = {**options, **{k: v for k, v in (("api_key", first.api_key), ("base_url", first.base_url)) if v}}
    target = client._checked_target(model, options)  # the privacy policy applies to a dry run too
    req = client.engine._for_target(target, build_request(model, prompt, options), stream=stream)
    req = client.engine._resolve_attachments(target, req)
    http = client.engine._build_chat(target, req)
    if target.adapter.bearer_source(target.cfg) is not None:   # Vertex AI: fetched when a call is sent, not here
        http.headers["authorization"] = "Bearer <access token>"
    secrets = _secrets_of(target, http.url)
    print(f"{http.method} {shown_url(http.url, secrets)}")
    configured = {name.lower() for name in target.cfg.headers}
    for k, v in http.redacted_headers().items():
        # a configured header is the operator's (a gateway's auth token, a tenant id): its value is
        # never printed, whatever its name, as the transport's own secret headers are not
        print(f"{k}: {REDACTED if k.lower() in configured else redact(v, secrets)}")
    print()
    body = http.json() if http.body else None
    text = json.dumps(_elide(body), indent=2, ensure_ascii=False) if body is not None else ""
    print(_without(text, secrets))   # the prompt is shown as written: only the known secrets are taken out
    return 0


def _secrets_of(target: Any, url: str) -> tuple[str, ...]:
    """What a dry run must never print: the key, the configured header values and the URL's
    password (as written, decoded and as the ``Basic`` value the transport makes of it)."""
    values = (target.cfg.api_key, *target.cfg.headers.values(), *url_secrets(url))
    return tuple(v for v in values if isinstance(v, str) and len(v) >= 4)


def shown_url(url: str, secrets: tuple[str, ...] = ()) -> str:
    """The URL as a dry run prints it: its query kept (``alt=sse`` and ``api-version`` are part of
    the request) with credential-named values redacted (the package's one rule,
    :mod:`cloverleaf._secret_urls`), and a ``user:password@``'s password redacted."""
    from .._secret_urls import masked_url

    return _without(masked_url(url, REDACTED), secrets)


def _without(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def _elide(value: Any) -> Any:
    """Long inline payloads (base64 attachments) shortened so the request stays readable."""
    if isinstance(value, dict):
        return {k: _elide(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_elide(v) for v in value]
    if isinstance(value, str) and len(value) > 512 and " " not in value[:512]:
        return f"{value[:64]}…<{len(value) - 64} more characters elided>"
    return value
