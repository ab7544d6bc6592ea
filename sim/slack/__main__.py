"""``python -m sim.slack``: run the fake Slack standalone (see ``server.main``)."""

from sim.slack.server import main

main()
