"""What the bot does; knows nothing of Slack. One package per feature, shared modules at the top.

- Features: `caches/`, `rebuilds/`, `schedules/`, `health/`, `queries/` (each `__init__`
  says what it owns and may import; callers import from the package, e.g.
  `from bot.services.rebuilds import Rebuilds`). Features may import the shared modules,
  never the other way round.
- Shared: `audit`, `authz`, `confirmations`, `pending`, `servers`, `instance`, `outcomes`,
  `criteria` (what a plan selects), `usage` (visits per item, for rebuilds and health),
  `times` (wall-clock times: the parser, plans' proposals and schedules use them).
- Above the features: `home` (App Home reads every feature) and `container` (the `Services`
  the Slack layer is given).
"""
