"""Saying use-case outcomes that several handlers share, and posting where the bot may not be."""

from __future__ import annotations

from bot.services.outcomes import (
    AlreadyHandled,
    ConnectFailed,
    Denied,
    Expired,
    NotFound,
    UnknownServer,
)
from bot.slack.deps import Deps, Invocation
from bot.slack.poster import SlackUnavailable
from bot.slack.views import (
    Message,
    denied_view,
    error_view,
    not_in_channel_view,
    notice_view,
    unknown_server_view,
)

Shared = Denied | NotFound | Expired | AlreadyHandled | ConnectFailed | UnknownServer


def shared_view(outcome: Shared, *, subject: str = "request", undone: str = "done") -> Message:
    """The private answer to an outcome every use case can have.

    `subject` names what was clicked ("request", "plan"); `undone` what therefore did not
    happen ("deleted", "built")."""
    if isinstance(outcome, Denied):
        return denied_view(outcome.reason)
    if isinstance(outcome, UnknownServer):
        return unknown_server_view(outcome.name, outcome.names)
    if isinstance(outcome, ConnectFailed):
        return error_view(outcome.what, outcome.reason)
    if isinstance(outcome, Expired):
        again = "Run `/connect rebuild` again." if subject == "plan" else "Run the command again."
        return notice_view(f"This {subject} expired, so nothing was {undone}. {again}")
    if isinstance(outcome, AlreadyHandled):
        return notice_view(
            f"This {subject} was already handled ({outcome.state}); nothing more was done."
        )
    return notice_view(f"That {subject} no longer exists.")


def answer_lost_click(
    deps: Deps, click: Invocation, outcome: object, *, subject: str, undone: str
) -> None:
    """A won click shows on its card (the notifier updates it); a lost one is told privately."""
    if isinstance(outcome, Denied | NotFound | Expired | AlreadyHandled):
        answer(deps, click, shared_view(outcome, subject=subject, undone=undone))


def answer(deps: Deps, req: Invocation, message: Message, *, replace: bool = False) -> None:
    """Privately, through the response_url (works even where the bot is not a member)."""
    deps.poster.respond(req.response_url, message, replace_original=replace)


def post_or_explain(deps: Deps, req: Invocation, message: Message) -> str | None:
    """Post in the channel; if the bot can't, tell the user how to invite it."""
    try:
        return deps.poster.post(req.channel, message)
    except SlackUnavailable as exc:
        if exc.cannot_post_here:
            answer(deps, req, not_in_channel_view(deps.bot_user_id))
        else:
            answer(deps, req, error_view("Posting to Slack", exc.error))
        return None


def server_label(deps: Deps, name: str | None) -> str | None:
    """The server's name, shown on every card only when the bot serves several."""
    return name if deps.services.servers.several else None


def listed_server(deps: Deps, req: Invocation, name: str | None) -> str | UnknownServer | None:
    """Which server a listing (`history`) is limited to: the one `-n NAME` names, or None for
    every server. An unknown name comes back as UnknownServer, already answered."""
    if name is None:
        return None
    found = deps.services.servers.resolve(name, req.channel)
    if isinstance(found, UnknownServer):
        answer(deps, req, shared_view(found))
        return found
    return found.name
