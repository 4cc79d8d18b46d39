"""A ``[[models]]`` entry's ``image_price``: a self-hosted or new image model could not be priced
(the entry's keys are chat rates, ``image_price`` was an unknown key), so its spend went unrecorded
and a budget refused it. It takes a row in ``data/prices.json``'s ``images`` shape, checked as the
file loads, and wins over the built-in table."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from cloverleaf import Client
from cloverleaf._config import ModelEntry, Settings
from cloverleaf._errors import ConfigError

from .upstream import Reply, Upstream

PNG = b"\x89PNG\r\n\x1a\nlab"


def _config(tmp_path: Path, upstream: Upstream, price: str) -> Path:
    config = tmp_path / "c.toml"
    config.write_text(f'[providers.mylab]\nkind = "openai"\nbase_url = "{upstream.url}/v1"\n'
                      '[[models]]\nname = "lab-image"\nprovider = "mylab"\nidentifier = "sdxl"\n'
                      f"image_price = {price}\n")
    return config


def _generate(config: Path, upstream: Upstream, n: int = 1, **options: str) -> float | None:
    data = [{"b64_json": base64.b64encode(PNG).decode()}] * n
    upstream.queue(Reply(body=json.dumps({"created": 1, "data": data}).encode()))
    with Client(Settings.load(config, env={"MYLAB_API_KEY": "k"})) as client:
        return client.generate_image("lab-image", "a fox", n=n, **options).cost


def test_an_entry_prices_a_self_hosted_image_model_per_image(tmp_path: Path, upstream: Upstream) -> None:
    config = _config(tmp_path, upstream, "{ per_image = 0.01 }")
    assert _generate(config, upstream, n=3) == pytest.approx(0.03)


def test_an_entry_prices_by_quality_and_size_as_the_built_in_table_does(tmp_path: Path, upstream: Upstream) -> None:
    config = _config(tmp_path, upstream, '{ per_image = { standard = { "1024x1024" = 0.02, "1792x1024" = 0.05 }, '
                                         'hd = { "1024x1024" = 0.04 } }, quality = { "*" = "standard" } }')
    assert _generate(config, upstream, size="1792x1024") == pytest.approx(0.05)
    assert _generate(config, upstream, quality="hd") == pytest.approx(0.04)


def test_an_entry_token_price_names_a_built_in_output_table(tmp_path: Path, upstream: Upstream) -> None:
    config = _config(tmp_path, upstream, '{ text_input = 1.0, image_input = 1.0, output = 10.0, '
                                         'output_tokens = "gpt-image-1" }')
    usage = {"input_tokens": 100, "output_tokens": 1000}
    upstream.queue(Reply(body=json.dumps({"created": 1, "usage": usage,
                                          "data": [{"b64_json": base64.b64encode(PNG).decode()}]}).encode()))
    with Client(Settings.load(config, env={"MYLAB_API_KEY": "k"})) as client:
        out = client.generate_image("lab-image", "a fox")
    assert out.cost == pytest.approx((100 * 1.0 + 1000 * 10.0) / 1e6)


def test_an_entry_price_wins_over_the_built_in_row(tmp_path: Path, upstream: Upstream) -> None:
    """A negotiated rate for dall-e-3 (built in: $0.04 a standard image)."""
    config = tmp_path / "c.toml"
    config.write_text(f'[providers.openai]\nbase_url = "{upstream.url}/v1"\n'
                      '[[models]]\nname = "house-dalle"\nprovider = "openai"\nidentifier = "dall-e-3"\n'
                      "image_price = { per_image = 0.03 }\n")
    upstream.queue(Reply(body=json.dumps({"created": 1, "data": [{"b64_json": base64.b64encode(PNG).decode()}]})
                         .encode()))
    with Client(Settings.load(config, env={"OPENAI_API_KEY": "sk-test"})) as client:
        assert client.generate_image("house-dalle", "a fox").cost == pytest.approx(0.03)


@pytest.mark.parametrize("price,said", [
    ('{ per_image = "0.01" }', r"image_price per_image must be a number"),
    ("{ per_image = -1 }", r"image_price per_image must be a number of at least 0"),
    ("{ per_imag = 0.01 }", r"image_price: unknown keys \['per_imag'\]; allowed: per_image"),
    ("{ output = 30.0 }", r"token-billed price needs output_tokens"),
    ('{ output = 30.0, output_tokens = "gpt-image-7" }', r"output_tokens = 'gpt-image-7' is no built-in table"),
    ("{ per_image = 0.01, output = 30.0 }", r"needs per_image .* or output .*not both"),
    ('{ per_image = { standard = { "big" = 0.01 } } }', r"size 'big' is not WIDTHxHEIGHT"),
    ('{ per_image = { standard = 0.01 }, quality = { "*" = "premium" } }', r"'premium' names no quality"),
    ('"0.01"', r"image_price must be a table"),
])
def test_a_bad_entry_price_is_refused_as_the_file_loads(tmp_path: Path, upstream: Upstream, price: str,
                                                          said: str) -> None:
    with pytest.raises(ConfigError, match=rf"\[\[models\]\] entry 'lab-image'.*{said}"):
        Settings.load(_config(tmp_path, upstream, price), env={})


def test_an_entry_made_in_code_is_checked_too() -> None:
    entry = ModelEntry(name="lab", identifier="sdxl", provider="openai", image_price={"per_image": "x"})
    with pytest.raises(ConfigError, match=r"entry 'lab' image_price per_image must be a number"):
        Settings.load(None, env={}, models=[entry])
