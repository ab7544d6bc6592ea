"""Authorisation: who may delete caches and rebuild (BOT_ADMIN_USERS, BOT_ADMIN_GROUPS)."""

from __future__ import annotations

import re

from bot.check.report import Report
from bot.config import Settings


def check_authorisation(settings: Settings, report: Report) -> None:
    users, groups = settings.bot_admin_users, settings.bot_admin_groups
    if not users and not groups:
        report.warn(
            "neither BOT_ADMIN_USERS nor BOT_ADMIN_GROUPS is set: deleting caches and rebuilding "
            "will be refused to everyone; set BOT_ADMIN_USERS to Slack member IDs (U…) or "
            "BOT_ADMIN_GROUPS to user group IDs (S…)"
        )
        return
    _malformed_ids(
        "BOT_ADMIN_USERS", users, r"[UW][A-Z0-9]{4,}", "member IDs such as U012AB3CD", report
    )
    _malformed_ids(
        "BOT_ADMIN_GROUPS", groups, r"S[A-Z0-9]{4,}", "user group IDs such as S0614TZR7", report
    )
    report.ok(f"authorisation: {len(users)} admin user(s), {len(groups)} admin group(s)")
    if settings.bot_two_person_rule and not groups and len(users) < 2:
        report.warn(
            "BOT_TWO_PERSON_RULE is on with a single admin: nobody else can approve, so "
            "destructive commands cannot complete; add a second admin"
        )


def _malformed_ids(name: str, values: list[str], shape: str, example: str, report: Report) -> None:
    bad = [value for value in values if not re.fullmatch(shape, value)]
    if bad:
        report.warn(
            f"{name} has entries that are not Slack IDs ({', '.join(bad)}): they will match "
            f"nobody; use {example} (names and @handles do not work)"
        )
