"""How many pages a PDF has, read cheaply from its bytes, for the budget's bound.

Providers bill a PDF by its pages (Anthropic and OpenAI: each page's text plus an image of it;
Gemini: a fixed count a page), not by its byte size, and a small file can hold many pages.
This is no PDF parser: it counts the page objects (``/Type /Page``) and reads the page tree's
``/Count``, in the file and in the Flate-compressed object streams where PDF 1.5+ keeps them,
and takes the larger. Counting a page twice (an incremental update rewrites it) only raises
the bound; what cannot be read (an object stream in another filter, a corrupt or oversized
stream, no page found at all) gives None, and the caller bounds the PDF as one of unknown size.
"""

from __future__ import annotations

import re
import zlib

_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")
_COUNT = re.compile(rb"/Count\s+(\d{1,9})")
_OBJECT_STREAM = re.compile(rb"/Type\s*/ObjStm")
_STREAM_START = re.compile(rb">>\s*stream\r?\n")
#: how far around ``/Type /ObjStm`` its dictionary is looked for
_DICT_REACH = 4096
#: the most decompressed bytes read from one PDF's object streams (a zip bomb stops here)
MAX_INFLATED = 64 * 1024 * 1024


def page_count(data: bytes) -> int | None:
    """The PDF's pages (an upper bound on what a provider finds), or None when unreadable."""
    pages = _pages_in(data)
    budget = MAX_INFLATED
    view = memoryview(data)
    for found in _OBJECT_STREAM.finditer(data):
        start = data.rfind(b"obj", max(0, found.start() - _DICT_REACH), found.start())
        opened = _STREAM_START.search(data, found.end(), found.end() + _DICT_REACH)
        if start < 0 or opened is None:
            return None
        header = data[start:opened.start()]
        if b"/FlateDecode" not in header or b"/DecodeParms" in header:
            return None       # pages may hide in a stream this cannot read
        inflater = zlib.decompressobj()
        try:
            inflated = inflater.decompress(view[opened.end():], budget + 1)
        except zlib.error:
            return None
        budget -= len(inflated)
        if budget < 0:
            return None
        pages = max(pages, _pages_in(inflated))
    return pages or None


def _pages_in(chunk: bytes) -> int:
    counts = [int(n) for n in _COUNT.findall(chunk)]
    return max(len(_PAGE.findall(chunk)), max(counts, default=0))
