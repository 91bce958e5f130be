"""A fast first parse of pipeline YAML with yaml-rs, only where it means what PyYAML means.

PyYAML (even with libyaml) costs about 100 µs per task of a big pipeline file; yaml-rs
(Rust) parses the same text 20-30x faster. But yaml-rs reads YAML 1.2 and PyYAML YAML 1.1,
which differ on some plain scalars (``yes``/``on`` are booleans in 1.1, ``0755`` is octal,
``1e3`` a string, ``1:20`` a number, ...), on tags, merge keys (``<<``) and a few
characters. :func:`fast_load` first scans the text for anything where the two could
disagree and gives up (returns :data:`UNSURE`) on the first hit, so the caller falls back
to PyYAML: a file is never read differently because it is big. It gives up too when
yaml-rs fails for any reason (syntax, duplicate keys, aliases expanding without end):
the PyYAML path then reports the problem with its line and column.
"""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = ["UNSURE", "fast_load"]


class _Unsure:
    def __repr__(self) -> str:
        return "UNSURE"


#: what :func:`fast_load` returns when the text needs the careful (PyYAML) parse
UNSURE: Final = _Unsure()

#: bytes that may appear anywhere: printable ASCII but for tags (!), escapes (\\),
#: directives (%), complex keys (?), block scalars (| >), merge keys (<), anchors and
#: aliases (& *: their scanning rules differ) and reserved indicators (@ `), plus line
#: breaks; tabs and control characters are not in it
_PLAIN_BYTES = bytes(sorted((set(range(0x20, 0x7F)) - set(b"!\\%?|>@`<&*")) | {0x0A, 0x0D}))
#: a non-ASCII character PyYAML refuses or reads as a line break (NEL, LS, PS), or a BOM
_ODD_CHAR = re.compile("[^\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")
#: booleans in YAML 1.1 only (and its value key "="), as plain scalars (lower-cased text)
_WORDS = ("yes", "no", "on", "off", "=")
_BEFORE = (" ", "\n", "[", "{", ",")
_AFTER = frozenset(" \n\r,]}:#")
#: a colon where a key should be (an empty key; PyYAML refuses some, yaml-rs reads them)
_EMPTY_KEYS = ("\n:", " :", "{:", "[:", ",:", "\t:")
#: a flow collection as a mapping key (``[a]: 1``): PyYAML refuses it (unhashable),
#: yaml-rs reads it as a tuple or frozenset
_COLLECTION_KEYS = ("]:", "}:")
#: deep block nesting (yaml-rs recurses without a limit): PyYAML (libyaml caps it) reads it
_DEEP = ("\n" + " " * 100, "- " * 50)
#: digits to "0" and the characters a plain scalar follows to " ", to find numbers fast
_HIGH_BYTES = bytes(range(0x80, 0x100))
_NUMBERS = bytes.maketrans(b"123456789\n[{,", b"000000000    ")
_NUMBER_STARTS = (b" 0", b" -0", b" +0", b" .", b" -.", b" +.", b" _0", b" -_", b" +_")
_TOKEN = re.compile(rb"[^\s,\[\]{}#]*")
_SIMPLE_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?:?")


def _has_word(low: str) -> bool:
    """A YAML-1.1-only boolean written as a plain scalar (``yes``, ``On``, ``off``...)."""
    for word in _WORDS:
        for before in _BEFORE:
            probe = before + word
            at = low.find(probe)
            while at >= 0:
                end = at + len(probe)
                if end == len(low) or low[end] in _AFTER:
                    return True
                at = low.find(probe, end)
    return False


def _odd_number(data: bytes) -> bool:
    """A plain scalar that starts like a number but is not ``-12`` or ``3.25``: octal,
    exponents, sexagesimal, dates, ``+1``, ``.5``... are read differently by the two."""
    mapped = b" " + data.translate(_NUMBERS)  # mapped[i + 1] is data[i]
    for start in _NUMBER_STARTS:
        at = mapped.find(start)
        while at >= 0:
            token = _TOKEN.match(data, at)  # the scalar after the separator mapped[at]
            if token is None or not _SIMPLE_NUMBER.fullmatch(token.group()):
                return True
            at = mapped.find(start, at + 1)
    return False


def _safe(text: str) -> bool:
    """True when nothing in ``text`` could be read differently by YAML 1.1 and 1.2."""
    data = text.encode("utf-8", "surrogatepass")
    odd = data.translate(None, _PLAIN_BYTES)
    if odd:  # risky ASCII, or non-ASCII characters (each one's bytes all >= 0x80)
        if odd.translate(None, _HIGH_BYTES):
            return False
        if _ODD_CHAR.search(odd.decode("utf-8", "replace")):
            return False
    if text.startswith(("---", "...")) or "\n---" in text or "\n..." in text:
        return False
    if text.startswith(":") or any(key in text for key in _EMPTY_KEYS):
        return False
    if any(key in text for key in _COLLECTION_KEYS):
        return False
    if any(deep in text for deep in _DEEP):
        return False
    if _has_word("\n" + text.lower()):
        return False
    return not _odd_number(data)


def fast_load(text: str) -> Any:
    """The data of one YAML document, or :data:`UNSURE` when PyYAML must read it."""
    if not _safe(text):
        return UNSURE
    try:
        import yaml_rs
    except ImportError:  # pragma: no cover - a declared dependency
        return UNSURE
    try:
        return yaml_rs.loads(text, parse_datetime=False)
    except Exception:  # any failure: PyYAML reads it and names the problem
        return UNSURE
