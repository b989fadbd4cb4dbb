"""Request bodies decoded by their Content-Encoding (http/encoding.py), as the endpoints read
them: every supported encoding, the limit on what a body decodes to, and what is refused."""

from __future__ import annotations

import gzip
import zlib

import pytest

from streamproc.http.encoding import (
    BadEncoding,
    TooLarge,
    UnsupportedEncoding,
    decode_body,
    encoding_of,
)

BODY = b"".join(b'{"n": %d}\n' % i for i in range(5000))


def raw_deflate(data: bytes) -> bytes:
    z = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return z.compress(data) + z.flush()


@pytest.mark.parametrize(
    "header, encoded",
    [
        ("", BODY),
        ("identity", BODY),
        ("gzip", gzip.compress(BODY)),
        ("GZip", gzip.compress(BODY)),
        ("x-gzip", gzip.compress(BODY)),
        ("identity, gzip", gzip.compress(BODY)),
        ("deflate", zlib.compress(BODY)),
        ("deflate", raw_deflate(BODY)),  # as some clients send it
        ("gzip", gzip.compress(BODY[:100]) + gzip.compress(BODY[100:])),  # two members
    ],
)
def test_a_body_of_a_supported_encoding_decodes_to_what_was_sent(
    header: str, encoded: bytes
) -> None:
    assert decode_body(encoded, header, len(BODY)) == BODY


@pytest.mark.parametrize("header", ["br", "zstd", "compress", "gzip, br", "gzip, gzip", "*"])
def test_other_encodings_are_refused_by_name(header: str) -> None:
    with pytest.raises(UnsupportedEncoding) as exc:
        encoding_of(header)
    assert exc.value.reason == "unsupported_encoding"
    assert "identity, gzip or deflate" in str(exc.value)


def test_a_body_is_decoded_no_further_than_the_limit() -> None:
    bomb = gzip.compress(b"\n" * 50_000_000)  # ~50 KB that decode to 50 MB
    with pytest.raises(TooLarge):
        decode_body(bomb, "gzip", 1 << 20)
    with pytest.raises(TooLarge):
        decode_body(BODY, "", len(BODY) - 1)


@pytest.mark.parametrize(
    "header, encoded",
    [
        ("gzip", gzip.compress(BODY)[:-20]),  # cut short
        ("gzip", b"not gzip at all"),
        ("deflate", zlib.compress(BODY) + b"more"),
    ],
)
def test_a_body_that_does_not_decode_is_a_bad_encoding(header: str, encoded: bytes) -> None:
    with pytest.raises(BadEncoding) as exc:
        decode_body(encoded, header, 1 << 20)
    assert exc.value.reason == "bad_request" and header in str(exc.value)
