"""`connect-bot demo`: the bot's main job, played end to end on loopback simulators."""

from sim.demo.narration import GUTTER, Demo, DemoFailed
from sim.demo.play import run_demo

__all__ = ["GUTTER", "Demo", "DemoFailed", "run_demo"]
