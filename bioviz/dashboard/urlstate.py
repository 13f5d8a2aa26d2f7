"""What a shared link carries: dataset, page selections and the chosen pair as query parameters.

Values are plain strings so a link stays readable in a meeting: lists are comma-joined and a pair
is ``A,B``. Decoders never raise; a value that does not parse falls back to the default.
"""
from __future__ import annotations

# Keys each page owns, so a link opens the same view. Shared keys (dataset) first.
KEYS = {
    "dataset": "dataset",
    "emb_a": "a", "emb_b": "b", "level": "level", "color": "color",
    "source": "source", "threshold": "threshold", "adjust": "adjust",
    "gene": "gene", "pair": "pair", "channels": "ch",
}


def encode(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple, set)):
        return ",".join(str(v) for v in value)
    return str(value)


def decode_list(text: str | None, allowed=None) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if allowed is not None:
        items = [t for t in items if t in set(allowed)]
    return items


def decode_choice(text: str | None, options, default=None):
    """``text`` when it is one of ``options``, else ``default`` (a stale link must not break a page)."""
    options = list(options)
    if text is not None and str(text) in [str(o) for o in options]:
        return options[[str(o) for o in options].index(str(text))]
    return default if default is not None or not options else options[0]


def decode_pair(text: str | None) -> tuple[str, str] | None:
    if not text:
        return None
    for sep in (",", "|", ";", " "):
        if sep in text:
            a, _, b = text.partition(sep)
            a, b = a.strip(), b.strip()
            return (a, b) if a and b else None
    return None


def page_url(page: str, params: dict) -> str:
    """A relative link, e.g. ``Recall?dataset=demo&source=CORUM`` (empty values dropped)."""
    from urllib.parse import urlencode

    q = urlencode({k: encode(v) for k, v in params.items() if encode(v) != ""})
    return f"{page}?{q}" if q else page
