"""Package impact (`impact --package`), and `--uses-package` for content search and rebuild.

The parser only records package names; here they are resolved through the impact service to
the published items whose active bundle uses them, then the usual search, plan or dry run runs.
"""

from __future__ import annotations

import dataclasses
import json

from bot.connect import ContentFilter, RuntimeCache
from bot.services.caches import CacheTarget
from bot.services.queries import (
    ContentFound,
    ContentUsing,
    Impact,
    ImpactFound,
    PackagesUnsupported,
)
from bot.services.rebuilds import of_filter
from bot.slack import parser
from bot.slack.deps import Click, Deps, Invocation
from bot.slack.handlers import caches, content, rebuilds, schedules
from bot.slack.replies import answer, post_or_explain, server_label, shared_view
from bot.slack.views import (
    content_search_view,
    impact_view,
    notice_view,
    packages_unsupported_view,
    parse_caches_value,
    parse_rebuild_value,
)

NOT_WIRED = (
    "Package lookups are not set up on this bot, so `impact` and `--uses-package` can't run."
)


def _service(deps: Deps, req: Invocation) -> Impact | None:
    if deps.services.impact is None:
        answer(deps, req, notice_view(NOT_WIRED))
    return deps.services.impact


def _unsupported(deps: Deps, req: Invocation, outcome: PackagesUnsupported) -> None:
    label = server_label(deps, outcome.server)
    answer(deps, req, packages_unsupported_view(outcome, server_label=label))


def show(deps: Deps, req: Invocation, command: parser.Impact) -> None:
    """`/connect impact --package NAME...`: posted in the channel, with its two buttons."""
    service = _service(deps, req)
    if service is None:
        return
    outcome = service.impact(req.actor, command.server, command.packages)
    if isinstance(outcome, PackagesUnsupported):
        _unsupported(deps, req, outcome)
        return
    if not isinstance(outcome, ImpactFound):
        answer(deps, req, shared_view(outcome))
        return
    view = impact_view(
        outcome, server=outcome.server, server_label=server_label(deps, outcome.server)
    )
    post_or_explain(deps, req, view)


def search(
    deps: Deps, req: Invocation, command: parser.ContentSearch, *, replace: bool = False
) -> None:
    """`content search`, with `--uses-package` resolved first (without it: the usual search)."""
    if not command.packages:
        content.search(deps, req, command, replace=replace)
        return
    service = _service(deps, req)
    if service is None:
        return
    outcome = service.search(req.actor, command.server, command.filter, command.packages)
    if isinstance(outcome, PackagesUnsupported):
        _unsupported(deps, req, outcome)
        return
    if not isinstance(outcome, ContentFound):
        answer(deps, req, shared_view(outcome))
        return
    parts = (parser.describe_packages(command.packages), parser.describe_filter(command.filter))
    view = content_search_view(
        outcome.items,
        page=command.page,
        args=command.args,
        description="; ".join(part for part in parts if part),
        server=outcome.server,
        server_label=server_label(deps, outcome.server),
    )
    answer(deps, req, view, replace=replace)


def page(deps: Deps, click: Click) -> None:
    """'Next >' / '< Previous' of a search: the button carries its words, page and server."""
    try:
        data = json.loads(click.value)
        parsed = parser.parse(f"content search {data['args']} --page {int(data['page'])}")
        server = data.get("server")
    except (ValueError, KeyError, TypeError):
        return
    if isinstance(parsed, parser.ContentSearch):
        if isinstance(server, str):
            parsed = dataclasses.replace(parsed, server=server)
        search(deps, click, parsed, replace=True)


def plan(deps: Deps, req: Invocation, command: parser.RebuildPlan) -> None:
    """`rebuild`, with `--uses-package` resolved to GUIDs and intersected with the filter;
    `--at`/`--in` read first (a time that cannot be scheduled asks Connect nothing)."""
    proposal = None
    if command.when is not None:
        proposal = schedules.proposal(deps, req, command.when)
        if proposal is None:
            return
    selection = of_filter(command.filter, command.packages)
    if not command.packages:
        rebuilds.plan(deps, req, command, selection=selection, proposal=proposal)
        return
    service = _service(deps, req)
    if service is None:
        return
    outcome = service.content_using(req.actor, command.server, command.packages)
    if isinstance(outcome, PackagesUnsupported):
        _unsupported(deps, req, outcome)
        return
    if not isinstance(outcome, ContentUsing):
        answer(deps, req, shared_view(outcome))
        return
    wanted = command.filter.guids
    guids = outcome.guids & wanted if wanted else outcome.guids
    if not guids:  # an empty `guids` would mean "no restriction": never plan with it
        text = f"Nothing to rebuild: no published content matches {command.description}."
        answer(deps, req, notice_view(text))
        return
    resolved = dataclasses.replace(
        command,
        server=outcome.server,
        filter=dataclasses.replace(command.filter, guids=guids),
        packages=(),
    )
    rebuilds.plan(deps, req, resolved, selection=selection, proposal=proposal)


def delete_caches(deps: Deps, click: Click) -> None:
    """'Delete these caches…': the usual dry run and confirmation card for those caches."""
    picked = parse_caches_value(click.value)
    if picked is None:
        return
    server, chosen = picked
    caches.request_deletion(deps, click, server, [_target(cache) for cache in chosen])


def rebuild(deps: Deps, click: Click) -> None:
    """'Rebuild these N items': the usual plan card for the items using the package(s) now."""
    picked = parse_rebuild_value(click.value)
    if picked is None:
        return
    server, packages = picked
    command = parser.RebuildPlan(
        ContentFilter(published=True),
        None,
        parser.describe_packages(packages),
        tuple(packages),
        server=server,
    )
    plan(deps, click, command)


def _target(cache: RuntimeCache) -> CacheTarget:
    return CacheTarget(cache.language, cache.version, cache.image_name)
