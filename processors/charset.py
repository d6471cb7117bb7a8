"""Bytes from the internet -> text: charset from the header, then the page, then sniffing.

Never raises on broken encodings: the last resort decodes with replacement characters.
"""

from __future__ import annotations

import codecs
import re

# WHATWG: labels that browsers treat as windows-1252 (a superset, so no byte is lost).
_ALIASES = {
    "latin1": "cp1252", "latin-1": "cp1252", "iso-8859-1": "cp1252", "iso8859-1": "cp1252",
    "us-ascii": "cp1252", "ascii": "cp1252", "iso_8859-1": "cp1252", "l1": "cp1252",
    "x-user-defined": "cp1252", "unicode": "utf-8", "utf8": "utf-8", "x-sjis": "shift_jis",
    "gb2312": "gb18030", "gbk": "gb18030", "ks_c_5601-1987": "euc-kr",
}
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)
# <meta charset="x"> and <meta http-equiv="Content-Type" content="text/html; charset=x">
_META_CHARSET = re.compile(rb"<meta[^>]{0,200}?charset\s*=\s*[\"']?\s*([\w.:-]+)", re.I)
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]{0,100}?encoding\s*=\s*[\"']([\w.:-]+)", re.I)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Characters lxml refuses (XML-invalid controls) and that are never text.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SNIFF_BYTES = 64_000


def normalise_charset(label: str | None) -> str | None:
    """A Python codec name for a charset label, or None when the label is unknown."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _ALIASES.get(label, label)
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    # UTF-16/32 declared inside an 8-bit-readable page is a lie (the page could not say it).
    return name


def charset_from_content_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    match = _HEADER_CHARSET.search(content_type)
    return normalise_charset(match.group(1)) if match else None


def charset_from_markup(head: bytes) -> str | None:
    """The charset a page declares in its first bytes (<?xml?> or <meta>)."""
    match = _XML_DECL.search(head) or _META_CHARSET.search(head)
    if not match:
        return None
    name = normalise_charset(match.group(1).decode("ascii", "replace"))
    if name and name.startswith(("utf-16", "utf-32")):
        return "utf-8"  # WHATWG: a page readable enough to declare this is not UTF-16
    return name


def _strict(raw: bytes, encoding: str) -> str | None:
    try:
        return raw.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _sniff(raw: bytes) -> str | None:
    from charset_normalizer import from_bytes

    matches = from_bytes(raw[:_SNIFF_BYTES])
    best = matches.best()
    if best is None:
        return None
    # On a tie, windows-1252 (the web's usual undeclared charset) beats its look-alikes
    # (cp1250, cp1257, ...), which decode the same bytes into rarer letters.
    for match in matches:
        if (match.encoding == "cp1252" and match.chaos <= best.chaos + 0.01
                and match.coherence >= best.coherence - 0.01):
            return "cp1252"
    return normalise_charset(best.encoding)


def _fits(raw: bytes, encoding: str) -> bool:
    """``raw`` is text in ``encoding`` with a few broken bytes. One stray byte in a UTF-8
    page must not make the page "not UTF-8" (a code page such as cp1250 then decodes every
    byte, and every accented letter becomes mojibake). UTF-8 validates itself: a page in
    another charset almost never holds a valid multi-byte sequence, and each of its non-ASCII
    bytes is an error, so as many good non-ASCII characters as errors is UTF-8. A code page
    decodes nearly any byte, so it must decode ten good characters per error."""
    try:
        text = raw.decode(encoding, "replace")
    except LookupError:
        return False
    bad = text.count("\ufffd")
    good = len(text) - len(text.encode("ascii", "ignore")) - bad  # non-ASCII, counted in C
    if encoding == "utf-8":
        return good >= max(bad, 1)  # some real multi-byte text, at least one per error
    return good >= 10 * bad


def detect_encoding(raw: bytes, content_type: str | None = None) -> tuple[str, bool]:
    """The page's encoding and whether ``raw`` decodes with it strictly. Never raises.

    Order: byte-order mark, UTF-8 (strict, then with a few broken bytes: ``_fits``), the
    Content-Type charset, the in-page declaration (strict, then fitting); statistical
    sniffing only when none fits, and windows-1252 as the last resort.
    """
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return encoding, _strict(raw, encoding) is not None
    head = raw[:4096]
    declared = [d for d in (charset_from_content_type(content_type), charset_from_markup(head))
                if d]
    # Valid UTF-8 first, whatever was declared: bytes of another charset are almost never
    # valid UTF-8 by chance, while templates declaring windows-125x or latin-1 over UTF-8
    # content are common (and for pure ASCII every ASCII-compatible charset agrees).
    if _strict(raw, "utf-8") is not None:
        return "utf-8", True
    # The same with a few broken bytes (see _fits), before a declared code page: one of
    # those decodes any byte, so "strictly valid" says nothing for it.
    if _fits(raw, "utf-8"):
        return "utf-8", False
    for encoding in declared:
        if _strict(raw, encoding) is not None:
            return encoding, True
    for encoding in declared:
        if _fits(raw, encoding):
            return encoding, False
    try:
        sniffed = _sniff(raw)
    except Exception:  # noqa: BLE001 - the sniffer is a heuristic; never let it fail a page
        sniffed = None
    if sniffed and _strict(raw, sniffed) is not None:
        return sniffed, True
    return sniffed or "cp1252", False


def decode_html(raw: bytes, content_type: str | None = None) -> tuple[str, str]:
    """Decode a page to text; returns ``(text, encoding_used)``. Never raises."""
    encoding, _ = detect_encoding(raw, content_type)
    start = next((len(bom) for bom, enc in _BOMS if enc == encoding and raw.startswith(bom)), 0)
    return _clean_text(raw[start:].decode(encoding, "replace")), encoding


def to_utf8(raw: bytes, content_type: str | None = None) -> tuple[bytes, str]:
    """The page as valid UTF-8 bytes (what the HTML parser is given) and the source encoding.

    A page that already is valid UTF-8 (most are) is returned as is, without copying.
    """
    encoding, strict = detect_encoding(raw, content_type)
    if encoding == "utf-8" and strict:
        return raw, encoding
    text, encoding = decode_html(raw, content_type)
    return text.encode("utf-8", "replace"), encoding


def _clean_text(text: str) -> str:
    # Cheap check first: almost no page has such characters, and sub() always copies.
    return _CONTROL.sub("", text) if _CONTROL.search(text) else text
