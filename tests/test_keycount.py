"""KeyCount (counting `content_guid` in a streamed hits array) against a JSON parser as the
oracle: any spacing and key order, decoys inside strings, any chunking."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.connect.keycount import MAX_VALUE, KeyCount, NotAnArray

GUIDS = st.text(alphabet="0123456789abcdef-", min_size=0, max_size=40)
DECOYS = st.sampled_from(
    [
        '"content_guid":"decoy"',
        '{"content_guid": "decoy"}',
        '\\"content_guid\\":\\"decoy\\"',
        "content_guid",
        '\\\\"',
    ]
)
TEXT = st.lists(st.one_of(st.text(max_size=8), DECOYS), max_size=3).map("".join)
OTHER_VALUES = st.one_of(st.none(), st.integers(), st.lists(st.integers(), max_size=2), TEXT)


@st.composite
def hits(draw: st.DrawFn) -> list[dict[str, object]]:
    entries = []
    for index in range(draw(st.integers(0, 12))):
        entry: dict[str, object] = {"id": index, "user_guid": draw(GUIDS)}
        if draw(st.booleans()):
            entry["content_guid"] = draw(GUIDS) if draw(st.integers(0, 4)) else draw(OTHER_VALUES)
        entry["data"] = {"path": draw(TEXT), "user_agent": draw(TEXT)}
        if draw(st.booleans()):
            entry['x"content_guid'] = "decoy"  # a key that ends with "content_guid
        keys = draw(st.permutations(list(entry)))
        entries.append({key: entry[key] for key in keys})
    return entries


def expected(entries: list[dict[str, object]]) -> Counter[str]:
    """Strings written with no escapes, of at most MAX_VALUE bytes (a GUID is)."""
    values = [entry.get("content_guid") for entry in entries]
    return Counter(
        v
        for v in values
        if isinstance(v, str) and json.dumps(v)[1:-1] == v and len(v.encode()) <= MAX_VALUE
    )


def counted(body: bytes, cuts: list[int]) -> Counter[str]:
    counting = KeyCount("content_guid")
    previous = 0
    for cut in [*sorted(cuts), len(body)]:
        counting.feed(body[previous:cut])
        previous = cut
    return counting.counts()


@settings(max_examples=300, deadline=None)
@given(
    entries=hits(),
    indent=st.sampled_from([None, 0, 2]),
    separators=st.sampled_from([(",", ":"), (", ", ": "), (",", " : ")]),
    data=st.data(),
)
def test_counts_as_a_parser_does(entries, indent, separators, data):
    body = json.dumps(entries, indent=indent, separators=separators).encode()
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=6))
    assert counted(body, cuts) == expected(entries)


def test_a_match_cut_at_every_byte_is_counted_once():
    entries = [{"content_guid": f"{n:036d}", "data": {"path": "/"}} for n in range(20)]
    body = json.dumps(entries).encode()
    for cut in range(len(body)):
        assert counted(body, [cut]) == expected(entries), cut


def test_a_long_answer_in_small_chunks():
    entries = [
        {"id": n, "content_guid": f"g{n % 7}", "data": {"user_agent": "x" * 300}}
        for n in range(2_000)
    ]
    body = json.dumps(entries).encode()
    assert counted(body, list(range(0, len(body), 97))) == expected(entries)


@pytest.mark.parametrize(
    ("body", "got"),
    [
        (b"[]", {}),
        (b' [ {"content_guid" : "a"} ]\n', {"a": 1}),
        (b'[{"content_guid":"a"},{"content_guid":"a"},{"content_guid":"b"}]', {"a": 2, "b": 1}),
        (b'[{"content_guid":"a\\u0041"}]', {}),  # escaped: not a GUID, skipped
        (b'[{"content_guid":"' + b"g" * (MAX_VALUE + 1) + b'"}]', {}),  # too long: skipped
        (b'[{"note":"\\"content_guid\\":\\"x\\""}]', {}),  # inside a string
        (b'[{"x\\"content_guid":"x"}]', {}),  # a key that ends with "content_guid
    ],
)
def test_table(body, got):
    assert counted(body, []) == got


@pytest.mark.parametrize("body", [b"", b"  ", b'{"content_guid":"a"}', b'[{"content_guid":"a"}'])
def test_what_is_not_a_whole_array_is_refused(body):
    with pytest.raises(NotAnArray):
        counted(body, [])
