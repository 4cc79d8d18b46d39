"""Helpers shared by the subcommands: settings, a default model, plain-text tables."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from .._config import Settings

#: The model `chat` uses when none is configured, by the first key found in the environment.
DEFAULT_MODEL_BY_KEY: tuple[tuple[str, str], ...] = (
    ("OPENAI_API_KEY", "openai/gpt-4o-mini"),
    ("ANTHROPIC_API_KEY", "anthropic/claude-haiku-4-5"),
    ("GEMINI_API_KEY", "gemini/gemini-2.5-flash"),
    ("GOOGLE_API_KEY", "gemini/gemini-2.5-flash"),
    ("GROQ_API_KEY", "groq/llama-3.1-8b-instant"),
    ("OPENROUTER_API_KEY", "openrouter/openai/gpt-4o-mini"),
    ("MISTRAL_API_KEY", "mistral/mistral-small-latest"),
    ("TOGETHER_API_KEY", "together/meta-llama/Llama-3.3-70B-Instruct-Turbo"),
    ("DEEPSEEK_API_KEY", "deepseek/deepseek-chat"),
)


def usage_error(message: str) -> NoReturn:
    """Stop as argparse does on a usage error: the message on stderr, exit status 2 (a script tells
    a command used wrongly from one that failed, status 1)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def load_settings(args: argparse.Namespace) -> Settings:
    return Settings.load(getattr(args, "config", None))


def choose_model(settings: Settings, model: str | None, provider: str | None) -> str:
    """The model to use, saying on stderr when it was chosen for the user."""
    if model and provider and not model.startswith((provider + "/", provider + ":")):
        return f"{provider}/{model}"
    if model:
        return model
    if settings.default_model and (not provider or _of_provider(settings, settings.default_model, provider)):
        return settings.default_model
    if provider:   # the configured default is another provider's: --provider wins, as the user asked
        for _, default in DEFAULT_MODEL_BY_KEY:
            if default.startswith(provider + "/"):
                print(f"cloverleaf: using {default} (pass -m to choose a model)", file=sys.stderr)
                return default
        other = f" (the configured default, {settings.default_model}, is not one of its models)" \
            if settings.default_model else ""
        raise SystemExit(f"error: --provider {provider} needs -m MODEL{other}")
    for env_name, default in DEFAULT_MODEL_BY_KEY:
        if settings.env.get(env_name):
            print(f"cloverleaf: no model configured; using {default} because {env_name} is set "
                  "(pass -m or set CLOVERLEAF_MODEL)", file=sys.stderr)
            return default
    print("cloverleaf: no model configured and no API key found; using the offline fake/echo model "
          "(set CLOVERLEAF_MODEL or pass -m, e.g. -m openai/gpt-4o-mini)", file=sys.stderr)
    return "fake/echo"


def _of_provider(settings: Settings, model: str, provider: str) -> bool:
    """Whether ``model`` (the configured default) is served by ``provider``: written as
    ``PROVIDER/MODEL`` (or ``PROVIDER:MODEL``), or a ``[[models]]`` entry of that provider."""
    entry = settings.model_entry(model)
    if entry is not None:
        return entry.provider == provider
    return model.startswith((provider + "/", provider + ":"))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: Any = None) -> None:
    out = out or sys.stdout
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip(), file=out)
        if n == 0:
            print("  ".join("-" * w for w in widths), file=out)


LOCAL_ONLY_HELP = ("privacy: only reach targets on this machine or your network (local providers, "
                   "[[models]] with is_public = false); anything else is refused before a byte is sent")


def privacy_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--local-only`` and ``--data-class`` as call options."""
    opts: dict[str, Any] = {}
    if getattr(args, "local_only", False):
        opts["privacy"] = "local-only"
    if getattr(args, "data_class", None):
        opts["data_class"] = args.data_class
    return opts


def add_privacy_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--local-only", action="store_true", help=LOCAL_ONLY_HELP)
    p.add_argument("--data-class", metavar="CLASS", help="label the data (mapped to a policy in [privacy.classes])")


def at_least_one(text: str) -> int:
    """An argparse type for counts and sizes (``-n``, ``--dimensions``, ``--days``): a whole
    number of at least 1, refused with a message rather than ignored or crashed on."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def one_to(maximum: int) -> Callable[[str], int]:
    """An argparse type like :func:`at_least_one` with a ceiling: a count beyond what anything
    can hold ended in a traceback (``traces -n 1e20``: an integer SQLite cannot bind; ``embed
    --dimensions 1e11``: the offline embedder ran out of memory)."""
    def whole_number(text: str) -> int:
        value = at_least_one(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {maximum:,}, got {text!r}")
        return value

    return whole_number


def finite_number(text: str) -> float:
    """An argparse type for amounts (``-t``, ``--budget``): a finite number of at least 0. NaN
    became JSON null (the provider's default, silently) and inf no number at all."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number of at least 0, got {text!r}")
    return value


def port_number(text: str) -> int:
    """An argparse type for a TCP port: 1 to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 1 to 65535, got {text!r}")
    return value
