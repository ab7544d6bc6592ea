"""Escaping untrusted strings for Slack. Pure.

`esc` makes a Connect or user string inert in mrkdwn and in `text` fallbacks:

- `&`, `<`, `>` become `&amp;`, `&lt;`, `&gt;` (Slack's only control characters), so
  `<!channel>`, `<@U1>` or `<https://evil|click>` show as text;
- a bare `@here`, `@channel` or `@everyone` gets a WORD JOINER (U+2060, invisible, no line
  break) after the `@`, so it cannot ping even where Slack linkifies bare words (`parse=full`,
  or `parse=client`, chat.update's default);
- C0/C1 control characters and bidi embeddings/overrides/isolates are dropped, so a title
  cannot reverse or garble the rest of our line.

`clip` shortens text without cutting an entity, a `<…>` token or a grapheme in half.
"""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
WORD_JOINER = "\u2060"
_BROADCAST = re.compile(r"@(?=(?:here|channel|everyone))", re.IGNORECASE)
# The same, but not in the target of one of our own `<…>` tokens (e.g. a link's URL).
_BROADCAST_OUTSIDE_TOKENS = re.compile(
    r"@(?=(?:here|channel|everyone))(?![^<>|\s]*[|>])", re.IGNORECASE
)
_ENTITIES = ("&amp;", "&lt;", "&gt;")
_TOKEN_STARTS = ("<@", "<#", "<!", "<http://", "<https://", "<mailto:")
_ZWJ = "\u200d"
ELLIPSIS = "…"


def mute(text: str) -> str:
    """Neutralise bare `@here`/`@channel`/`@everyone`; our own `<…>` tokens are left alone.

    Idempotent, so it is safe to apply again as a safety net on already escaped text."""
    if "@" not in text:
        return text
    pattern = _BROADCAST_OUTSIDE_TOKENS if "<" in text else _BROADCAST
    return pattern.sub("@" + WORD_JOINER, text)


def _strip(value: object) -> str:
    return _CONTROL.sub("", str(value))


def _entities(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def esc(value: object) -> str:
    """Escape text for mrkdwn and `text` fallbacks: `<!channel>` or `@here` never ping anyone."""
    return mute(_entities(_strip(value)))


def code(value: object) -> str:
    """Inline code for an untrusted value: escaped, backticks neutralised."""
    return "`" + esc(value).replace("`", "'") + "`"


def _extends(ch: str) -> bool:
    """True if `ch` belongs to the grapheme before it, so a cut must not fall just before it."""
    o = ord(ch)
    if o < 0x300:
        return False
    return (
        o == 0x200D  # zero width joiner (👩‍💻)
        or 0xFE00 <= o <= 0xFE0F  # variation selectors (❤️)
        or 0x1F3FB <= o <= 0x1F3FF  # skin tones (👍🏽)
        or 0xE0020 <= o <= 0xE007F  # tag characters (subdivision flags)
        or 0xE0100 <= o <= 0xE01EF  # variation selectors supplement
        or 0xDC00 <= o <= 0xDFFF  # a low surrogate (lone surrogates from broken JSON)
        or unicodedata.category(ch) in ("Mn", "Mc", "Me")  # combining marks, keycap ⃣
    )


def _regional(ch: str) -> bool:
    return "\U0001f1e6" <= ch <= "\U0001f1ff"


def _safe_cut(text: str, cut: int) -> int:
    """The largest position <= `cut` that splits no entity, `<…>` token or grapheme."""
    while cut > 0:
        start = cut
        # an entity: `&amp;` is at most 5 characters long
        amp = text.rfind("&", max(0, cut - 4), cut)
        if amp != -1:
            for entity in _ENTITIES:
                if text.startswith(entity, amp) and amp + len(entity) > cut:
                    cut = amp
                    break
        # one of our tokens: a link, mention, channel or date (escaped text has no other `<`)
        lt = text.rfind("<", 0, cut)
        if lt != -1 and text.find(">", lt, cut) == -1 and text.startswith(_TOKEN_STARTS, lt):
            cut = lt
        # a grapheme: combining marks, ZWJ sequences, skin tones, flags, surrogate pairs
        while cut > 0 and (_extends(text[cut]) or text[cut - 1] == _ZWJ):
            cut -= 1
        if cut > 0 and _regional(text[cut]) and _regional(text[cut - 1]):
            run = 1
            while cut - run - 1 >= 0 and _regional(text[cut - run - 1]):
                run += 1
            cut -= run % 2  # an odd run before the cut: the cut is inside a flag
        if cut == start:
            break
    return cut


def clip(text: str, limit: int) -> str:
    """`text` if it fits, else its longest safe prefix plus `…`: at most `limit` characters."""
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    return text[: _safe_cut(text, limit - 1)] + ELLIPSIS


def plain(value: object, limit: int = 3000) -> str:
    """Plain text (not parsed by Slack): control characters, broadcasts and length need care."""
    return clip(mute(_strip(value)), limit)


def link(url: str | None, label: str) -> str:
    """A mrkdwn link whose label is escaped; URLs from Connect are escaped too."""
    if not url or not url.startswith(("http://", "https://")):
        return esc(label)
    safe_url = _entities(_strip(url)).replace("|", "%7C")
    return f"<{safe_url}|{esc(label).replace('|', '¦')}>"
