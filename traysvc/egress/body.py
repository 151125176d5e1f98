"""Reading a response body within a byte budget, compressed or not.

httpx decodes a whole network chunk at once, and 64 KB of gzip can inflate to 64 MB (brotli
to far more), so counting httpx's decoded output is not enough to stop a decompression bomb.
Here every decoder is asked for at most the bytes still allowed, and reading stops there.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx

try:  # brotli is optional; only a decoder that can stop at a size limit is usable
    import brotlicffi as _brotli
except ImportError:  # pragma: no cover - depends on what is installed
    try:
        import brotli as _brotli  # type: ignore[no-redef]
    except ImportError:
        _brotli = None

_BROTLI_BOUNDED = _brotli is not None and hasattr(_brotli.Decompressor(), "can_accept_more_data")

# What we ask servers for: only encodings we can decode within a budget.
ACCEPT_ENCODING = "gzip, deflate, br" if _BROTLI_BOUNDED else "gzip, deflate"


class BodyDecodeError(Exception):
    """The body is not valid in its Content-Encoding."""

    def __init__(self, encoding: str) -> None:
        super().__init__(encoding)
        self.encoding = encoding


class BodyDeadline(Exception):
    """The total time budget ran out while the body was still arriving."""


class _Zlib:
    def __init__(self, encoding: str) -> None:
        self._gzip = encoding == "gzip"
        wbits = zlib.MAX_WBITS | 16 if self._gzip else zlib.MAX_WBITS
        self._inflater = zlib.decompressobj(wbits)
        self._first = True

    def decode(self, data: bytes, limit: int) -> bytes:
        try:
            out = self._inflater.decompress(data, limit)
        except zlib.error:
            if self._gzip or not self._first:
                raise BodyDecodeError("gzip" if self._gzip else "deflate") from None
            # "deflate" is sometimes sent raw, without the zlib header (as httpx allows).
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            self._first = False
            return self.decode(data, limit)
        self._first = False
        return out

    def flush(self) -> bytes:
        try:
            return self._inflater.flush() if not self._inflater.unconsumed_tail else b""
        except zlib.error:
            raise BodyDecodeError("gzip" if self._gzip else "deflate") from None


class _Brotli:
    def __init__(self) -> None:
        self._decoder = _brotli.Decompressor()

    def decode(self, data: bytes, limit: int) -> bytes:
        try:
            return self._decoder.decompress(data, output_buffer_limit=limit)
        except _brotli.error:
            raise BodyDecodeError("br") from None

    def flush(self) -> bytes:
        return b""


class _Identity:
    def decode(self, data: bytes, limit: int) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


def _decoder_for(headers: httpx.Headers) -> _Zlib | _Brotli | _Identity:
    """One supported encoding is decoded; anything else (stacked encodings, zstd) is passed
    through as sent, with its Content-Encoding header left for the caller to see."""
    encodings = [
        value.strip().lower()
        for value in headers.get("content-encoding", "").split(",")
        if value.strip() and value.strip().lower() != "identity"
    ]
    if len(encodings) != 1:
        return _Identity()
    if encodings[0] in ("gzip", "x-gzip"):
        return _Zlib("gzip")
    if encodings[0] == "deflate":
        return _Zlib("deflate")
    if encodings[0] == "br" and _BROTLI_BOUNDED:
        return _Brotli()
    return _Identity()


@dataclass(frozen=True)
class Body:
    content: bytes
    truncated: bool
    downloaded_bytes: int


def read_body(
    response: httpx.Response, *, max_bytes: int, deadline: float, clock: Callable[[], float]
) -> Body:
    """Read and decode at most max_bytes (+1 to know there was more), then stop and close."""
    if response.is_stream_consumed:  # read already (an auth flow needed the body), decoded
        decoder: _Zlib | _Brotli | _Identity = _Identity()
        chunks: Iterable[bytes] = [response.content]
    else:
        decoder = _decoder_for(response.headers)
        chunks = response.iter_raw()
    buffer = bytearray()
    truncated = False
    try:
        for raw in chunks:
            if clock() > deadline:
                raise BodyDeadline()
            room = max_bytes - len(buffer)
            out = decoder.decode(raw, room + 1)
            if len(out) > room:
                buffer += out[:room]
                truncated = True
                break
            buffer += out
        else:
            out = decoder.flush()
            room = max_bytes - len(buffer)
            truncated = len(out) > room
            buffer += out[:room]
    finally:
        response.close()
    return Body(bytes(buffer), truncated, response.num_bytes_downloaded)
