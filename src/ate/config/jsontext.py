"""Strict JSON for config files: what Python's json module lets through, refused with line and column.

Python accepts ``NaN`` and ``Infinity``, keeps the last of duplicate keys silently, recurses once per nesting
level and converts digit strings of any length; for a config that sets money limits each of those is either a
silent danger or a crash. One pass over the tokens finds them all, then ``json`` parses what is left.
"""

from __future__ import annotations

import json
import re

MAX_DEPTH = 32  # the config nests 4 levels; anything near this is not a config
MAX_NUMBER_CHARS = 40  # enough for any float written in full; far below int()'s 4300-digit limit

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[{}\[\]:,]|-?(?:NaN|Infinity)|[-+0-9.eE]+|[ \t\r\n]+|[a-zA-Z_]+|.', re.S)


class JsonTextError(ValueError):
    """One problem: ``where`` is ``line L column C`` (empty when there is no one spot)."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{where}: {what}" if where else what)
        self.where, self.what = where, what


def _where(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    return f"line {line} column {offset - (text.rfind(chr(10), 0, offset) + 1) + 1}"


def decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = raw[:exc.start].decode("utf-8", errors="replace")
        raise JsonTextError(_where(text, len(text)), f"byte 0x{raw[exc.start]:02x} is not UTF-8 text") from None


def _scan(text: str) -> None:
    """Refuse non-finite constants, over-long numbers, duplicate keys and deep nesting, naming the spot."""
    stack: list[set[str] | None] = []  # per open container: the keys seen (None for an array)
    last_string: tuple[str, int] | None = None
    for m in _TOKEN.finditer(text):
        tok, at = m.group(), m.start()
        c = tok[0]
        if c in " \t\r\n":
            continue
        if c in "{[":
            stack.append(set() if c == "{" else None)
            if len(stack) > MAX_DEPTH:
                raise JsonTextError(_where(text, at), f"nested deeper than {MAX_DEPTH} levels")
        elif c in "}]":
            if stack:
                stack.pop()
        elif c == ":":
            keys = stack[-1] if stack else None
            if keys is not None and last_string is not None:
                key, key_at = last_string
                if key in keys:
                    raise JsonTextError(_where(text, key_at), f"duplicate key {key} (the first one would be "
                                        "silently replaced)")
                keys.add(key)
        elif tok.lstrip("-") in ("NaN", "Infinity"):
            raise JsonTextError(_where(text, at), f"{tok} is not a number a config may hold (finite values only)")
        elif c in "-+0123456789." and len(tok) > MAX_NUMBER_CHARS:
            raise JsonTextError(_where(text, at), f"a number of {len(tok)} characters (at most "
                                f"{MAX_NUMBER_CHARS})")
        last_string = (tok, at) if c == '"' else None


def loads(raw: bytes) -> object:
    """The parsed document, or JsonTextError naming line and column."""
    text = decode(raw)
    _scan(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonTextError(f"line {exc.lineno} column {exc.colno}", exc.msg) from None
    except (RecursionError, ValueError) as exc:  # guarded by _scan; kept so no input can escape as a crash
        raise JsonTextError("", f"cannot be parsed: {type(exc).__name__}") from None
