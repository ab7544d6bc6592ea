"""`/connect ...` text -> a command object. Pure: no I/O, never raises on user input."""

from __future__ import annotations

import re
import shlex
from dataclasses import replace

from bot.services.caches import CacheTarget
from bot.slack.parser.commands import (
    Audit,
    CachesDelete,
    CachesList,
    Command,
    ContentSearch,
    Health,
    HealthHistory,
    Help,
    Impact,
    ParseError,
    RebuildCancel,
    RebuildHistory,
    RebuildPlan,
    RebuildScheduled,
    RebuildStatus,
    Servers,
)
from bot.slack.parser.options import (
    Bad,
    Options,
    describe_filter,
    describe_packages,
    filters,
    package_names,
    short,
)
from bot.slack.parser.usage import USAGE
from bot.slack.parser.visited import take_visited_within
from bot.slack.parser.when import take_when

MAX_AUDIT = 50
MAX_TARGETS = 20
MAX_PACKAGES = 10
_VERSION3 = re.compile(r"^\d+\.\d+\.\d+\Z")
_SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}\Z")  # \Z: no "name\n"
_LANGUAGES = {"r": "R", "python": "Python"}
_SERVER_FLAGS = ("-n", "--name")
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})


def parse(text: str) -> Command | ParseError:
    try:
        words = tokenize(text)
    except ValueError as exc:
        return ParseError(f"I could not read that: {exc}.", USAGE["help"])
    server = _take_server(words)
    if isinstance(server, ParseError):
        return server
    command = _command(words)
    if server is not None and not isinstance(command, ParseError):
        return replace(command, server=server)
    return command


def tokenize(text: str) -> list[str]:
    # Slack may deliver &amp; &lt; &gt; and typographic quotes; undo both before splitting.
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = text.translate(_QUOTES)
    text = text.replace("\u2014", "--").replace("\u2013", "-")  # "—published" from autocorrect
    return shlex.split(text)


def _take_server(words: list[str]) -> str | ParseError | None:
    """Remove `-n NAME` / `--name NAME` / `--name=NAME` wherever it is (rsconnect's flag)."""
    found: str | None = None
    i = 0
    while i < len(words):
        word = words[i]
        if word in _SERVER_FLAGS:
            if i + 1 >= len(words) or words[i + 1].startswith("-"):
                return ParseError(f"`{word}` needs a server name.", USAGE["servers"])
            name = words[i + 1]
            del words[i : i + 2]
        elif word.startswith("--name="):
            name = word.partition("=")[2]
            del words[i]
        else:
            i += 1
            continue
        if not _SERVER_NAME.match(name):
            return ParseError(f"`{short(name)}` is not a server name.", USAGE["servers"])
        if found is not None and found != name:
            return ParseError("Name one Connect server per command.", USAGE["servers"])
        found = name
    return found


def _command(words: list[str]) -> Command | ParseError:
    if not words or words[0].lower() in ("help", "-h", "--help", "?"):
        # Every word of the topic counts: `help rebuild status` is about `rebuild status`.
        return Help(" ".join(words[1:]).strip() or None)
    head, rest = words[0].lower(), words[1:]
    if head in ("server", "servers"):
        if rest:
            return ParseError("`servers` takes no options.", USAGE["servers"])
        return Servers()
    if head in ("cache", "caches"):
        return _caches(rest)
    if head == "content":
        return _content(rest)
    if head == "rebuild":
        return _rebuild(rest)
    if head == "audit":
        return _audit(rest)
    if head == "impact":
        try:
            return _impact(rest)
        except Bad as exc:
            return exc.error()
    if head == "health":
        try:
            return _health(rest)
        except Bad as exc:
            return exc.error()
    return ParseError(f"I don't know the command `{short(words[0])}`.", USAGE["help"])


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
        except Bad as exc:
            return exc.error()
    return ParseError(f"`caches {short(verb)}` is not a command.", USAGE["caches delete"])


def _caches_delete(words: list[str]) -> CachesDelete:
    command = "caches delete"
    targets: list[dict[str, str]] = []
    options = Options(words, command)
    for name, inline in options:
        if name in ("--language", "-l"):
            targets.append({"language": options.value(name, inline)})
            continue
        if name in ("--version", "-V", "--image-name", "-I"):
            if not targets:
                raise Bad(f"Put `--language` before `{name}`.", command)
            key = "version" if name in ("--version", "-V") else "image_name"
            if key in targets[-1]:
                raise Bad(
                    f"Each cache needs its own `--language`; `{name}` was given twice.", command
                )
            targets[-1][key] = options.value(name, inline)
            continue
        if name in ("--dry-run", "-d"):
            raise Bad(
                "Every deletion starts with a dry run and a confirmation card; drop `--dry-run`.",
                command,
            )
        raise Bad(f"I don't understand `{short(name)}` here.", command)
    if not targets:
        raise Bad("Say which cache to delete.", command)
    if len(targets) > MAX_TARGETS:
        raise Bad(f"At most {MAX_TARGETS} caches in one request.", command)
    chosen: list[CacheTarget] = []
    for fields in targets:
        target = _target(fields, command)
        if target in chosen:
            raise Bad(
                f"The {target.language} {target.version} cache on image "
                f"`{short(target.image_name)}` is named twice; name each cache once.",
                command,
            )
        chosen.append(target)
    return CachesDelete(tuple(chosen))


def _target(fields: dict[str, str], command: str) -> CacheTarget:
    language = _LANGUAGES.get(fields["language"].lower())
    if language is None:
        raise Bad(f"The language must be R or Python, not `{short(fields['language'])}`.", command)
    version = fields.get("version")
    if not version:
        raise Bad(f"Give the {language} version with `--version`, e.g. `3.11.3`.", command)
    if not _VERSION3.match(version):
        raise Bad(
            f"`{short(version)}` is not a three-part version number such as `4.3.0`.", command
        )
    image = fields.get("image_name") or "Local"
    if len(image) > 255:
        raise Bad("That image name is too long.", command)
    return CacheTarget(language, version, image)


def _content(words: list[str]) -> Command | ParseError:
    if not words or words[0].lower() != "search":
        return ParseError("Try `content search`.", USAGE["content search"])
    packages: list[str] = []
    try:
        content_filter, page = filters(
            words[1:], "content search", allow_page=True, packages=packages
        )
    except Bad as exc:
        return exc.error()
    args = shlex.join(_without_page(words[1:]))
    return ContentSearch(content_filter, args, page, tuple(packages))


def _without_page(words: list[str]) -> list[str]:
    """The search's words less `--page N`: the page buttons add their own, and a second
    `--page` is refused. (`filters` has accepted the words, so `--page` has its value.)"""
    kept: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == "--page":
            skip = True
        elif not word.startswith("--page="):
            kept.append(word)
    return kept


def _rebuild(words: list[str]) -> Command | ParseError:
    verb = words[0].lower() if words else ""
    if verb == "status":
        if len(words) > 2:
            return ParseError("`rebuild status` takes at most one ID.", USAGE["rebuild status"])
        if len(words) == 2:
            number = _rebuild_id(words[1])
            if number is None:
                return ParseError("A rebuild ID is a number.", USAGE["rebuild status"])
            return RebuildStatus(number)
        return RebuildStatus()
    if verb == "cancel":
        number = _rebuild_id(words[1]) if len(words) == 2 else None
        if number is None:
            return ParseError(
                "Say which rebuild to cancel, by its number.", USAGE["rebuild cancel"]
            )
        return RebuildCancel(number)
    if verb in ("history", "list", "ls"):
        if len(words) > 1:
            return ParseError("`rebuild history` takes no options.", USAGE["rebuild history"])
        return RebuildHistory()
    if verb == "scheduled":
        if len(words) > 1:
            return ParseError("`rebuild scheduled` takes no options.", USAGE["rebuild scheduled"])
        return RebuildScheduled()
    packages: list[str] = []
    verify = not any(word.lower() == "--no-verify" for word in words)
    words = [word for word in words if word.lower() != "--no-verify"]
    try:
        words, when = take_when(words, "rebuild")
        words, visited_within = take_visited_within(words, "rebuild")
        content_filter, parallelism = filters(words, "rebuild", rebuild=True, packages=packages)
    except Bad as exc:
        return exc.error()
    parts = (describe_packages(packages), describe_filter(content_filter))
    return RebuildPlan(
        content_filter,
        parallelism or None,
        "; ".join(part for part in parts if part) or "all published content",
        tuple(packages),
        when,
        visited_within=visited_within,
        verify=verify,
    )


def _impact(words: list[str]) -> Impact:
    command = "impact"
    packages: list[str] = []
    options = Options(words, command)
    for name, inline in options:
        if name != "--package":
            raise Bad(f"I don't understand `{short(name)}` here.", command)
        for package in package_names(options.value(name, inline), name, command):
            if package not in packages:
                packages.append(package)
    if not packages:
        raise Bad("Say which package with `--package NAME`, e.g. `--package sf`.", command)
    if len(packages) > MAX_PACKAGES:
        raise Bad(f"At most {MAX_PACKAGES} packages in one command.", command)
    return Impact(tuple(packages))


def _health(words: list[str]) -> Health | HealthHistory:
    """`health` takes `rebuild`'s filters (and no `--parallelism`), `--visited-within` and
    `--render`;
    `health history` lists the last checks."""
    command = "health"
    if words and words[0].lower() in ("history", "list", "ls"):
        if len(words) > 1:
            raise Bad("`health history` takes no options.", "health history")
        return HealthHistory()
    render = any(word.lower() == "--render" for word in words)
    words = [word for word in words if word.lower() != "--render"]
    words, visited_within = take_visited_within(words, command)
    packages: list[str] = []
    content_filter, parallelism = filters(words, command, rebuild=True, packages=packages)
    if parallelism:
        raise Bad("`health` takes no `--parallelism`: it probes a few items at a time.", command)
    parts = (describe_packages(packages), describe_filter(content_filter))
    description = "; ".join(part for part in parts if part) or "all published content"
    if visited_within is not None:
        description += f"; visited within {visited_within} day(s)"
    return Health(content_filter, description, tuple(packages), render, visited_within)


def _rebuild_id(word: str) -> int | None:
    word = word.lstrip("#")
    return int(word) if _small_number(word) else None


def _small_number(word: str) -> bool:
    """ASCII digits only: `"²".isdigit()` is True but int() refuses it, and int() refuses
    more than 4300 digits."""
    return word.isascii() and word.isdigit() and len(word) < 10


def _audit(words: list[str]) -> Audit | ParseError:
    if not words:
        return Audit()
    if len(words) == 1 and _small_number(words[0]) and 1 <= int(words[0]) <= MAX_AUDIT:
        return Audit(int(words[0]))
    return ParseError(f"`audit` takes a number from 1 to {MAX_AUDIT}.", USAGE["audit"])
