"""A tiny getopt for `/connect` words, and the content filters rsconnect's commands take."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.connect import ContentFilter, VersionFilter
from bot.slack.parser.commands import ParseError
from bot.slack.parser.usage import USAGE

MAX_PARALLELISM = 16
MAX_PACKAGES = 10
_GUID = re.compile(r"^[0-9a-fA-F-]{8,64}$")
# R (letters, digits, dots) and Python (PEP 508: letters, digits, `-_.`) package names.
_PACKAGE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?\Z")


class Bad(Exception):
    """A mistake in the words of `command`; `message` says what, in the user's terms."""

    def __init__(self, message: str, command: str) -> None:
        super().__init__(message)
        self.message = message
        self.command = command

    def error(self) -> ParseError:
        return ParseError(self.message, USAGE[self.command], self.command)


def short(word: str) -> str:
    """A user's word, quoted back safely in a message (backticks would end the code span)."""
    return word[:40].replace("`", "'")


class Options:
    """`--name value`, `--name=value`, `-n value`, and flags."""

    def __init__(self, words: list[str], command: str) -> None:
        self.words = words
        self.pos = 0
        self.command = command

    def __iter__(self) -> Options:
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
        """The option's value; an empty one (`--x=`, `--x ""`) is refused, never ignored."""
        if inline is not None:
            if inline == "":
                raise Bad(f"`{name}` needs a value.", self.command)
            return inline
        if (
            self.pos >= len(self.words)
            or self.words[self.pos] == ""
            or (self.words[self.pos].startswith("-") and len(self.words[self.pos]) > 1)
        ):
            raise Bad(f"`{name}` needs a value.", self.command)
        value = self.words[self.pos]
        self.pos += 1
        return value

    def flag(self, name: str, inline: str | None) -> None:
        """A flag takes no value: `--published=no` is refused rather than read as `--published`."""
        if inline is not None:
            raise Bad(f"`{name}` takes no value.", self.command)


class Once:
    """Single-valued options: the same value again is fine, a different one is refused."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.seen: dict[str, tuple[object, str]] = {}

    def __call__(self, option: str, name: str, key: object, text: str) -> None:
        if option in self.seen and self.seen[option][0] != key:
            first = self.seen[option][1]
            raise Bad(
                f"`{name}` was given twice (`{short(first)}` and `{short(text)}`); give it once.",
                self.command,
            )
        self.seen[option] = (key, text)


def filters(
    words: list[str],
    command: str,
    *,
    allow_page: bool = False,
    rebuild: bool = False,
    packages: list[str] | None = None,
) -> tuple[ContentFilter, int]:
    """rsconnect's content filters; returns the filter and the page (search) or parallelism.

    Every value given is used or the words are refused: a single-valued option given twice
    with different values, or `--published` with `--unpublished`, is a mistake to report.
    With a `packages` list, `--uses-package NAME` (repeatable, or `a,b`) is allowed and its
    names are appended to it (OR-ed, duplicates dropped); they are resolved by the service.
    """
    published: bool | None = None
    types: set[str] = set()
    guids: set[str] = set()
    py = r = None
    title = image = None
    page = 1
    parallelism = 0
    options = Options(words, command)
    once = Once(command)
    for name, inline in options:
        if name in ("--published", "--unpublished") and not rebuild:
            options.flag(name, inline)
            wanted = name == "--published"
            if published is not None and published != wanted:
                raise Bad("Use `--published` or `--unpublished`, not both.", command)
            published = wanted
        elif name in ("--content-type", "-t"):
            types.update(_content_types(options.value(name, inline), name, command))
        elif name in ("--py-version", "-p"):
            text = options.value(name, inline)
            py = version_filter(text, command)
            once("--py-version", name, str(py), text)
        elif name in ("--r-version", "-r"):
            text = options.value(name, inline)
            r = version_filter(text, command)
            once("--r-version", name, str(r), text)
        elif name == "--title-contains" and not rebuild:
            title = options.value(name, inline)
            once(name, name, title, title)
        elif name in ("--image-name", "-I") and rebuild:
            image = options.value(name, inline)
            once("--image-name", name, image, image)
        elif name in ("--guid", "-g") and rebuild:
            guids.update(_guids(options.value(name, inline), command))
        elif name == "--parallelism" and rebuild:
            text = options.value(name, inline)
            parallelism = whole(text, name, command, 1, MAX_PARALLELISM)
            once(name, name, parallelism, text)
        elif name == "--uses-package" and packages is not None:
            for package in package_names(options.value(name, inline), name, command):
                if package not in packages:
                    packages.append(package)
            if len(packages) > MAX_PACKAGES:
                raise Bad(f"At most {MAX_PACKAGES} packages in one command.", command)
        elif name == "--page" and allow_page:
            text = options.value(name, inline)
            page = whole(text, name, command, 1, 10_000)
            once(name, name, page, text)
        else:
            raise Bad(f"I don't understand `{short(name)}` here.", command)
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


def _content_types(value: str, name: str, command: str) -> list[str]:
    """`--content-type shiny,quarto` names two types, as a repeated flag does; none is dropped."""
    types = [part.strip().lower() for part in value.split(",") if part.strip()]
    if not types:
        raise Bad(f"`{name}` needs a content type, e.g. `shiny`.", command)
    return types


def package_names(value: str, name: str, command: str) -> list[str]:
    """`--package sf,terra` names two packages, as a repeated flag does; none is dropped."""
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        raise Bad(f"`{name}` needs a package name, e.g. `sf`.", command)
    for package in names:
        if not _PACKAGE.match(package):
            raise Bad(f"`{short(package)}` is not a package name.", command)
    return names


def describe_packages(packages: Sequence[str]) -> str:
    """`content using sf or numpy`."""
    return "content using " + " or ".join(packages) if packages else ""


def _guids(value: str, command: str) -> list[str]:
    """`--guid a,b` names two items (as rsconnect's repeated --guid does); none is dropped."""
    guids = [part.strip() for part in value.split(",") if part.strip()]
    if not guids:
        raise Bad("`--guid` needs a content GUID.", command)
    for guid in guids:
        if not _GUID.match(guid):
            raise Bad(f"`{short(guid)}` does not look like a content GUID.", command)
    return [guid.lower() for guid in guids]


def version_filter(text: str, command: str) -> VersionFilter:
    try:
        return VersionFilter.parse(text)
    except ValueError as exc:
        raise Bad(str(exc).replace("'", "`"), command) from None


def whole(text: str, name: str, command: str, low: int, high: int) -> int:
    # ASCII digits, few of them: int() refuses "²" (though "²".isdigit()) and 4300+ digits.
    if not (text.isascii() and text.isdigit() and len(text) < 10) or not low <= int(text) <= high:
        raise Bad(f"`{name}` takes a whole number from {low} to {high}.", command)
    return int(text)


def describe_filter(content_filter: ContentFilter) -> str:
    """Plain words for a filter, e.g. `shiny, python-dash; Python ==3.9.5`."""
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
