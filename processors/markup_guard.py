"""Bounded scans of raw markup that keep pathological pages from stalling the HTML parser.

libxml2's HTML parser compares each new attribute of a tag with every earlier one (30k
attributes on one tag: 5 s, 100k: minutes), gives up on everything after nesting depth 256,
and builds one element per tag. Real news pages stay far below all three limits, so the
checks are regex scans in C that match nothing on them; only a page that trips one pays for
the repair, which is linear. Pure: bytes in, bytes and what was done out.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass

MAX_ATTRIBUTES = 100  # per tag; news pages use < 40 (libxml2's duplicate check is quadratic)
MAX_VALUE_BYTES = 65_536  # longer attribute values (inline images, JSON blobs) are emptied
MAX_DEPTH = 180  # libxml2 stops the whole document at depth 256 (html/body/wrappers count)
RUN_REPEATS = 8  # a run of more identical empty elements than this is collapsed to this

# One attribute token: unquoted runs and quoted strings glued together ("a=x", 'b="x > y"').
# Possessive quantifiers (no backtracking) and no '<' outside quotes (a failed attempt ends
# at the next '<', where the next attempt starts) keep every scan linear.
_ATTR = rb"""(?:[^\s<>"']++|"[^"]*+"|'[^']*+')++"""
_MANY_ATTRS = re.compile(
    rb"(<[A-Za-z][A-Za-z0-9:-]*+(?:\s++" + _ATTR + rb"){%d})(?:\s++" % MAX_ATTRIBUTES + _ATTR
    + rb")++")
_LONG_VALUE = re.compile(rb"""=\s*+(?:"[^"]{%d,}+"|'[^']{%d,}+')""" % (
    MAX_VALUE_BYTES, MAX_VALUE_BYTES))
# A run of empty elements: <br><br>..., <p></p><p></p>..., <hr/> <hr/> ...
_EMPTY_UNIT = (rb"(?:<(?:br|hr|wbr|img|input|meta|link|col|source|embed)\b[^<>]*+>\s*+"
               rb"|<([a-z][a-z0-9]{0,10})\b[^<>]*+>\s*+</\1>\s*+)")
_EMPTY_RUN = re.compile(rb"(?:%s){%d,}" % (_EMPTY_UNIT, RUN_REPEATS + 1), re.I)
_ONE_UNIT = re.compile(_EMPTY_UNIT, re.I)
# A script or style body, up to its end tag (or the end of the page when unclosed).
_CODE_BLOCK = re.compile(rb"<(script|style)\b.*?(?:</\1\s*>|\Z)", re.I | re.S)
_TAG = re.compile(rb"""<(/?)([A-Za-z][^\s/<>]*+)(?:[^<>"']++|"[^"]*+"|'[^']*+')*+>""")
_VOID = frozenset(b"area base br col embed hr img input keygen link meta param source track "
                  b"wbr".split())
_RAW_TEXT = frozenset((b"script", b"style", b"textarea", b"title", b"xmp", b"plaintext"))
# Opening one of these while the same element is open closes the open one (HTML rules).
_SELF_CLOSING = frozenset(b"p li dt dd option tr td th".split())


@dataclass(frozen=True)
class Guarded:
    data: bytes
    repairs: tuple[str, ...] = ()  # flags naming what was cut, for counting


def guard_markup(raw: bytes, long_values: bool = True) -> Guarded:
    """Trim tags with absurd attribute lists and (with ``long_values``) empty huge attribute
    values. Returns the page unchanged (same object) when there is neither."""
    repairs = []
    if _MANY_ATTRS.search(raw):
        raw, n = _outside_code(_MANY_ATTRS, lambda m: m.group(1), raw)
        if n:
            repairs.append("attributes_trimmed")
    if long_values and len(raw) > MAX_VALUE_BYTES and _LONG_VALUE.search(raw):
        raw, n = _outside_code(_LONG_VALUE, lambda m: b'=""', raw)
        if n:
            repairs.append("long_values_emptied")
    return Guarded(raw, tuple(repairs))


def _outside_code(pattern: re.Pattern[bytes], repl: Callable[[re.Match[bytes]], bytes],
                  raw: bytes) -> tuple[bytes, int]:
    """``pattern.subn`` except inside <script>/<style> bodies, which the parser never reads
    as tags (minified code can look like a tag with many attributes)."""
    code_starts, code_ends = [], []
    for block in _CODE_BLOCK.finditer(raw):
        code_starts.append(block.start())
        code_ends.append(block.end())
    count = 0

    def sub(match: re.Match[bytes]) -> bytes:
        nonlocal count
        i = bisect_right(code_starts, match.start()) - 1
        if i >= 0 and match.start() < code_ends[i]:
            return match.group(0)
        count += 1
        return repl(match)

    return pattern.sub(sub, raw), count


def collapse_runs(raw: bytes) -> Guarded:
    """Collapse runs of identical empty elements (a million ``<br>``) to ``RUN_REPEATS``.
    Costs a scan of the page, so the caller runs it only when the page has too many tags."""
    def first_units(match: re.Match[bytes]) -> bytes:
        unit = _ONE_UNIT.match(match.group(0))
        return unit.group(0) * RUN_REPEATS if unit else match.group(0)

    out, n = _EMPTY_RUN.subn(first_units, raw)
    return Guarded(out, ("runs_collapsed",) if n else ())


def flatten_nesting(raw: bytes, max_depth: int = MAX_DEPTH) -> tuple[bytes, int]:
    """Drop opening tags (and their closing tags) nested deeper than ``max_depth``; the text
    they held stays. Returns the new markup and how many tags were dropped. Linear; an
    approximation of HTML's tree rules (it does not know that <div> closes an open <p>), so
    it may count a page deeper than the parser does: call it only when the parser gave up."""
    out: list[bytes] = []
    stack: list[bytes] = []
    open_count: dict[bytes, int] = {}  # names on the stack: membership without a scan
    dropped: dict[bytes, int] = {}
    removed = 0
    pos = 0
    lower = raw.lower()
    for match in _TAG.finditer(raw):
        start = match.start()
        if start < pos:  # inside a script/style body we skipped
            continue
        closing, name = match.group(1), match.group(2).lower()
        keep = True
        if closing:
            if dropped.get(name):
                dropped[name] -= 1
                keep = False
            elif open_count.get(name):
                while stack:
                    top = stack.pop()
                    open_count[top] -= 1
                    if top == name:
                        break
        elif name not in _VOID and not match.group(0).endswith(b"/>"):
            if name in _SELF_CLOSING and stack and stack[-1] == name:
                stack.pop()
                open_count[name] -= 1
            if len(stack) >= max_depth:
                dropped[name] = dropped.get(name, 0) + 1
                keep = False
            else:
                stack.append(name)
                open_count[name] = open_count.get(name, 0) + 1
        out.append(raw[pos:start])
        if keep:
            out.append(match.group(0))
        else:
            removed += 1
        pos = match.end()
        if not closing and name in _RAW_TEXT:
            end = lower.find(b"</" + name, pos)  # raw text: no tags inside
            if end < 0:
                break
            out.append(raw[pos:end])
            pos = end
    out.append(raw[pos:])
    return b"".join(out), removed
