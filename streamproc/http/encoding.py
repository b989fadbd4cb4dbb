"""Request bodies as clients encode them (``Content-Encoding``), decoded by the handler.

The listener's server decodes nothing itself (``SERVER_OPTIONS``): aiohttp would answer a
``br`` or ``zstd`` body with a 400 of its own when the Brotli or zstandard library is not
installed, before any handler, counter or bounded log saw it, and would hand on a body of
an encoding it does not know (``compress``, a list of two) undecoded. Here every encoding
takes one path::

    Content-Encoding: (none), identity   -> the body as sent
                      gzip, x-gzip, deflate -> decoded while it is read, never past the
                                               limit (a small body may decode to gigabytes)
                      anything else        -> UnsupportedEncoding: the handler answers 415,
                                              naming SUPPORTED
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterable
from typing import Any

SUPPORTED = ("identity", "gzip", "deflate")
# what the server that serves these handlers must be given (web.AppRunner, TestServer)
SERVER_OPTIONS: dict[str, Any] = {"auto_decompress": False}
_ALIASES = {"": "", "identity": "", "gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}


class BodyError(ValueError):
    """A body refused whole; ``reason`` is the refusal's metric label, ``status`` its
    answer."""

    reason = "bad_request"
    status = 400


class UnsupportedEncoding(BodyError):
    reason = "unsupported_encoding"
    status = 415


class BadEncoding(BodyError):
    """The body does not decode by its Content-Encoding."""


class TooLarge(BodyError):
    reason = "too_large"
    status = 413


def encoding_of(header: str) -> str:
    """``""`` (as sent), ``"gzip"`` or ``"deflate"`` for a Content-Encoding header, else
    UnsupportedEncoding."""
    codings = [c.strip().lower() for c in header.split(",")]
    codings = [c for c in codings if c not in ("", "identity")] or [""]
    if len(codings) == 1 and codings[0] in _ALIASES:
        return _ALIASES[codings[0]]
    raise UnsupportedEncoding(
        f"Content-Encoding {header.strip()[:60]!r} is not supported: send the body as "
        f"{', '.join(SUPPORTED[:-1])} or {SUPPORTED[-1]}"
    )


class Decoder:
    """One body's bytes of ``encoding`` (``encoding_of``) in, what they decode to out; no
    more than ``limit`` bytes in all (TooLarge past it)."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.encoding = encoding
        self.limit = limit
        self.size = 0
        self._z: Any = None
        self._started = False

    def _new(self, first: int) -> Any:
        if self.encoding == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        # deflate is zlib-wrapped (RFC 1950) by the standard, raw by some clients: the first
        # byte says which (a zlib header's low four bits are 8), as aiohttp decides it
        return zlib.decompressobj(zlib.MAX_WBITS if first & 0x0F == 8 else -zlib.MAX_WBITS)

    def feed(self, chunk: bytes) -> bytes:
        if not self.encoding:
            self._count(len(chunk))
            return chunk
        out: list[bytes] = []
        try:
            while chunk:
                if self._z is None:
                    self._z = self._new(chunk[0])
                elif self._z.eof:
                    # gzip members one after another are one body (RFC 1952)
                    if self.encoding != "gzip":
                        raise BadEncoding(f"bytes after the end of the {self.encoding} stream")
                    self._z = self._new(chunk[0])
                # at most what the limit allows, plus one byte to tell it was passed
                part = self._z.decompress(chunk, self.limit - self.size + 1)
                self._count(len(part))
                out.append(part)
                chunk = self._z.unconsumed_tail or self._z.unused_data
        except zlib.error as exc:
            raise BadEncoding(f"the body is not valid {self.encoding} ({exc})") from None
        return b"".join(out)

    def finish(self) -> None:
        """The body ended: its encoded stream must have too."""
        if self.encoding and not (self._z is not None and self._z.eof):
            raise BadEncoding(f"the body is not valid {self.encoding}: it ends too early")

    def _count(self, n: int) -> None:
        self.size += n
        if self.size > self.limit:
            raise TooLarge(f"the body is over the {self.limit} bytes one request may carry")


async def read_decoded(chunks: AsyncIterable[bytes], header: str, limit: int) -> bytes:
    """A body read chunk by chunk and decoded by its Content-Encoding ``header``, or a
    BodyError; never holds more than ``limit`` decoded bytes."""
    decoder = Decoder(encoding_of(header), limit)
    out = [decoder.feed(chunk) async for chunk in chunks]
    decoder.finish()
    return b"".join(out)


def decode_body(raw: bytes, header: str, limit: int) -> bytes:
    """``read_decoded`` of a body read whole."""
    decoder = Decoder(encoding_of(header), limit)
    out = decoder.feed(raw)
    decoder.finish()
    return out
