"""`/connect ...` text -> a command object. Pure: no I/O, never raises on user input."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from bot.connect import ContentFilter, VersionFilter
from bot.services.caches import CacheTarget

USAGE = {
    "help": "/connect help",
    "caches list": "/connect caches list",
    "caches delete": (
        "/connect caches delete --language Python --version 3.11.3 [--image-name Local]"
    ),
    "content search": (
        "/connect content search [--published|--unpublished] [--content-type shiny]... "
        '[--py-version ">=3.9"] [--r-version 4.3.0] [--title-contains Sales]'
    ),
    "rebuild": (
        "/connect rebuild [--guid GUID]... [--content-type T]... [--py-version OPV] "
        "[--r-version OPV] [--image-name I] [--parallelism N]"
    ),
    "rebuild status": "/connect rebuild status [ID]",
    "rebuild cancel": "/connect rebuild cancel ID",
    "rebuild history": "/connect rebuild history",
    "audit": "/connect audit [N]",
}

MAX_AUDIT = 50
MAX_PARALLELISM = 16
_VERSION3 = re.compile(r"^\d+\.\d+\.\d+$")
_GUID = re.compile(r"^[0-9a-fA-F-]{8,64}$")
_LANGUAGES = {"r": "R", "python": "Python"}


@dataclass(frozen=True, slots=True)
class Help:
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class CachesList:
    pass


@dataclass(frozen=True, slots=True)
class CachesDelete:
    targets: tuple[CacheTarget, ...]


@dataclass(frozen=True, slots=True)
class ContentSearch:
    filter: ContentFilter
    args: str  # normalised arguments, so a "next page" button can repeat the search
    page: int = 1


@dataclass(frozen=True, slots=True)
class Audit:
    limit: int = 10


@dataclass(frozen=True, slots=True)
class RebuildPlan:
    filter: ContentFilter
    parallelism: int | None = None
    description: str = "all published content"


@dataclass(frozen=True, slots=True)
class RebuildStatus:
    rebuild_id: int | None = None


@dataclass(frozen=True, slots=True)
class RebuildCancel:
    rebuild_id: int


@dataclass(frozen=True, slots=True)
class RebuildHistory:
    limit: int = 10


@dataclass(frozen=True, slots=True)
class ParseError:
    message: str
    usage: str = ""
    topic: str | None = None


Command = (
    Help
    | CachesList
    | CachesDelete
    | ContentSearch
    | Audit
    | RebuildPlan
    | RebuildStatus
    | RebuildCancel
    | RebuildHistory
)

# Read-only commands run for anyone in an allowed channel; the rest need an administrator.
READ_ONLY = (Help, CachesList, ContentSearch, RebuildStatus, RebuildHistory)


def parse(text: str) -> Command | ParseError:
    try:
        words = tokenize(text)
    except ValueError as exc:
        return ParseError(f"I could not read that: {exc}.", USAGE["help"])
    if not words or words[0] in ("help", "-h", "--help", "?"):
        return Help(words[1] if len(words) > 1 else None)
    head, rest = words[0].lower(), words[1:]
    if head in ("cache", "caches"):
        return _caches(rest)
    if head == "content":
        return _content(rest)
    if head == "rebuild":
        return _rebuild(rest)
    if head == "audit":
        return _audit(rest)
    return ParseError(f"I don't know the command `{_short(words[0])}`.", USAGE["help"])


def tokenize(text: str) -> list[str]:
    # Slack may deliver &amp; &lt; &gt; and typographic quotes; undo both before splitting.
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = text.translate(
        str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})
    )
    text = text.replace("\u2014", "--").replace("\u2013", "-")  # "—published" from autocorrect
    return shlex.split(text)


def _short(word: str) -> str:
    return word[:40].replace("`", "'")


class _Options:
    """A tiny getopt: `--name value`, `--name=value`, `-n value`, and flags."""

    def __init__(self, words: list[str], command: str) -> None:
        self.words = words
        self.pos = 0
        self.command = command

    def __iter__(self) -> _Options:
        return self

    def __next__(self) -> tuple[str, str | None]:
        if self.pos >= len(self.words):
            raise StopIteration
        word = self.words[self.pos]
        self.pos += 1
        if word.startswith("--") and "=" in word:
            name, _, value = word.partition("=")
            return name, value
        return word, None

    def value(self, name: str, inline: str | None) -> str:
        if inline is not None:
            if inline == "":
                raise _Bad(f"`{name}` needs a value.", self.command)
            return inline
        if self.pos >= len(self.words) or (
            self.words[self.pos].startswith("-") and len(self.words[self.pos]) > 1
        ):
            raise _Bad(f"`{name}` needs a value.", self.command)
        value = self.words[self.pos]
        self.pos += 1
        return value


class _Bad(Exception):
    def __init__(self, message: str, command: str) -> None:
        super().__init__(message)
        self.message = message
        self.command = command


def _error(exc: _Bad) -> ParseError:
    return ParseError(exc.message, USAGE[exc.command], exc.command)


def _caches(words: list[str]) -> Command | ParseError:
    if not words:
        return ParseError("Say what to do with caches: `list` or `delete`.", USAGE["caches list"])
    verb, rest = words[0].lower(), words[1:]
    if verb in ("list", "ls"):
        if rest:
            return ParseError("`caches list` takes no options.", USAGE["caches list"])
        return CachesList()
    if verb in ("delete", "rm", "remove"):
        try:
            return _caches_delete(rest)
        except _Bad as exc:
            return _error(exc)
    return ParseError(f"`caches {_short(verb)}` is not a command.", USAGE["caches delete"])


def _caches_delete(words: list[str]) -> CachesDelete:
    command = "caches delete"
    targets: list[dict[str, str]] = []
    options = _Options(words, command)
    for name, inline in options:
        if name in ("--language", "-l"):
            targets.append({"language": options.value(name, inline)})
            continue
        if name in ("--version", "-V", "--image-name", "-I"):
            if not targets:
                raise _Bad(f"Put `--language` before `{name}`.", command)
            key = "version" if name in ("--version", "-V") else "image_name"
            if key in targets[-1]:
                raise _Bad(
                    f"Each cache needs its own `--language`; `{name}` was given twice.", command
                )
            targets[-1][key] = options.value(name, inline)
            continue
        if name in ("--dry-run", "-d"):
            raise _Bad(
                "Every deletion starts with a dry run and a confirmation card; drop `--dry-run`.",
                command,
            )
        raise _Bad(f"I don't understand `{_short(name)}` here.", command)
    if not targets:
        raise _Bad("Say which cache to delete.", command)
    if len(targets) > 20:
        raise _Bad("At most 20 caches in one request.", command)
    return CachesDelete(tuple(_target(t, command) for t in targets))


def _target(fields: dict[str, str], command: str) -> CacheTarget:
    language = _LANGUAGES.get(fields["language"].lower())
    if language is None:
        raise _Bad(
            f"The language must be R or Python, not `{_short(fields['language'])}`.", command
        )
    version = fields.get("version")
    if not version:
        raise _Bad(f"Give the {language} version with `--version`, e.g. `3.11.3`.", command)
    if not _VERSION3.match(version):
        raise _Bad(
            f"`{_short(version)}` is not a three-part version number such as `4.3.0`.", command
        )
    image = fields.get("image_name") or "Local"
    if len(image) > 255:
        raise _Bad("That image name is too long.", command)
    return CacheTarget(language, version, image)


def _content(words: list[str]) -> Command | ParseError:
    if not words or words[0].lower() != "search":
        return ParseError("Try `content search`.", USAGE["content search"])
    try:
        content_filter, page = _filters(words[1:], "content search", allow_page=True)
    except _Bad as exc:
        return _error(exc)
    return ContentSearch(content_filter, shlex.join(words[1:]), page)


def _filters(
    words: list[str], command: str, *, allow_page: bool = False, rebuild: bool = False
) -> tuple[ContentFilter, int]:
    published: bool | None = None
    types: set[str] = set()
    guids: set[str] = set()
    py = r = None
    title = image = None
    page = 1
    parallelism = 0
    options = _Options(words, command)
    for name, inline in options:
        if name == "--published" and not rebuild:
            published = True
        elif name == "--unpublished" and not rebuild:
            published = False
        elif name in ("--content-type", "-t"):
            types.add(options.value(name, inline).lower())
        elif name in ("--py-version", "-p"):
            py = _version_filter(options.value(name, inline), command)
        elif name in ("--r-version", "-r"):
            r = _version_filter(options.value(name, inline), command)
        elif name == "--title-contains" and not rebuild:
            title = options.value(name, inline)
        elif name in ("--image-name", "-I") and rebuild:
            image = options.value(name, inline)
        elif name in ("--guid", "-g") and rebuild:
            guid = options.value(name, inline).split(",")[0]
            if not _GUID.match(guid):
                raise _Bad(f"`{_short(guid)}` does not look like a content GUID.", command)
            guids.add(guid.lower())
        elif name == "--parallelism" and rebuild:
            parallelism = _int(options.value(name, inline), name, command, 1, MAX_PARALLELISM)
        elif name == "--page" and allow_page:
            page = _int(options.value(name, inline), name, command, 1, 10_000)
        else:
            raise _Bad(f"I don't understand `{_short(name)}` here.", command)
    if rebuild:
        published = True
    content_filter = ContentFilter(
        published=published,
        content_types=frozenset(types),
        py_version=py,
        r_version=r,
        title_contains=title,
        image_name=image,
        guids=frozenset(guids),
    )
    return content_filter, (parallelism if rebuild else page)


def _version_filter(text: str, command: str) -> VersionFilter:
    try:
        return VersionFilter.parse(text)
    except ValueError as exc:
        raise _Bad(str(exc).replace("'", "`"), command) from None


def _int(text: str, name: str, command: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise _Bad(f"`{name}` takes a whole number from {low} to {high}.", command)
    return int(text)


def _rebuild(words: list[str]) -> Command | ParseError:
    if words and words[0].lower() == "status":
        if len(words) > 2:
            return ParseError("`rebuild status` takes at most one ID.", USAGE["rebuild status"])
        if len(words) == 2:
            number = _rebuild_id(words[1])
            if number is None:
                return ParseError("A rebuild ID is a number.", USAGE["rebuild status"])
            return RebuildStatus(number)
        return RebuildStatus()
    if words and words[0].lower() == "cancel":
        number = _rebuild_id(words[1]) if len(words) == 2 else None
        if number is None:
            return ParseError(
                "Say which rebuild to cancel, by its number.", USAGE["rebuild cancel"]
            )
        return RebuildCancel(number)
    if words and words[0].lower() in ("history", "list", "ls"):
        return RebuildHistory()
    try:
        content_filter, parallelism = _filters(words, "rebuild", rebuild=True)
    except _Bad as exc:
        return _error(exc)
    return RebuildPlan(
        content_filter,
        parallelism or None,
        describe_filter(content_filter) or "all published content",
    )


def _rebuild_id(word: str) -> int | None:
    word = word.lstrip("#")
    return int(word) if word.isdigit() and len(word) < 10 else None


def _audit(words: list[str]) -> Audit | ParseError:
    if not words:
        return Audit()
    if len(words) == 1 and words[0].isdigit() and 1 <= int(words[0]) <= MAX_AUDIT:
        return Audit(int(words[0]))
    return ParseError(f"`audit` takes a number from 1 to {MAX_AUDIT}.", USAGE["audit"])


def describe_filter(content_filter: ContentFilter) -> str:
    """Plain words for a filter, e.g. `shiny, python-dash with Python ==3.9.5`."""
    parts: list[str] = []
    if content_filter.guids:
        parts.append(f"{len(content_filter.guids)} chosen item(s)")
    if content_filter.content_types:
        parts.append(", ".join(sorted(content_filter.content_types)))
    if content_filter.py_version:
        parts.append(f"Python {content_filter.py_version}")
    if content_filter.r_version:
        parts.append(f"R {content_filter.r_version}")
    if content_filter.image_name:
        parts.append(f"image {content_filter.image_name}")
    if content_filter.title_contains:
        parts.append(f'title contains "{content_filter.title_contains}"')
    return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class HelpEntry:
    usage: str
    example: str
    what: str
    admin: bool = False


HELP: tuple[HelpEntry, ...] = (
    HelpEntry("caches list", "/connect caches list", "Show the runtime caches."),
    HelpEntry(
        "caches delete",
        "/connect caches delete -l Python -V 3.9.5 -I rstudio/content-base:r3.6.3-py3.9.5-jammy",
        "Dry-run, then post a confirmation card. Several `-l/-V` pairs allowed.",
        admin=True,
    ),
    HelpEntry(
        "content search",
        "/connect content search --published --content-type shiny --r-version >=4.2",
        "Find content with rsconnect's filters.",
    ),
    HelpEntry(
        "rebuild",
        "/connect rebuild --py-version 3.11.3 --parallelism 3",
        "Plan a rebuild of published content (no filter: everything), then Start.",
        admin=True,
    ),
    HelpEntry("rebuild status", "/connect rebuild status 12", "Progress of a rebuild."),
    HelpEntry("rebuild cancel", "/connect rebuild cancel 12", "Stop dispatching builds.", True),
    HelpEntry("rebuild history", "/connect rebuild history", "Recent rebuilds."),
    HelpEntry("audit", "/connect audit 20", "The last N destructive acts.", admin=True),
    HelpEntry("help", "/connect help", "This message."),
)
