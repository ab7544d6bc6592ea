"""``python -m bot.sim.slack``: run the fake Slack standalone (see ``server.main``)."""

from bot.sim.slack.server import main

main()
