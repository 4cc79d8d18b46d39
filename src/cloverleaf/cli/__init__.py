"""The ``cloverleaf`` command. Each subcommand lives in its own module and is imported
only when used, so ``cloverleaf --help`` and ``cloverleaf chat`` start fast."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from .._errors import CloverleafError

#: Subcommands that do not read cloverleaf.toml (``keys`` talks to a running server instead).
NO_CONFIG = frozenset({"keys"})

_CONFIG_HELP = "path of cloverleaf.toml (default: $CLOVERLEAF_CONFIG or ./cloverleaf.toml)"

#: subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "chat": ("cloverleaf.cli.chat", "send a prompt to a model and stream the answer"),
    "models": ("cloverleaf.cli.catalog", "known models: context window, price per million tokens, recommendations"),
    "providers": ("cloverleaf.cli.catalog", "the capability matrix of every provider"),
    "embed": ("cloverleaf.cli.media", "embed texts; print vectors or their similarity"),
    "image": ("cloverleaf.cli.media", "generate an image from a prompt"),
    "serve": ("cloverleaf.cli.ops", "run the OpenAI- and Anthropic-compatible gateway server"),
    "doctor": ("cloverleaf.cli.ops", "check configuration, keys, local servers and extras"),
    "traces": ("cloverleaf.cli.ops", "recent calls recorded by the gateway"),
    "spend": ("cloverleaf.cli.ops", "spend recorded by the gateway, grouped"),
    "keys": ("cloverleaf.cli.keys", "create, list, update and revoke the server's virtual keys"),
    "run": ("cloverleaf.cli.run", "run a workflow file of llm_call and embed steps (one trace per run)"),
}


#: Arguments that name files: a file name in bytes the locale cannot decode is still a file.
PATH_ARGUMENTS = frozenset({"config", "output", "workflow", "schema", "attach", "run_dir"})
#: Positional arguments, named as such in messages (the rest are --options).
_POSITIONALS = frozenset({"prompt", "texts", "key_id"})


def undecodable_argument(args: argparse.Namespace) -> str | None:
    """The argument holding bytes the locale could not decode, or None. They arrive as lone
    surrogates, which no request body, database row or JSON file can carry: `embed`, `image`,
    `run -i`, `keys create --name`, `traces --model` ended in a UnicodeEncodeError traceback."""
    for name, value in vars(args).items():
        if name in PATH_ARGUMENTS:
            continue
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    return f"the {name} argument" if name in _POSITIONALS else "--" + name.replace("_", "-")
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cloverleaf",
        description="One interface over every LLM provider, and a gateway in front of them.",
        epilog="Configuration: cloverleaf.toml (or CLOVERLEAF_CONFIG), environment variables, then flags. "
               "Run 'cloverleaf COMMAND --help' for each command.",
    )
    parser.add_argument("--config", help=_CONFIG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, summary) in COMMANDS.items():
        p = sub.add_parser(name, help=summary, description=summary)
        if name not in NO_CONFIG:
            # After the subcommand too (`cloverleaf serve --config FILE`), as users write it. SUPPRESS
            # keeps the global `cloverleaf --config FILE serve` value when the subcommand's is absent.
            p.add_argument("--config", default=argparse.SUPPRESS, help=_CONFIG_HELP)
        importlib.import_module(module).add_arguments(name, p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command's exit status. A reader that stops early (``cloverleaf models | head``) ends
    the output quietly with status 0: stdout is flushed here, where its broken pipe is caught,
    not at interpreter exit, where Python printed "Exception ignored ... BrokenPipeError" and
    exited with 120 (``--help`` included). A command that had already failed keeps its status
    (and its message): only the output ends early, not the verdict (``doctor | head -1``)."""
    try:
        status = _main(argv)
    except BrokenPipeError:   # written to a reader that is gone: the command ends there
        _discard_stdout()
        return 0
    except SystemExit:   # a failure or usage error said on stderr: its status stands
        _flush_stdout()
        raise
    _flush_stdout()
    return status


def _flush_stdout() -> None:
    """Flush stdout here, where a reader that stopped early can be told from a failure."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()


def _discard_stdout() -> None:
    """Point stdout at /dev/null: what is still buffered for the closed pipe is dropped, and the
    flush at exit finds nothing to fail on."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):   # no real file descriptor (a test's captured stdout): nothing to flush at exit
        pass


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:   # a usage error: the help goes where argparse's own usage errors go
        parser.print_help(sys.stderr)
        return 2
    if (bad := undecodable_argument(args)) is not None:
        from .common import usage_error

        usage_error(f"{bad} is not UTF-8 text; convert it first, e.g. with iconv -f latin1 -t utf-8")
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args.command, args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except CloverleafError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:
        if "pip install 'cloverleaf[" not in str(exc):   # a missing extra says which; anything else is a bug
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
