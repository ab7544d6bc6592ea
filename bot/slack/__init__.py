"""The Slack side: Bolt app, pure parser and views, listeners per surface."""
