"""An image price written in configuration: a ``[[models]]`` entry's ``image_price``.

A self-hosted image model, or one newer than the built-in table, had no image price, and a
registry entry could give none (its ``input_cost_per_1k``/``output_cost_per_1k`` are chat
rates): its spend went unrecorded and every budget refused it as unpriced. An entry's
``image_price`` is a row in the shape ``data/prices.json`` uses under ``images``, so the
built-in table is its documentation::

    image_price = { per_image = 0.01 }                                  # any quality, any size
    image_price = { per_image = { standard = { "1024x1024" = 0.04, "1792x1024" = 0.08 },
                                  hd = { "1024x1024" = 0.08 } }, quality = { "" = "standard" } }
    image_price = { text_input = 5.0, image_input = 10.0, output = 40.0, output_tokens = "gpt-image-1" }

It is checked when the configuration loads, not at the first call: a price of ``"0.01"``, a
size that is not ``WIDTHxHEIGHT`` or a token-billed row without the most output tokens an
image bills (which a budget needs to reserve) is a :class:`ConfigError` naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._errors import ConfigError
from ._image_pricing import ImagePrice, output_token_tables, price_row
from ._setting_values import inline_table, number, text, whole

#: The keys of a row, as ``data/prices.json`` writes them.
_NUMBERS = ("text_input", "image_input", "output", "text_output")
_KEYS = ("per_image", "quality", "size", *_NUMBERS, "output_tokens")
_EXAMPLE = "image_price = { per_image = 0.04 }"


def image_price(where: str, value: Any) -> ImagePrice:
    """The :class:`ImagePrice` ``value`` (a TOML table, or an ``ImagePrice`` made in code)
    writes; ConfigError, naming ``where`` and what to write, for anything else."""
    if isinstance(value, ImagePrice):
        return value
    where = f"{where} image_price"
    row = inline_table(where, value, _EXAMPLE)
    unknown = sorted(set(row) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; allowed: {', '.join(_KEYS)} (the shape of "
                          "data/prices.json's \"images\" rows)")
    if ("per_image" in row) == ("output" in row):
        raise ConfigError(f"{where} needs per_image (USD an image) or output (USD per 1M image output tokens, "
                          f"with output_tokens), not {'both' if row else 'neither'}; e.g. {_EXAMPLE}")
    for key in _NUMBERS:
        if key in row:
            row[key] = number(f"{where} {key}", row[key])
    if "size" in row:
        _size(f"{where} size", text(f"{where} size", row["size"]))
    qualities = inline_table(f"{where} quality", row.get("quality", {}), '{ "*" = "standard" }')
    for name, means in qualities.items():
        text(f"{where} quality.{_shown(name)}", means)
    for key in ("output_tokens", "text_output"):
        if "per_image" in row and key in row:
            raise ConfigError(f"{where}: {key} goes with output (a token-billed price); a per_image price "
                              "bills the images made")
    if "per_image" in row:
        row["per_image"] = _by_quality(f"{where} per_image", row["per_image"], number)
        named = row["per_image"]
    else:
        if "output_tokens" not in row:
            raise ConfigError(f"{where}: a token-billed price needs output_tokens, the most output tokens one "
                              "image bills (a number, a table by quality then size, or the name of a built-in "
                              f"table: {', '.join(sorted(output_token_tables()))}), so a budget can reserve it")
        row["output_tokens"] = _output_tokens(f"{where} output_tokens", row["output_tokens"])
        named = row["output_tokens"]
    listed = set(named) if isinstance(named, Mapping) else set()
    for name, means in qualities.items():
        if listed and means not in listed:
            raise ConfigError(f"{where} quality.{_shown(name)} = {means!r} names no quality the price lists "
                              f"({', '.join(sorted(listed))})")
    try:
        return price_row(row, {})
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _output_tokens(where: str, value: Any) -> Any:
    if isinstance(value, str):
        tables = output_token_tables()
        if value not in tables:
            raise ConfigError(f"{where} = {value!r} is no built-in table; name one of "
                              f"{', '.join(sorted(tables))}, or write the counts out")
        return tables[value]
    return _by_quality(where, value, lambda w, v: whole(w, v, minimum=1))


def _by_quality(where: str, value: Any, check: Any) -> Any:
    """A flat value, ``{size: value}``, or ``{quality: value or {size: value}}``, each checked."""
    if not isinstance(value, Mapping):
        return check(where, value)
    if value and all(_is_size(key) for key in value):   # by size, whatever the quality
        return {"": {size: check(f"{where}.{size}", v) for size, v in value.items()}}
    out: dict[str, Any] = {}
    for quality, sizes in value.items():
        if isinstance(sizes, Mapping):
            for size in sizes:
                _size(f"{where}.{quality}", size)
            out[quality] = {size: check(f"{where}.{quality}.{size}", v) for size, v in sizes.items()}
        else:
            out[quality] = check(f"{where}.{quality}", sizes)
    if not out:
        raise ConfigError(f"{where} is an empty table; give a price, e.g. {_EXAMPLE}")
    return out


def _shown(quality: str) -> str:
    """A quality name as the TOML key it is written as (the empty one is ``""``)."""
    return quality or '""'


def _is_size(key: str) -> bool:
    width, sep, height = key.lower().partition("x")
    return bool(sep) and width.isdigit() and height.isdigit()


def _size(where: str, size: str) -> None:
    if not _is_size(size):
        raise ConfigError(f"{where}: size {size!r} is not WIDTHxHEIGHT (e.g. \"1024x1024\")")
