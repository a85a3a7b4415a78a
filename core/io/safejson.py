"""JSON from an untrusted upload or URL, with every way it can go wrong turned into one ValueError.

`json.loads` alone lets several hostile inputs through as something other than a clean error: nesting a few
thousand levels deep raises RecursionError, an integer of more than 4,300 digits raises a ValueError about
"integer string conversion" (CPython's CVE-2020-10735 guard), and `NaN`, `Infinity` or `1e999` are accepted
as non-finite floats that then flow into the estimator as numbers. `load_json` caps the size first, decodes
UTF-8, rejects non-finite numbers, integers of more than MAX_INT_DIGITS digits and too-deep nesting, and
raises `JsonError` naming the problem.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64  # far deeper than any config.json or scenario file (config.json: 3 levels)
MAX_INT_DIGITS = 30  # no size, count or id in a config or scenario file comes near 10**30


class JsonError(ValueError):
    """Input that is not usable JSON; the message says why, in words for the user.

    `syntax` is True when the bytes were read but are not acceptable JSON; `detail` is then the why alone.
    """

    def __init__(self, message: str, detail: str = "", *, syntax: bool = False):
        super().__init__(message)
        self.detail = detail or message
        self.syntax = syntax


class _Reject(ValueError):
    """Raised inside json.loads by the number hooks; becomes a JsonError."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Reject(f"number {text[:40]} is out of range (not a finite number)")
    return value


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Reject(f"integer {text[:20]}... ({len(text)} digits) is out of range")
    return int(text)


def _constant(name: str) -> float:
    raise _Reject(f"{name} is not a number JSON allows")


def _depth(doc: Any) -> int:
    """Nesting depth of lists/objects, without recursion (so a hostile document cannot blow the stack)."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                break
            children = node.values() if isinstance(node, dict) else node
            stack.extend((c, level + 1) for c in children if isinstance(c, dict | list))
    return deepest


def load_json(data: bytes | bytearray | str, *, max_bytes: int, what: str = "the file") -> Any:
    """Parse `data` (at most `max_bytes`); JsonError says what is wrong, starting with `what`."""
    if len(data) > max_bytes:
        raise JsonError(f"{what} is larger than {_size(max_bytes)}")
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise JsonError(f"{what} is not UTF-8 text (byte {exc.start})") from None
    try:
        doc = json.loads(data, parse_float=_finite, parse_int=_integer, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise _invalid(what, f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise _invalid(what, f"nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # _Reject, or CPython's own integer-size guard
        raise _invalid(what, str(exc)[:120]) from None
    if _depth(doc) > MAX_DEPTH:
        raise _invalid(what, f"nested more than {MAX_DEPTH} levels deep")
    return doc


def _invalid(what: str, detail: str) -> JsonError:
    return JsonError(f"{what} is not valid JSON: {detail}", detail, syntax=True)


def _size(n: int) -> str:
    return f"{n / 1_000_000:g} MB" if n >= 1_000_000 else f"{n:,} bytes"
