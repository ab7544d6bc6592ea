"""`connect-bot check`: is the configuration right, and if not, what to do about it.

One line per check: `✔` right, `!` worth knowing (does not fail the check), `✘` wrong, each `✘`
saying how to fix it. Read-only: nothing is created, migrated or posted. Every line goes
through log redaction, so no secret reaches the terminal even inside an error message.

Every configured Connect server is checked; with several, each server's lines are headed with
its name (`✔ [staging] Connect at https://… answers: …`).
"""

from __future__ import annotations

from collections.abc import Callable

from bot.check.authorisation import check_authorisation
from bot.check.connect import MIN_CONNECT, Target, check_server
from bot.check.database import check_database
from bot.check.report import MARKS, Report, Status
from bot.check.servers import check_connect
from bot.check.slack import WebClientFactory, check_slack, default_web_client, required_scopes
from bot.config import Settings

__all__ = [
    "MARKS",
    "MIN_CONNECT",
    "Report",
    "Status",
    "Target",
    "WebClientFactory",
    "check_authorisation",
    "check_connect",
    "check_database",
    "check_server",
    "check_slack",
    "required_scopes",
    "run_check",
]


def run_check(
    settings: Settings,
    out: Callable[[str], object] = print,
    *,
    web_client_factory: WebClientFactory | None = None,
) -> int:
    """Check Connect, Slack, authorisation and the database; 0 when nothing needed is wrong."""
    report = Report(out, settings.secret_values())
    factory = web_client_factory or default_web_client
    sections: list[tuple[str, Callable[[], None]]] = [
        ("Connect", lambda: check_connect(settings, report)),
        ("Slack", lambda: check_slack(settings, report, factory)),
        ("authorisation", lambda: check_authorisation(settings, report)),
        ("database", lambda: check_database(settings, report)),
    ]
    for name, section in sections:
        try:
            section()
        except Exception as exc:  # one broken check must not hide the others' answers
            report.fail(f"the {name} check failed unexpectedly: {type(exc).__name__}: {exc}")
    report.summary()
    return 1 if report.counts["fail"] else 0
