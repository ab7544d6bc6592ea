"""App Home: show it on an open, expand a part of it on a button, and publish it (views.publish
with the last `hash`, so an older render never overwrites a newer one).

Home has no channel and no response_url: every answer is a new Home view for that person.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.services.home import Home, Section
from bot.services.outcomes import Actor
from bot.slack.deps import Click, Deps
from bot.slack.handlers.rebuilds import permalink
from bot.slack.views import HomeView, home_view
from bot.slack.views.home import SECTION_OF_ACTION
from bot.store import utcnow

log = logging.getLogger("bot.slack")

MAX_ATTEMPTS = 3  # a hash_conflict re-renders with the newer hash, then without one


def opened(deps: Deps, user: str, channel: str, view_hash: str | None) -> None:
    """`app_home_opened` (tab home): record the open and show the current state at once."""
    home = deps.services.home
    if home is None or not user:
        return
    home.opened(user, view_hash=view_hash)
    publish(deps, user, channel=channel, fresh=True, view_hash=view_hash)


def toggle(deps: Deps, click: Click) -> None:
    """A Home button: expand that part of Home (or collapse it), and show Home again."""
    home = deps.services.home
    kind = SECTION_OF_ACTION.get(click.action_id)
    if home is None or kind is None or not click.user or not click.value:
        return
    if home.access(click.user).allowed:
        home.toggle(click.user, Section(kind, click.value))
    # else: an outsider's click (a forged payload: their Home has no buttons) expands nothing;
    # their Home is shown again, saying where to ask.
    publish(deps, click.user, fresh=False)


def render(deps: Deps, home: Home, user: str, *, channel: str = "", fresh: bool) -> HomeView:
    overview = home.overview(Actor(user, channel), fresh=fresh)
    return home_view(overview, lambda c, ts: permalink(deps, c, ts), now=utcnow())


def publish(
    deps: Deps,
    user: str,
    *,
    channel: str = "",
    fresh: bool = False,
    view_hash: str | None = None,
) -> str | None:
    """Render `user`'s Home and views.publish it; the new hash, or None if Slack refused.

    The hash sent is the one Slack last answered (or the open event's). On `hash_conflict`
    someone published since: render again with the hash they recorded; if that is the one
    that just failed, our record is behind and this render is the newest: publish it without.
    """
    home = deps.services.home
    if home is None:
        return None
    if view_hash is None:
        viewer = home.viewer(user)
        view_hash = viewer.last_hash if viewer else None
    tried: set[str | None] = set()
    for _ in range(MAX_ATTEMPTS):
        view = render(deps, home, user, channel=channel, fresh=fresh)
        fresh = False  # a second render needs no new Connect answer
        error, new_hash = _views_publish(deps, user, view, view_hash)
        if error is None:
            home.published(user, new_hash)
            return new_hash
        if error != "hash_conflict":
            return None
        tried.add(view_hash)
        viewer = home.viewer(user)
        latest = viewer.last_hash if viewer else None
        view_hash = latest if latest not in tried else None
    return None


def _views_publish(
    deps: Deps, user: str, view: HomeView, view_hash: str | None
) -> tuple[str | None, str | None]:
    """(error, new hash): error None on success."""
    started = time.perf_counter()
    status: int | None = None
    error: str | None = None
    new_hash: str | None = None
    try:
        response: Any = deps.poster.client.views_publish(
            user_id=user, view=view.to_dict(), hash=view_hash
        )
        status = response.status_code
        new_hash = (response.get("view") or {}).get("hash")
    except SlackApiError as exc:
        status = exc.response.status_code
        error = str(exc.response.get("error") or f"HTTP {status}")
    except Exception as exc:  # network trouble: the next change or open shows Home again
        error = type(exc).__name__
    log.info(
        "slack call",
        extra={
            "event": "slack_call",
            "method": "views.publish",
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            "error": error,
            "channel": None,
        },
    )
    if error is not None and error != "hash_conflict":
        log.warning("views.publish for %s failed: %s", user, error)
    return error, new_hash
