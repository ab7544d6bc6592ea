"""Simulators for connect-bot: a Posit Connect simulator, a fake Slack, the demo, and the
process and attack helpers the tests and benches share. Never imported by `bot`."""

__version__ = "0.1.0"
