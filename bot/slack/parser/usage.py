"""The words of `/connect help` and of the usage lines that follow a mistake."""

from __future__ import annotations

from dataclasses import dataclass

SERVER_OPTION = "[-n SERVER]"

USAGE = {
    "help": "/connect help",
    "servers": "/connect servers",
    "caches list": "/connect caches list [-n SERVER]",
    "caches delete": (
        "/connect caches delete --language Python --version 3.11.3 [--image-name Local] [-n SERVER]"
    ),
    "content search": (
        "/connect content search [--published|--unpublished] [--content-type shiny]... "
        '[--py-version ">=3.9"] [--r-version 4.3.0] [--title-contains Sales] '
        "[--uses-package NAME]... [-n SERVER]"
    ),
    "rebuild": (
        "/connect rebuild [--guid GUID]... [--content-type T]... [--py-version OPV] "
        "[--r-version OPV] [--image-name I] [--uses-package NAME]... [--parallelism N] "
        "[--visited-within 30d] [--no-verify] [--at HH:MM | --at YYYY-MM-DDTHH:MM | --in 30m]"
        " [-n SERVER]"
    ),
    "impact": "/connect impact --package NAME [--package NAME]... [-n SERVER]",
    "health": (
        "/connect health [--guid GUID]... [--content-type T]... [--py-version OPV] "
        "[--r-version OPV] [--image-name I] [--uses-package NAME]... [--visited-within 30d] "
        "[--render] [-n SERVER]"
    ),
    "health history": "/connect health history [-n SERVER]",
    "rebuild status": "/connect rebuild status [ID]",
    "rebuild cancel": "/connect rebuild cancel ID",
    "rebuild scheduled": "/connect rebuild scheduled",
    "rebuild history": "/connect rebuild history [-n SERVER]",
    "audit": "/connect audit [N]",
}


@dataclass(frozen=True, slots=True)
class HelpEntry:
    usage: str
    example: str
    what: str
    admin: bool = False


HELP: tuple[HelpEntry, ...] = (
    HelpEntry("servers", "/connect servers", "The Connect servers this bot serves."),
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
    HelpEntry(
        "rebuild",
        "/connect rebuild --content-type shiny --at 02:00",
        "Plan it to start later: `--at HH:MM` (your Slack time zone), `--at"
        " 2026-12-24T02:00`, or `--in 30m` / `--in 2h` (up to 30 days). The card's *Schedule*"
        " button (or *Schedule…*, with a date picker) schedules it; at the time the filter is"
        " checked again and the rebuild starts.",
        admin=True,
    ),
    HelpEntry(
        "rebuild scheduled", "/connect rebuild scheduled", "The rebuilds waiting for their start."
    ),
    HelpEntry(
        "impact",
        "/connect impact --package sf",
        "Which runtimes, caches and published items use a package (active bundles), with"
        " buttons to delete those caches or rebuild those items. Needs Connect 2024.11.0+.",
    ),
    HelpEntry(
        "health",
        "/connect health --uses-package sf",
        "Which published content fails to start, and why: each interactive item is requested"
        " once (a few at a time) and its new process read. Filters as `rebuild`;"
        " `--visited-within 30d` checks only what was visited in those days;"
        " `--render` (admins, confirmed) renders documents again too.",
    ),
    HelpEntry("health history", "/connect health history", "Recent health checks."),
    HelpEntry("rebuild status", "/connect rebuild status 12", "Progress of a rebuild."),
    HelpEntry(
        "rebuild cancel",
        "/connect rebuild cancel 12",
        "Stop dispatching builds, or cancel a scheduled rebuild before its start.",
        True,
    ),
    HelpEntry("rebuild history", "/connect rebuild history", "Recent rebuilds."),
    HelpEntry("audit", "/connect audit 20", "The last N destructive acts.", admin=True),
    HelpEntry("help", "/connect help", "This message."),
)

SERVER_HINT = (
    "With several Connect servers, add `-n NAME` to any command (`/connect servers` lists them)."
)
