"""Counting one key's string values in a streamed JSON array, without parsing it.

Connect's content hits are one bare array, ~190 bytes an entry: 2 million hits are ~380 MB.
ijson's C parser reads that in ~2.5 s, most of a plan's 3 s, because it tokenises and builds
every field. A plan needs one field: this finds it with one regular expression per chunk
(~650 MB/s, bench/usage.py) and builds nothing else.

It is exact for valid JSON, whatever the spacing or key order:
* the bytes `"key"` then `:` are the key `key`: a quote inside a string is escaped, so a match
  there would close the string after `\\"key` and make it a key that ends with `"key`, which
  the look-behind (no backslash before the opening quote) rules out;
* a value is counted when it is a string of at most MAX_VALUE bytes with no escapes (a GUID);
  any other value (a number, an object, an escaped or longer string) is skipped.
What it gives up is the parse: it counts `key` at any depth, so it is for a key that only the
array's elements carry (`content_guid` of a hit: its `data` holds `path` and `user_agent`), and
of the shape it checks only that the answer opens with `[` and closes with `]`.
"""

from __future__ import annotations

import re
from collections import Counter

MAX_VALUE = 256  # bytes of a counted value (a GUID is 36)
_SPACE = rb"[ \t\n\r]{0,16}"  # JSON's blanks around the colon (none in Connect's answers)


class NotAnArray(ValueError):
    """The answer does not open with `[` or does not close with `]` (cut short)."""


class KeyCount:
    """Feed the answer's chunks in order, then `counts()`: each string value of `key`, counted."""

    def __init__(self, key: str) -> None:
        name = re.escape(key.encode())
        self._pattern = re.compile(
            # The look-behind follows the literal so that the search still skips ahead by it.
            rb'"'
            + name
            + rb'"(?<!\\"'
            + name
            + rb'")'
            + _SPACE
            + rb":"
            + _SPACE
            + rb'"([^"\\]{0,%d})"' % MAX_VALUE
        )
        # The longest match, and the byte before it the look-behind reads: the tail of one
        # chunk kept for the next, so a match cut by a chunk's end is found whole.
        self._keep = 1 + len(key.encode()) + 2 + 16 + 1 + 16 + 2 + MAX_VALUE
        self._counts: Counter[bytes] = Counter()
        self._tail = b""
        self._opening = b""
        self._closing = b""

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        stripped = chunk.strip()
        if stripped:
            self._opening = self._opening or stripped[:1]
            self._closing = stripped[-1:]
        carried = len(self._tail)
        text = self._tail + chunk
        start = 0
        if carried:
            # Matches that end within the carried tail were counted with the chunk before.
            for match in self._pattern.finditer(text):
                if match.start() >= carried:
                    start = match.start()
                    break
                if match.end() > carried:
                    self._counts[match[1]] += 1
                start = match.end()
        self._counts.update(self._pattern.findall(text, start))
        self._tail = text[-self._keep :]

    def counts(self) -> Counter[str]:
        """The counts so far; raises NotAnArray unless the whole answer was one array."""
        if self._opening != b"[" or self._closing != b"]":
            raise NotAnArray("not a whole JSON array")
        return Counter({value.decode(errors="replace"): n for value, n in self._counts.items()})
