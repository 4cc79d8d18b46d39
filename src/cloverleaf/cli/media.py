"""``cloverleaf embed`` and ``cloverleaf image``."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from .common import add_privacy_arguments, at_least_one, load_settings, one_to, privacy_options, table
from .image_links import NotDownloaded, download

#: The most dimensions asked of any embedding model (the server's limit for /v1/embeddings too).
MAX_DIMENSIONS = 65536


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name == "embed":
        p.add_argument("texts", nargs="+", help="texts to embed")
        p.add_argument("-m", "--model", help="embedding model (default: $CLOVERLEAF_EMBEDDING_MODEL, else 'simple')")
        p.add_argument("--dimensions", type=one_to(MAX_DIMENSIONS),
                       help="output dimensions, where the model supports it")
        p.add_argument("--similarity", action="store_true", help="print the cosine similarity of every pair")
        add_privacy_arguments(p)
    else:
        p.add_argument("prompt", help="what to draw")
        p.add_argument("-m", "--model", help="image model, e.g. openai/gpt-image-1, bedrock/stability.sd3-5-large-v1:0")
        p.add_argument("-o", "--output", required=True, help="file to write (PNG); with -n > 1, -1, -2 ... are added")
        p.add_argument("-n", type=at_least_one, default=1, help="number of images")
        p.add_argument("--force", action="store_true", help="replace files that exist (default: refuse, before "
                                                            "anything is sent)")
        p.add_argument("--size", help="e.g. 1024x1024")
        p.add_argument("--quality", help="provider quality setting, e.g. high")
        add_privacy_arguments(p)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def run(name: str, args: argparse.Namespace) -> int:
    from .._client import Client

    settings = load_settings(args)
    _check_before_paying(name, args)
    with Client(settings) as client:
        if name == "embed":
            model = args.model or settings.embedding_model
            if not model:
                print("cloverleaf: no embedding model configured; using the offline 'simple' embeddings "
                      "(set CLOVERLEAF_EMBEDDING_MODEL or pass -m)", file=sys.stderr)
                model = "simple"
            resp = client.embed(model, args.texts, dimensions=args.dimensions, **privacy_options(args))
            if args.similarity:
                rows = []
                for i in range(len(args.texts)):
                    for j in range(i + 1, len(args.texts)):
                        rows.append((f"{cosine(resp.vectors[i], resp.vectors[j]):.4f}", args.texts[i][:40],
                                     args.texts[j][:40]))
                table(("cosine", "text A", "text B"), rows)
            else:
                for text, vec in zip(args.texts, resp.vectors):
                    print(json.dumps({"text": text, "dimensions": len(vec), "vector": [round(x, 6) for x in vec]}))
            return 0
        if not (args.model or settings.image_model):
            raise SystemExit("error: no image model: pass -m MODEL (e.g. -m openai/gpt-image-1) or set "
                             "CLOVERLEAF_IMAGE_MODEL")
        images = client.generate_image(args.model, args.prompt, n=args.n, size=args.size, quality=args.quality,
                                     response_format="b64_json", **privacy_options(args))
        paths = image_paths(Path(args.output), args.n)   # checked before the call
        paths += extra_image_paths(Path(args.output), args.n, len(images.images))
        missing: list[str] = []
        for i, (path, img) in enumerate(zip(paths, images.images)):
            if i >= args.n and path.exists() and not args.force:   # an image beyond -n: its name was not checked
                print(f"{path} already exists; not replaced (the provider answered {len(images.images)} images "
                      f"where -n asked for {args.n}; pass --force to replace)", file=sys.stderr)
                continue
            data, media_type = img.data, img.media_type
            if data is None:   # the provider answered a link (some ignore response_format): fetch it
                try:
                    data, fetched_type = download(client, img.url or "", privacy_options(args), images.metadata.target)
                    media_type = fetched_type or media_type
                except NotDownloaded as exc:
                    missing.append(f"{path}: {exc}")
                    continue
            try:
                path.write_bytes(data)
            except OSError as exc:   # what the check before the call cannot foresee (a full disk)
                raise SystemExit(f"error: cannot write {path}: {exc.strerror}") from None
            print(f"wrote {path} ({len(data):,} bytes, {media_type})")
        made = f"{len(images.images)} image{'' if len(images.images) == 1 else 's'}"
        print(f"cost: ${images.cost:.6f} ({made})" if images.cost is not None
              else f"cost: unknown ({made}; no image price for this model)")
        if images.incomplete:   # part of a split call failed: what came is written and billed, the rest said
            missing.append(f"only {images.incomplete}")
        if missing:   # asked for files: a command that wrote none of some is a failure, said with what to do
            raise SystemExit("error: not written, " + "; ".join(missing))
        return 0


def _check_before_paying(name: str, args: argparse.Namespace) -> None:
    """What makes the command fail after the call, checked before it: the call is paid for, and
    its answer was thrown away (``-o`` into a folder that does not exist, one text to compare)."""
    if name == "embed":
        if args.similarity and len(args.texts) < 2:
            raise SystemExit("error: --similarity needs at least two texts")
        return
    out = Path(args.output)
    folder = out.parent
    if out.is_dir() or not folder.is_dir() or not os.access(folder, os.W_OK):
        why = ("is a folder" if out.is_dir() else "is in a folder that does not exist" if not folder.is_dir()
               else "is in a folder you cannot write to")
        raise SystemExit(f"error: cannot write {out}: it {why}; give -o a file path in a folder that exists "
                         "(nothing was sent)")
    existing = [str(path) for path in image_paths(out, args.n) if path.exists()]
    if existing and not args.force:   # a file replaced without a word is lost work: say so, before paying
        raise SystemExit(f"error: {', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; "
                         "pass --force to replace, or give -o another path (nothing was sent)")


def image_paths(out: Path, n: int) -> list[Path]:
    """Where ``n`` images go: ``-o`` itself for one, ``NAME-1.png``, ``NAME-2.png`` ... for more."""
    if n == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i}{out.suffix}") for i in range(1, n + 1)]


def extra_image_paths(out: Path, n: int, made: int) -> list[Path]:
    """Where images an upstream answers beyond the ``n`` asked for go: ``NAME-(n+1)`` on. The
    ``-n`` files keep their names (``-o`` itself for one), the ones checked before the call."""
    return [out.with_name(f"{out.stem}-{i}{out.suffix}") for i in range(n + 1, made + 1)]
