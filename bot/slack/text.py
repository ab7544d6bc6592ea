"""Escaping untrusted strings for Slack. Pure."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def esc(value: object) -> str:
    """Escape text for mrkdwn and `text` fallbacks: `<!channel>` must never ping anyone."""
    text = _CONTROL.sub("", str(value))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(value: object) -> str:
    """Inline code for an untrusted value: escaped, backticks neutralised."""
    return "`" + esc(value).replace("`", "'") + "`"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def plain(value: object, limit: int = 3000) -> str:
    """Plain text (not parsed by Slack): only control characters and length need care."""
    return clip(_CONTROL.sub("", str(value)), limit)


def link(url: str | None, label: str) -> str:
    """A mrkdwn link whose label is escaped; URLs from Connect are escaped too."""
    if not url or not url.startswith(("http://", "https://")):
        return esc(label)
    safe_url = esc(url).replace("|", "%7C")
    return f"<{safe_url}|{esc(label).replace('|', '¦')}>"
