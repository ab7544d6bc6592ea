"""`/connect ...` text -> command objects: pure, and never raises on what a user types."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.connect import ContentFilter, VersionFilter
from bot.services.caches import CacheTarget
from bot.services.times import After, AtDateTime, AtTime
from bot.slack.parser import (
    Audit,
    CachesDelete,
    CachesList,
    ContentSearch,
    Help,
    Impact,
    ParseError,
    RebuildCancel,
    RebuildHistory,
    RebuildPlan,
    RebuildScheduled,
    RebuildStatus,
    Servers,
    describe_filter,
    parse,
)

GUID_A = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
GUID_B = "ABCDEF01-2345-6789-ABCD-EF0123456789"
SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


def v(text: str) -> VersionFilter:
    return VersionFilter.parse(text)


def search(
    args: str, page: int = 1, server: str | None = None, **filter_fields: Any
) -> ContentSearch:
    return ContentSearch(ContentFilter(**filter_fields), args, page, server=server)


def plan(description: str, parallelism: int | None = None, **filter_fields: Any) -> RebuildPlan:
    return RebuildPlan(ContentFilter(published=True, **filter_fields), parallelism, description)


GOOD = [
    # help
    ("", Help()),
    ("   ", Help()),
    ("help", Help()),
    ("Help", Help()),  # a phone capitalises the first word
    ("-h", Help()),
    ("--help", Help()),
    ("?", Help()),
    ("help rebuild", Help("rebuild")),
    ("help caches", Help("caches")),
    ("help rebuild status", Help("rebuild status")),  # every word of the topic counts
    ("help caches delete", Help("caches delete")),
    # servers
    ("servers", Servers()),
    ("server", Servers()),
    ("SERVERS", Servers()),
    # caches list
    ("caches list", CachesList()),
    ("cache ls", CachesList()),
    ("Caches LIST", CachesList()),
    # caches delete
    (
        "caches delete -l Python -V 3.11.3",
        CachesDelete((CacheTarget("Python", "3.11.3", "Local"),)),
    ),
    (
        "caches delete --language r --version 4.3.0",
        CachesDelete((CacheTarget("R", "4.3.0", "Local"),)),
    ),
    (
        "caches delete --language=python --version=3.9.5 --image-name=rstudio/content-base:jammy",
        CachesDelete((CacheTarget("Python", "3.9.5", "rstudio/content-base:jammy"),)),
    ),
    (
        "caches rm -l Python -V 3.9.5 -I rstudio/content-base:r3.6.3-py3.9.5-jammy",
        CachesDelete(
            (CacheTarget("Python", "3.9.5", "rstudio/content-base:r3.6.3-py3.9.5-jammy"),)
        ),
    ),
    (
        "caches delete -l Python -V 3.11.3 -l R -V 4.3.0 -I img:1 -l python -I img:2 -V 3.8.10",
        CachesDelete(
            (
                CacheTarget("Python", "3.11.3", "Local"),
                CacheTarget("R", "4.3.0", "img:1"),
                CacheTarget("Python", "3.8.10", "img:2"),
            )
        ),
    ),
    (
        "caches remove " + " ".join(f"-l R -V 4.{i}.0" for i in range(20)),
        CachesDelete(tuple(CacheTarget("R", f"4.{i}.0", "Local") for i in range(20))),
    ),
    (  # the same version on two images, and the same version of two languages: four caches
        "caches delete -l R -V 4.3.0 -l R -V 4.3.0 -I img:1 -l Python -V 4.3.0 -l R -V 4.3.1",
        CachesDelete(
            (
                CacheTarget("R", "4.3.0", "Local"),
                CacheTarget("R", "4.3.0", "img:1"),
                CacheTarget("Python", "4.3.0", "Local"),
                CacheTarget("R", "4.3.1", "Local"),
            )
        ),
    ),
    # content search, each filter
    ("content search", search("")),
    ("content search --published", search("--published", published=True)),
    ("content search --unpublished", search("--unpublished", published=False)),
    (
        "content search --content-type Shiny -t python-dash",
        search(
            "--content-type Shiny -t python-dash", content_types=frozenset({"shiny", "python-dash"})
        ),
    ),
    (
        'content search --py-version ">=3.9"',
        search("--py-version '>=3.9'", py_version=v(">=3.9")),
    ),
    ("content search -p 3.9.5", search("-p 3.9.5", py_version=v("3.9.5"))),
    ("content search --r-version=4.3.0", search("--r-version=4.3.0", r_version=v("4.3.0"))),
    ("content search -r <4.2", search("-r '<4.2'", r_version=v("<4.2"))),
    (
        'content search --title-contains "Sales report"',
        search("--title-contains 'Sales report'", title_contains="Sales report"),
    ),
    ("content search --page 3", search("", page=3)),  # args leave out the page
    (
        "content search --published --content-type shiny --r-version >=4.2 --page=2",
        search(
            "--published --content-type shiny --r-version '>=4.2'",
            page=2,
            published=True,
            content_types=frozenset({"shiny"}),
            r_version=v(">=4.2"),
        ),
    ),
    # every value is taken: comma-separated types (as a repeated flag), a value given twice
    (
        "content search -t shiny,Quarto-Static",
        search("-t shiny,Quarto-Static", content_types=frozenset({"shiny", "quarto-static"})),
    ),
    (
        "content search --content-type=shiny, -t rmd-static",
        search(
            "--content-type=shiny, -t rmd-static",
            content_types=frozenset({"shiny", "rmd-static"}),
        ),
    ),
    ("content search --published --published", search("--published --published", published=True)),
    (
        "content search -p 3.9 --py-version ==3.9",  # the same filter, spelt twice
        search("-p 3.9 --py-version ==3.9", py_version=v("==3.9")),
    ),
    (
        "content search --title-contains Q1 --title-contains=Q1",
        search("--title-contains Q1 --title-contains=Q1", title_contains="Q1"),
    ),
    ("content search --page 2 --page=2", search("", page=2)),
    # rebuild (a plan)
    ("rebuild", plan("all published content")),
    (
        "rebuild --py-version 3.11.3 --parallelism 3",
        plan("Python ==3.11.3", 3, py_version=v("3.11.3")),
    ),
    ("rebuild --parallelism=16", plan("all published content", 16)),
    ("rebuild -r 4.3.0", plan("R ==4.3.0", r_version=v("4.3.0"))),
    (
        "rebuild -t shiny --content-type quarto-static",
        plan("quarto-static, shiny", content_types=frozenset({"shiny", "quarto-static"})),
    ),
    ("rebuild --image-name img:1", plan("image img:1", image_name="img:1")),
    ("rebuild -I img:1", plan("image img:1", image_name="img:1")),
    ("rebuild -I img:1 --image-name img:1", plan("image img:1", image_name="img:1")),
    ("rebuild --parallelism 2 --parallelism=2", plan("all published content", 2)),
    ("rebuild -r 4.3.0 -r =4.3.0", plan("R ==4.3.0", r_version=v("=4.3.0"))),
    (
        "rebuild -t shiny,python-dash -t shiny",
        plan("python-dash, shiny", content_types=frozenset({"shiny", "python-dash"})),
    ),
    (f"rebuild --guid {GUID_A}", plan("1 chosen item(s)", guids=frozenset({GUID_A}))),
    (
        f"rebuild --guid {GUID_A},{GUID_B}",
        plan("2 chosen item(s)", guids=frozenset({GUID_A, GUID_B.lower()})),
    ),
    (
        f"rebuild -g {GUID_A} --guid={GUID_B}",
        plan("2 chosen item(s)", guids=frozenset({GUID_A, GUID_B.lower()})),
    ),
    (
        f"rebuild --guid {GUID_A}, --py-version >=3.9 --parallelism 2",
        plan("1 chosen item(s); Python >=3.9", 2, guids=frozenset({GUID_A}), py_version=v(">=3.9")),
    ),
    # rebuild status / cancel / history
    ("rebuild status", RebuildStatus()),
    ("rebuild status 12", RebuildStatus(12)),
    ("rebuild STATUS #7", RebuildStatus(7)),
    ("rebuild cancel 12", RebuildCancel(12)),
    ("rebuild cancel #3", RebuildCancel(3)),
    ("rebuild history", RebuildHistory()),
    ("rebuild list", RebuildHistory()),
    ("rebuild ls", RebuildHistory()),
    # audit
    ("audit", Audit()),
    ("audit 1", Audit(1)),
    ("audit 20", Audit(20)),
    ("audit 50", Audit(50)),
    # the server option, anywhere
    ("-n staging servers", Servers(server="staging")),
    ("--name staging caches list", CachesList(server="staging")),
    ("--name=prod-eu caches list", CachesList(server="prod-eu")),
    ("caches -n staging list", CachesList(server="staging")),
    ("caches list --name production", CachesList(server="production")),
    ("help -n staging", Help(server="staging")),
    ("rebuild status 4 -n prod_2", RebuildStatus(4, server="prod_2")),
    ("rebuild -n staging cancel 4", RebuildCancel(4, server="staging")),
    ("rebuild history --name=s", RebuildHistory(server="s")),
    ("audit -n staging 5", Audit(5, server="staging")),
    ("-n staging --name staging audit", Audit(server="staging")),  # the same name twice is fine
    (
        "caches delete -l R -n staging -V 4.3.0",
        CachesDelete((CacheTarget("R", "4.3.0", "Local"),), server="staging"),
    ),
    (
        "content search --published -n staging --page 2",
        search("--published", page=2, server="staging", published=True),
    ),
    (
        "--name=production rebuild --parallelism 4",
        RebuildPlan(ContentFilter(published=True), 4, "all published content", server="production"),
    ),
    # what Slack delivers: typographic quotes, HTML entities, autocorrected dashes
    (
        "content search --title-contains \u201cSales report\u201d",
        search("--title-contains 'Sales report'", title_contains="Sales report"),
    ),
    (
        "content search --title-contains \u2018Q1 numbers\u2019",
        search("--title-contains 'Q1 numbers'", title_contains="Q1 numbers"),
    ),
    ("content search --py-version &gt;=3.9", search("--py-version '>=3.9'", py_version=v(">=3.9"))),
    ("content search -r &lt;4.2", search("-r '<4.2'", r_version=v("<4.2"))),
    (
        "content search --title-contains R&amp;D",
        search("--title-contains 'R&D'", title_contains="R&D"),
    ),
    (
        "content search --title-contains &amp;lt;b&amp;gt;",  # decoded once, not twice
        search("--title-contains '&lt;b&gt;'", title_contains="&lt;b&gt;"),
    ),
    ("content search \u2014published", search("--published", published=True)),
    ("rebuild \u2014parallelism 2", plan("all published content", 2)),
    ("\u2014name staging servers", Servers(server="staging")),
]


@pytest.mark.parametrize(("text", "expected"), GOOD, ids=[t or "<empty>" for t, _ in GOOD])
def test_parses(text: str, expected: object) -> None:
    assert parse(text) == expected


def test_rebuild_plan_keeps_every_guid_and_forces_published() -> None:
    command = parse(f"rebuild --guid {GUID_A},{GUID_B} -g {GUID_A}")
    assert isinstance(command, RebuildPlan)
    assert command.filter.guids == {GUID_A, GUID_B.lower()}
    assert command.filter.published is True
    assert command.parallelism is None


@pytest.mark.parametrize(
    "text",
    [
        'content search --title-contains "it\'s here" --page 2',
        "content search --page=3 -t shiny,rmd --published",
        "content search -p >=3.9 --page 7 --page 7",
    ],
)
def test_search_args_repeat_the_search(text: str) -> None:
    """What a page button does: the search's words, then its own `--page N`."""
    command = parse(text)
    assert isinstance(command, ContentSearch)
    assert "--page" not in command.args
    assert parse(f"content search {command.args} --page {command.page}") == command
    assert parse(f"content search {command.args} --page 9") == replace(command, page=9)


BAD = [
    # (text, a phrase of the message)
    ("frobnicate", "I don't know the command `frobnicate`"),
    ("servers --all", "`servers` takes no options"),
    ("caches", "`list` or `delete`"),
    ("caches frobnicate", "`caches frobnicate` is not a command"),
    ("caches list -l R", "`caches list` takes no options"),
    ("caches delete", "Say which cache to delete"),
    ("caches delete -V 3.11.3 -l Python", "Put `--language` before `-V`"),
    ("caches delete -I img -l Python -V 3.11.3", "Put `--language` before `-I`"),
    ("caches delete -l Julia -V 1.9.0", "must be R or Python, not `Julia`"),
    ("caches delete -l Python", "Give the Python version with `--version`"),
    ("caches delete -l Python -V 3.11", "not a three-part version number"),
    ("caches delete -l R -V 4.3.0.1", "not a three-part version number"),
    ("caches delete -l R -V v4.3.0", "not a three-part version number"),
    ('caches delete -l R -V "4.3.0\n"', "not a three-part version number"),
    ("caches delete -l R -V 4.3.0 -V 4.2.0", "its own `--language`"),
    ("caches delete -l R -V 4.3.0 -l r -V 4.3.0", "The R 4.3.0 cache on image `Local` is named"),
    ("caches delete -l R -V 4.3.0 -l R -V 4.3.0 -I Local", "is named twice"),
    (
        "caches delete -l python -V 3.9.5 -I img -l R -V 4.3.0 -l Python -V 3.9.5 -I img",
        "The Python 3.9.5 cache on image `img` is named twice",
    ),
    ('caches delete -l R -V 4.3.0 -I ""', "`-I` needs a value"),  # not silently "Local"
    ("caches delete -l R -V 4.3.0 --image-name=", "`--image-name` needs a value"),
    ('caches delete -l "" -V 4.3.0', "`-l` needs a value"),
    ("caches delete -l R -V", "`-V` needs a value"),
    ("caches delete -l R --version=", "`--version` needs a value"),
    ("caches delete -l -V 4.3.0", "`-l` needs a value"),
    ("caches delete -l Python -V 3.11.3 --dry-run", "drop `--dry-run`"),
    ("caches delete -d -l Python -V 3.11.3", "drop `--dry-run`"),
    ("caches delete -l R -V 4.3.0 --force", "I don't understand `--force`"),
    (f"caches delete -l R -V 4.3.0 -I {'x' * 256}", "image name is too long"),
    ("caches delete " + " ".join(f"-l R -V 4.{i}.0" for i in range(21)), "At most 20 caches"),
    ("content", "Try `content search`"),
    ("content find", "Try `content search`"),
    ("content search --guid x", "I don't understand `--guid`"),
    ("content search --image-name x", "I don't understand `--image-name`"),
    ("content search --parallelism 2", "I don't understand `--parallelism`"),
    ("content search --py-version", "`--py-version` needs a value"),
    ("content search --py-version latest", "not a version filter"),
    ("content search -r ~=4.2", "not a version filter"),
    ("content search --page 0", "`--page` takes a whole number"),
    ("content search --page two", "`--page` takes a whole number"),
    ("content search --page \u00b2", "`--page` takes a whole number"),
    ("content search --title-contains", "`--title-contains` needs a value"),
    ("content search --title-contains -t", "`--title-contains` needs a value"),
    ('content search --title-contains ""', "`--title-contains` needs a value"),
    # a single-valued option given twice, or two that contradict each other
    ("content search --published --unpublished", "`--published` or `--unpublished`, not both"),
    ("content search --unpublished --published", "`--published` or `--unpublished`, not both"),
    ("content search --published=no", "`--published` takes no value"),
    ("content search --unpublished=yes", "`--unpublished` takes no value"),
    (
        "content search --py-version 3.9 --py-version 3.11",
        "`--py-version` was given twice (`3.9` and `3.11`); give it once",
    ),
    ("content search -p 3.9 --py-version=3.11", "`--py-version` was given twice"),
    ("content search -p 3.9 -p >=3.9", "`-p` was given twice (`3.9` and `>=3.9`)"),
    ("content search --r-version 4.3.0 -r 4.2.0", "`-r` was given twice"),
    ("content search --title-contains Sales --title-contains Q1", "`--title-contains` was given"),
    ("content search --title-contains Sales --title-contains sales", "was given twice"),
    ("content search --page 2 --page=3", "`--page` was given twice (`2` and `3`)"),
    ("content search --page 1 --page 2 --page 1", "`--page` was given twice"),
    ("content search --content-type ,", "`--content-type` needs a content type"),
    ('content search --content-type ""', "`--content-type` needs a value"),
    ("content search -t=shiny", "I don't understand `-t=shiny`"),
    ("rebuild --published", "I don't understand `--published`"),
    ("rebuild --title-contains x", "I don't understand `--title-contains`"),
    ("rebuild --dry-run", "I don't understand `--dry-run`"),
    ("rebuild now", "I don't understand `now`"),
    ("rebuild --parallelism 0", "`--parallelism` takes a whole number from 1 to 16"),
    ("rebuild --parallelism 17", "`--parallelism` takes a whole number from 1 to 16"),
    ("rebuild --parallelism 99", "`--parallelism` takes a whole number from 1 to 16"),
    ("rebuild --parallelism -1", "`--parallelism` needs a value"),
    ("rebuild --parallelism \u00b2", "`--parallelism` takes a whole number"),
    ("rebuild --parallelism " + "9" * 5000, "`--parallelism` takes a whole number"),
    ("rebuild --parallelism 2 --parallelism 3", "`--parallelism` was given twice (`2` and `3`)"),
    ("rebuild --py-version 3.11.3 --py-version 3.9.5", "`--py-version` was given twice"),
    ("rebuild --r-version 4.3.0 --r-version >=4.2", "`--r-version` was given twice"),
    ("rebuild --image-name a -I b", "`-I` was given twice (`a` and `b`)"),
    ('rebuild --image-name ""', "`--image-name` needs a value"),
    ('rebuild -t " , "', "`-t` needs a content type"),
    ("rebuild --unpublished", "I don't understand `--unpublished`"),
    ("rebuild --guid not-a-guid", "does not look like a content GUID"),
    ("rebuild --guid 1234567", "does not look like a content GUID"),
    (f"rebuild --guid {GUID_A},zzzz-zzzz", "`zzzz-zzzz` does not look like a content GUID"),
    ("rebuild --guid ,", "`--guid` needs a content GUID"),
    ("rebuild --guid=", "`--guid` needs a value"),
    ("rebuild status abc", "A rebuild ID is a number"),
    ("rebuild status 1 2", "at most one ID"),
    ("rebuild status #1 #1", "at most one ID"),
    ("rebuild status \u00b2", "A rebuild ID is a number"),
    ("rebuild status 12345678901", "A rebuild ID is a number"),
    ("rebuild cancel", "Say which rebuild to cancel"),
    ("rebuild cancel abc", "Say which rebuild to cancel"),
    ("rebuild cancel 1 2", "Say which rebuild to cancel"),
    ("rebuild cancel 1 1", "Say which rebuild to cancel"),
    ("rebuild history 5", "`rebuild history` takes no options"),
    ("audit 0", "`audit` takes a number from 1 to 50"),
    ("audit 51", "`audit` takes a number from 1 to 50"),
    ("audit 999", "`audit` takes a number from 1 to 50"),
    ("audit -5", "`audit` takes a number from 1 to 50"),
    ("audit ten", "`audit` takes a number from 1 to 50"),
    ("audit 5 6", "`audit` takes a number from 1 to 50"),
    ("audit 5 5", "`audit` takes a number from 1 to 50"),
    ("audit \u00b2", "`audit` takes a number from 1 to 50"),
    ("audit " + "9" * 5000, "`audit` takes a number from 1 to 50"),
    # the text itself
    ('content search --title-contains "Sales', "I could not read that"),
    ("content search --title-contains \u201cSales", "I could not read that"),
    ("audit \\", "I could not read that"),
    # the server option
    ("servers -n", "`-n` needs a server name"),
    ("-n", "`-n` needs a server name"),
    ("--name -n staging servers", "`--name` needs a server name"),
    ("caches list --name", "`--name` needs a server name"),
    ("--name= servers", "is not a server name"),
    ("-n staging -n production servers", "Name one Connect server per command"),
    ("-n staging caches list --name=production", "Name one Connect server per command"),
    ('-n "prod eu" servers', "`prod eu` is not a server name"),
    ("-n prod.eu servers", "`prod.eu` is not a server name"),
    ("-n prod/eu servers", "`prod/eu` is not a server name"),
    ("-n _prod servers", "`_prod` is not a server name"),
    ("-n pr`od servers", "`pr'od` is not a server name"),
    ('-n "prod\n" servers', "is not a server name"),
    (f"-n {'a' * 41} servers", "is not a server name"),
]


@pytest.mark.parametrize(("text", "phrase"), BAD, ids=[t[:60] for t, _ in BAD])
def test_refuses_with_a_friendly_message(text: str, phrase: str) -> None:
    result = parse(text)
    assert isinstance(result, ParseError), result
    assert phrase in result.message
    assert result.usage.startswith("/connect ")
    assert len(result.message) < 200  # the user's words are quoted back shortened


def test_error_topic_names_the_command() -> None:
    result = parse("rebuild --parallelism 0")
    assert isinstance(result, ParseError)
    assert result.topic == "rebuild"
    assert "--parallelism" in result.usage


# -- never raises ---------------------------------------------------------------------------

FLAGS = [
    *["-n", "--name", "-l", "--language", "-V", "--version", "-I", "--image-name"],
    *["-d", "--dry-run", "--published", "--unpublished", "-t", "--content-type"],
    *["-p", "--py-version", "-r", "--r-version", "--title-contains", "--page"],
    *["--guid", "-g", "--parallelism", "-h", "--help", "--frobnicate"],
    *["--at", "--in", "--at=", "--in="],
]
VALUES = [
    *["staging", "prod-eu", "_bad", "R", "r", "Python", "python", "Julia"],
    *["3.11.3", "4.3.0", "3.9", ">=3.9", "<4.2", "==", "latest", "shiny", "Local"],
    *["list", "delete", "search", "status", "cancel", "history", "abc", "#12"],
    *["0", "1", "16", "17", "50", "51", "999", "-1", "99999999999", "\u00b2", "\u0663"],
    *["-", "--", ",", "=", "&", GUID_A, f"{GUID_A},{GUID_B}"],
    *["02:00", "24:00", "2:5", "2026-12-24T02:00", "2026-02-30T01:00", "30m", "2h", "0m"],
    *["43201m", "721h", "scheduled"],
    *['"quoted words"', "'single quoted'", '"staging\n"', "\u201cSales report\u201d"],
]
PUNCTUATION = ['"', "'", "\\", "\u201c", "\u201d", "\u2018", "\u2019", "\u2014", "\u2013"]
PUNCTUATION += ["&lt;", "&gt;", "&amp;", "\n", "\t", "\x00"]
VERBS = ["help", "servers", "caches", "caches list", "caches delete", "content search"]
VERBS += ["rebuild", "rebuild status", "rebuild cancel", "rebuild history", "audit", "nope"]
VERBS += ["rebuild scheduled"]
flag = st.sampled_from(FLAGS)
# Numbers as users type them, and characters Python calls digits that int() refuses ("²").
number = st.one_of(
    st.integers(-5, 10**11).map(str),
    st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=4),
)
value = st.one_of(st.sampled_from(VALUES), number)
# `--flag=value`, `--flag value`, a lone value, some punctuation, or anything at all.
word = st.one_of(
    st.builds("{}={}".format, flag, value),
    st.builds("{} {}".format, flag, value),
    flag,
    value,
    st.sampled_from(PUNCTUATION),
    st.text(max_size=6),
)
# A verb, then words from the real vocabulary (and a few random ones), joined by spaces.
tokens = st.builds(
    lambda verb, words: " ".join([verb, *words]),
    st.sampled_from(VERBS),
    st.lists(word, max_size=4),
)


def check_never_raises(text: str) -> None:
    result = parse(text)
    if isinstance(result, ParseError):
        assert isinstance(result.message, str) and result.message.strip()
        assert isinstance(result.usage, str)
    else:
        assert result.server is None or SERVER_NAME.fullmatch(result.server), result.server


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_parses_or_is_refused(text: str) -> None:
    check_never_raises(text)


@settings(max_examples=300, deadline=None)
@given(tokens)
def test_plausible_commands_parse_or_are_refused(text: str) -> None:
    check_never_raises(text)


# -- every value is taken, or the command is refused ---------------------------------------

version_text = st.builds(
    "{}{}.{}".format,
    st.sampled_from(["", "=", "==", ">", ">=", "<", "<="]),
    st.integers(3, 4),
    st.integers(0, 12),
)
plain_text = st.text("abcXYZ019 _:/", min_size=1, max_size=12).filter(str.strip)
# (command, the option's spellings, its values, what makes two values the same, where it lands)
Single = tuple[str, list[str], st.SearchStrategy[str], Callable[[str], object], str]
SINGLE: list[Single] = [
    ("content search", ["--py-version", "-p"], version_text, lambda t: str(v(t)), "py"),
    ("content search", ["--r-version", "-r"], version_text, lambda t: str(v(t)), "r"),
    ("content search", ["--title-contains"], plain_text, str, "title"),
    ("content search", ["--page"], st.integers(1, 10_000).map(str), int, "page"),
    ("rebuild", ["--py-version", "-p"], version_text, lambda t: str(v(t)), "py"),
    ("rebuild", ["--image-name", "-I"], plain_text, str, "image"),
    ("rebuild", ["--parallelism"], st.integers(1, 16).map(str), int, "parallelism"),
]


def landed(command: object, where: str) -> object:
    assert isinstance(command, (ContentSearch, RebuildPlan)), command
    f = command.filter
    return {
        "py": lambda: str(f.py_version),
        "r": lambda: str(f.r_version),
        "title": lambda: f.title_contains,
        "image": lambda: f.image_name,
        "page": lambda: command.page if isinstance(command, ContentSearch) else None,
        "parallelism": lambda: command.parallelism if isinstance(command, RebuildPlan) else None,
    }[where]()


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(SINGLE), st.data())
def test_a_single_valued_option_twice_is_taken_only_if_the_same(
    option: Single, data: st.DataObject
) -> None:
    command, names, values, key, where = option
    first, second = data.draw(values), data.draw(values)
    name1, name2 = data.draw(st.sampled_from(names)), data.draw(st.sampled_from(names))
    glue = "=" if name2.startswith("--") else " "  # `--name=value`; short options take a word
    result = parse(f"{command} {name1} {shlex.quote(first)} {name2}{glue}{shlex.quote(second)}")
    if key(first) == key(second):
        assert landed(result, where) == key(second)
    else:
        assert isinstance(result, ParseError), result
        assert f"`{name2}` was given twice" in result.message


content_type = st.from_regex(r"[a-z][a-z-]{0,10}", fullmatch=True)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(content_type, min_size=1, max_size=3), min_size=1, max_size=3))
def test_every_content_type_is_taken(groups: list[list[str]]) -> None:
    flags = " ".join(f"-t {','.join(group)}" for group in groups)
    for command in (f"content search {flags}", f"rebuild {flags}"):
        result = parse(command)
        assert isinstance(result, (ContentSearch, RebuildPlan)), result
        assert result.filter.content_types == {t for group in groups for t in group}


cache = st.tuples(
    st.sampled_from(["R", "r", "Python", "python"]),
    st.sampled_from(["4.3.0", "3.11.3"]),
    st.sampled_from([None, "Local", "img:1"]),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(cache, min_size=1, max_size=6))
def test_every_cache_is_deleted_once_or_refused(caches: list[tuple[str, str, str | None]]) -> None:
    words = [
        f"-l {lang} -V {version}" + (f" -I {image}" if image else "")
        for lang, version, image in caches
    ]
    result = parse("caches delete " + " ".join(words))
    wanted = [
        CacheTarget(lang.title() if lang.lower() == "python" else "R", version, image or "Local")
        for lang, version, image in caches
    ]
    if len(set(wanted)) == len(wanted):
        assert result == CachesDelete(tuple(wanted))
    else:
        assert isinstance(result, ParseError) and "is named twice" in result.message


# -- describe_filter ------------------------------------------------------------------------

DESCRIPTIONS = [
    (ContentFilter(), ""),
    (ContentFilter(published=True), ""),
    (ContentFilter(guids=frozenset({GUID_A, "b" * 8})), "2 chosen item(s)"),
    (ContentFilter(content_types=frozenset({"shiny", "python-dash"})), "python-dash, shiny"),
    (ContentFilter(py_version=v("3.9.5")), "Python ==3.9.5"),
    (ContentFilter(py_version=v("=3.9")), "Python ==3.9"),
    (ContentFilter(r_version=v(">=4.2")), "R >=4.2"),
    (ContentFilter(image_name="img:1"), "image img:1"),
    (ContentFilter(title_contains="Sales"), 'title contains "Sales"'),
    (
        ContentFilter(
            guids=frozenset({GUID_A}),
            content_types=frozenset({"shiny"}),
            py_version=v("<3.10"),
            r_version=v("4.3.0"),
            image_name="img:1",
            title_contains="Q1",
        ),
        '1 chosen item(s); shiny; Python <3.10; R ==4.3.0; image img:1; title contains "Q1"',
    ),
]


@pytest.mark.parametrize(("content_filter", "expected"), DESCRIPTIONS)
def test_describe_filter(content_filter: ContentFilter, expected: str) -> None:
    assert describe_filter(content_filter) == expected


# -- impact and --uses-package ----------------------------------------------------------------

PACKAGE_GOOD = [
    ("impact --package sf", Impact(("sf",))),
    ("impact --package=sf --package numpy", Impact(("sf", "numpy"))),
    ("impact --package sf,terra --package sf", Impact(("sf", "terra"))),  # duplicates dropped
    ("impact --package NumPy -n prod", Impact(("NumPy",), server="prod")),  # names as typed
    ("impact --package data.table", Impact(("data.table",))),
    (
        "content search --uses-package sf",
        replace(search("--uses-package sf"), packages=("sf",)),
    ),
    (
        "content search --uses-package sf --uses-package numpy -t shiny",
        replace(
            search(
                "--uses-package sf --uses-package numpy -t shiny",
                content_types=frozenset({"shiny"}),
            ),
            packages=("sf", "numpy"),
        ),
    ),
    ("rebuild --uses-package sf", replace(plan("content using sf"), packages=("sf",))),
    (
        "rebuild --uses-package sf,numpy -r 4.3.0",
        replace(
            plan("content using sf or numpy; R ==4.3.0", r_version=v("4.3.0")),
            packages=("sf", "numpy"),
        ),
    ),
    (
        f"rebuild --uses-package sf --guid {GUID_A} --parallelism 2",
        replace(
            plan("content using sf; 1 chosen item(s)", 2, guids=frozenset({GUID_A})),
            packages=("sf",),
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), PACKAGE_GOOD, ids=[t for t, _ in PACKAGE_GOOD])
def test_parses_packages(text: str, expected: object) -> None:
    assert parse(text) == expected


PACKAGE_BAD = [
    ("impact", "--package NAME"),
    ("impact sf", "don't understand `sf`"),
    ("impact --package", "needs a value"),
    ("impact --package=", "needs a value"),
    ("impact --package ,", "needs a package name"),
    ("impact --package 'sf; rm'", "is not a package name"),
    ("impact --uses-package sf", "don't understand"),
    ("impact --package " + ",".join(f"p{i}" for i in range(11)), "At most 10"),
    ("content search --uses-package", "needs a value"),
    ("content search --uses-package -sf", "needs a value"),
    ("content search --uses-package 'a b'", "is not a package name"),
    ("rebuild --uses-package _sf", "is not a package name"),
    ("rebuild --package sf", "don't understand"),
]


@pytest.mark.parametrize(("text", "phrase"), PACKAGE_BAD, ids=[t[:60] for t, _ in PACKAGE_BAD])
def test_refuses_packages_with_a_friendly_message(text: str, phrase: str) -> None:
    result = parse(text)
    assert isinstance(result, ParseError), result
    assert phrase in result.message
    assert result.usage.startswith("/connect ")


def test_search_with_packages_keeps_them_in_the_page_words() -> None:
    command = parse("content search --uses-package sf --page 2")
    assert isinstance(command, ContentSearch)
    again = parse(f"content search {command.args} --page 3")
    assert isinstance(again, ContentSearch) and again.packages == ("sf",) and again.page == 3


# -- when a rebuild starts: --at / --in -------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "when"),
    [
        ("--at 02:00", AtTime(2, 0)),
        ("--at 2:05", AtTime(2, 5)),
        ("--at=23:59", AtTime(23, 59)),
        ("--at 2026-12-24T02:00", AtDateTime(datetime(2026, 12, 24, 2, 0))),
        ("--in 30m", After(timedelta(minutes=30))),
        ("--in 2h", After(timedelta(hours=2))),
        ("--in 1m", After(timedelta(minutes=1))),
        ("--in 720h", After(timedelta(days=30))),
        ("--in 5m --in 5m", After(timedelta(minutes=5))),  # the same value again is fine
    ],
)
def test_rebuild_takes_a_start_time(words: str, when: object) -> None:
    result = parse(f"rebuild -t shiny {words} --parallelism 2")
    assert isinstance(result, RebuildPlan), result
    assert result.when == when
    assert result.filter.content_types == {"shiny"} and result.parallelism == 2
    assert result.description == "shiny"  # the time is not part of what is rebuilt


@pytest.mark.parametrize(
    ("words", "fragment"),
    [
        ("--at 02:00 --in 30m", "`--at` or `--in`, not both"),
        ("--at 24:00", "is not a time"),
        ("--at 2am", "is not a time"),
        ("--at 2026-02-30T01:00", "not a real date"),
        ("--at", "needs a value"),
        ("--at=", "needs a value"),
        ("--in 0m", "from 1 minute to 30 days"),
        ("--in 721h", "from 1 minute to 30 days"),
        ("--in 30", "is not a delay"),
        ("--in 3d", "is not a delay"),
        ("--in \u00b2m", "is not a delay"),
        ("--in 5m --in 6m", "given twice"),
    ],
)
def test_bad_start_times_are_refused_with_an_example(words: str, fragment: str) -> None:
    result = parse(f"rebuild {words}")
    assert isinstance(result, ParseError), result
    assert fragment in result.message
    assert "--at HH:MM" in result.usage and result.topic == "rebuild"


def test_rebuild_scheduled_lists_and_takes_nothing_more() -> None:
    assert parse("rebuild scheduled") == RebuildScheduled()
    assert parse("rebuild scheduled -n staging") == RebuildScheduled(server="staging")
    refused = parse("rebuild scheduled 12")
    assert isinstance(refused, ParseError) and "takes no options" in refused.message


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 23), st.integers(0, 59), st.sampled_from(["--at ", "--at="]))
def test_every_clock_time_is_taken(hour: int, minute: int, spelling: str) -> None:
    result = parse(f"rebuild {spelling}{hour:02d}:{minute:02d}")
    assert isinstance(result, RebuildPlan) and result.when == AtTime(hour, minute)


@settings(max_examples=100, deadline=None)
@given(st.integers(-5, 50_000), st.sampled_from(["m", "h"]))
def test_a_delay_is_taken_within_30_days_or_refused(amount: int, unit: str) -> None:
    result = parse(f"rebuild --in {amount}{unit}")
    minutes = amount * (60 if unit == "h" else 1)
    if 1 <= minutes <= 30 * 24 * 60:
        assert isinstance(result, RebuildPlan) and result.when == After(timedelta(minutes=minutes))
    else:
        assert isinstance(result, ParseError)
