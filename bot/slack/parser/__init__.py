"""`/connect` text -> command objects (pure). `parse` is the entry point."""

from bot.slack.parser.commands import (
    Addressed,
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
from bot.slack.parser.options import describe_filter, describe_packages
from bot.slack.parser.parse import parse, tokenize
from bot.slack.parser.usage import HELP, SERVER_HINT, USAGE, HelpEntry

__all__ = [
    "HELP",
    "SERVER_HINT",
    "USAGE",
    "Addressed",
    "Audit",
    "CachesDelete",
    "CachesList",
    "Command",
    "ContentSearch",
    "Health",
    "HealthHistory",
    "Help",
    "HelpEntry",
    "Impact",
    "ParseError",
    "RebuildCancel",
    "RebuildHistory",
    "RebuildPlan",
    "RebuildScheduled",
    "RebuildStatus",
    "Servers",
    "describe_filter",
    "describe_packages",
    "parse",
    "tokenize",
]
