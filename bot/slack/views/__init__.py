"""Block Kit views, one module per area. Pure functions: data (and `now`, where time is shown)
in, `Message` out; no I/O, no clock. Escaping lives in `bot.slack.text`.

    common    Message, Actions, MAX_BLOCKS, block helpers, notices and errors
    help      /connect help
    caches    caches list, deletion card, dry-run refusals
    content   content search
    rebuilds  rebuild plan card, progress, thread replies, status, cancel, history
    home      the App Home tab (a view for views.publish, not a message)
    impact    which runtimes, caches and items use a package; packages API missing
    health    which content starts, fails to start or could not be checked, and why
    owners    direct messages to the owners of failed items; their part of the summary
    audit     audit log and audit-channel notices
    servers   the Connect servers this bot serves
"""

from __future__ import annotations

from bot.slack.views.audit import audit_notice_view, audit_view
from bot.slack.views.caches import (
    cache_value,
    caches_list_view,
    deletion_card_view,
    parse_cache_value,
    rejections_view,
)
from bot.slack.views.common import (
    MAX_BLOCKS,
    Actions,
    Message,
    context,
    date,
    denied_view,
    duration,
    error_view,
    md,
    not_in_channel_view,
    notice_view,
    unknown_server_view,
    usage_error_view,
    who,
)
from bot.slack.views.content import PAGE_SIZE, content_search_view
from bot.slack.views.health import (
    HealthActions,
    check_line,
    health_failed_view,
    health_history_view,
    health_needs_thread,
    health_progress_view,
    health_render_cancelled_view,
    health_render_confirm_view,
    health_started_view,
    health_thread_replies,
    health_view,
)
from bot.slack.views.help import help_view
from bot.slack.views.home import MAX_HOME_BLOCKS, HomeActions, HomeView, home_view
from bot.slack.views.impact import (
    ImpactActions,
    impact_view,
    packages_unsupported_view,
    parse_caches_value,
    parse_rebuild_value,
)
from bot.slack.views.owners import dm_refused_reply, owner_dm, owners_blocks, with_owners
from bot.slack.views.rebuilds import (
    Permalink,
    cancel_requested_reply,
    cancel_view,
    counts_line,
    failures_reply,
    history_view,
    plan_card_view,
    progress_bar,
    progress_view,
    start_reply,
    status_view,
    summary_reply,
    warmup_reply,
)
from bot.slack.views.servers import servers_view

__all__ = [
    "MAX_BLOCKS",
    "MAX_HOME_BLOCKS",
    "PAGE_SIZE",
    "Actions",
    "HealthActions",
    "HomeActions",
    "HomeView",
    "ImpactActions",
    "Message",
    "Permalink",
    "audit_notice_view",
    "audit_view",
    "cache_value",
    "caches_list_view",
    "cancel_requested_reply",
    "cancel_view",
    "check_line",
    "content_search_view",
    "context",
    "counts_line",
    "date",
    "deletion_card_view",
    "denied_view",
    "dm_refused_reply",
    "duration",
    "error_view",
    "failures_reply",
    "health_failed_view",
    "health_history_view",
    "health_needs_thread",
    "health_progress_view",
    "health_render_cancelled_view",
    "health_render_confirm_view",
    "health_started_view",
    "health_thread_replies",
    "health_view",
    "help_view",
    "history_view",
    "home_view",
    "impact_view",
    "md",
    "not_in_channel_view",
    "notice_view",
    "owner_dm",
    "owners_blocks",
    "packages_unsupported_view",
    "parse_cache_value",
    "parse_caches_value",
    "parse_rebuild_value",
    "plan_card_view",
    "progress_bar",
    "progress_view",
    "rejections_view",
    "servers_view",
    "start_reply",
    "status_view",
    "summary_reply",
    "unknown_server_view",
    "usage_error_view",
    "warmup_reply",
    "who",
    "with_owners",
]
