"""One deterministic key: a hash of the canonical URL.

It is the Kafka key and the search document id, so a re-poll or a replay is an upsert.
"""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that only say how a reader arrived, never which page it is.
_TRACKING_PREFIXES = ("utm_", "at_", "mc_", "pk_", "mtm_", "hsa_", "oly_", "__hs", "_hs")
_TRACKING_NAMES = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "igshid",
        "mkt_tok", "ocid", "cmpid", "cmp", "ito", "ns_mchannel", "ns_source", "ns_campaign",
        "ns_linkname", "ns_fee", "xtor", "wt.mc_id", "smid", "spm", "ref_src", "ref_url",
        "_ga", "_gl", "s_cid",
    }
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRACKING_NAMES or lowered.startswith(_TRACKING_PREFIXES)


def canonical_url(url: str) -> str:
    """Normalise a URL so that every way of writing the same page gives the same string.

    Lower-cases scheme and host, drops default ports, fragments and tracking parameters,
    and sorts the remaining query parameters. Raises ``ValueError`` for a URL with no host.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if not scheme or not host:
        raise ValueError(f"not an absolute URL: {url!r}")
    try:
        port = parts.port
    except ValueError as exc:  # e.g. "http://host:notaport/"
        raise ValueError(f"bad port in URL: {url!r}") from exc
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    if ":" in host and not host.startswith("["):  # IPv6 literal
        netloc = f"[{host}]" if port in (None, _DEFAULT_PORTS.get(scheme)) else f"[{host}]:{port}"
    query = sorted(
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)
    )
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))


def url_key(url: str) -> str:
    """The article key: first 16 hex digits of SHA-256 over the canonical URL."""
    return hashlib.sha256(canonical_url(url).encode()).hexdigest()[:16]


def text_hash(*parts: str | None) -> str:
    """A short content hash (e.g. of an entry's title and summary) to notice updates."""
    h = hashlib.sha256()
    for part in parts:
        h.update((part or "").encode())
        h.update(b"\x00")
    return h.hexdigest()[:16]
