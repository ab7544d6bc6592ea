"""`/connect impact --package NAME`: which runtimes, caches and published items use a package,
with buttons to delete those caches (dry run and card) or rebuild those items (plan card)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, HeaderBlock

from bot.connect import ContentItem, RuntimeCache
from bot.services.queries import ImpactFound, PackagesUnsupported
from bot.slack.text import clip, code, esc, link, plain
from bot.slack.views.common import MAX_BLOCKS, Message, context, md, on_server

MAX_RUNTIMES = MAX_BLOCKS - 6  # header, intro, caches line, note, buttons: room to spare
ITEMS_PER_RUNTIME = 8
MAX_VALUE = 2000  # Slack's limit on a button's value


class ImpactActions:
    """action_id values of the impact answer (the contract with the routes)."""

    DELETE_CACHES = "impact_delete_caches"
    REBUILD = "impact_rebuild"


def packages_text(packages: Sequence[str]) -> str:
    """`sf`, `sf or numpy`: escaped, each in a code span."""
    return " or ".join(code(p) for p in packages)


def caches_value(server: str | None, caches: Sequence[RuntimeCache]) -> str:
    fields = [[c.language, c.version, c.image_name] for c in caches]
    return json.dumps({"server": server, "caches": fields}, separators=(",", ":"))


def parse_caches_value(value: str) -> tuple[str | None, list[RuntimeCache]] | None:
    """(server, caches) from a "Delete these caches…" value; None for anything malformed."""
    try:
        data = json.loads(value)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("caches"), list):
        return None
    server = data.get("server")
    caches = []
    for fields in data["caches"]:
        if not (isinstance(fields, list) and len(fields) == 3):
            return None
        if not all(isinstance(f, str) for f in fields):
            return None
        caches.append(RuntimeCache(fields[0], fields[1], fields[2]))
    if not caches or not (server is None or isinstance(server, str)):
        return None
    return server, caches


def rebuild_value(server: str | None, packages: Sequence[str]) -> str:
    return json.dumps({"server": server, "packages": list(packages)}, separators=(",", ":"))


def parse_rebuild_value(value: str) -> tuple[str | None, list[str]] | None:
    """(server, packages) from a "Rebuild these N items" value; None for anything malformed."""
    try:
        data = json.loads(value)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("packages"), list):
        return None
    server, packages = data.get("server"), data["packages"]
    if not packages or not all(isinstance(p, str) and p for p in packages):
        return None
    if not (server is None or isinstance(server, str)):
        return None
    return server, packages


def impact_view(
    outcome: ImpactFound, *, server: str | None = None, server_label: str | None = None
) -> Message:
    """`server`: carried by the buttons; `server_label`: shown, with several servers."""
    names = packages_text(outcome.packages)
    where = on_server(server_label)
    fallback_names = " or ".join(outcome.packages)
    items = outcome.items
    blocks: list[Block] = [HeaderBlock(text=plain(f"Impact of {fallback_names}", 150))]
    if not items:
        text = f"No published content{where} uses {names} in its active bundle."
        blocks.append(md(f":package: {text}"))
        return Message(esc(f"No published content uses {fallback_names}."), blocks)
    runtimes = outcome.runtimes
    blocks.append(
        md(
            f":package: *{len(items)}* published item(s){where} use {names} in their active"
            f" bundle, on *{len(runtimes)}* runtime(s):"
        )
    )
    for runtime in runtimes[:MAX_RUNTIMES]:
        blocks.append(md(_runtime_text(runtime.runtime, runtime.items, runtime.cached)))
    if len(runtimes) > MAX_RUNTIMES:
        blocks.append(context(f"…and {len(runtimes) - MAX_RUNTIMES} more runtime(s)."))
    caches = outcome.caches
    if caches:
        labels = ", ".join(
            f"{esc(c.language)} {esc(c.version)} ({code(c.image_name)})" for c in caches
        )
        blocks.append(context(f"Runtime caches of these runtimes: {labels}."))
    else:
        blocks.append(context("Connect has no runtime cache for these runtimes."))
    blocks.append(
        context(
            "Only each item's active bundle counts: items that used the package in an older"
            " bundle only are not listed."
        )
    )
    buttons = []
    delete_value = caches_value(server, caches)
    if caches and len(delete_value) <= MAX_VALUE:
        buttons.append(
            ButtonElement(
                text="Delete these caches…",
                action_id=ImpactActions.DELETE_CACHES,
                value=delete_value,
                style="danger",
            )
        )
    rebuild = rebuild_value(server, outcome.packages)
    if len(rebuild) <= MAX_VALUE:
        buttons.append(
            ButtonElement(
                text=plain(f"Rebuild these {len(items)} items", 75),
                action_id=ImpactActions.REBUILD,
                value=rebuild,
            )
        )
    if buttons:
        blocks.append(ActionsBlock(elements=buttons))
    text = f"{len(items)} published item(s) use {fallback_names} on {len(runtimes)} runtime(s)."
    return Message(esc(text), blocks)


def _runtime_text(runtime: RuntimeCache, items: Sequence[ContentItem], cached: bool) -> str:
    shown = items[:ITEMS_PER_RUNTIME]
    cache = "runtime cache present" if cached else "no runtime cache"
    head = (
        f"*{esc(runtime.language)} {esc(runtime.version)}* · {code(runtime.image_name)}"
        f" · {len(items)} item(s) · {cache}"
    )
    titles = [f"• {link(i.dashboard_url, clip(i.display_title, 120))}" for i in shown]
    if len(items) > len(shown):
        titles.append(f"• …and {len(items) - len(shown)} more")
    return "\n".join([head, *titles])


def packages_unsupported_view(
    outcome: PackagesUnsupported, *, server_label: str | None = None
) -> Message:
    """Connect without the packages API (older than 2024.11.0)."""
    name = f"Connect {server_label}" if server_label else "This Connect"
    running = f" runs {outcome.version}" if outcome.version else " is too old"
    text = (
        f"{name}{running} and has no packages API, so I can't tell which content uses a"
        f" package. `impact` and `--uses-package` need Posit Connect {outcome.needed} or later."
    )
    return Message(esc(text), [md(f":warning: {esc(text)}")])
