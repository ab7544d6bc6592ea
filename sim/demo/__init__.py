"""`connect-bot demo`: the seed's story (a GDAL upgrade found, fixed and proved fixed), played
end to end on loopback simulators."""

from sim.demo.narration import GUTTER, Demo, DemoFailed
from sim.demo.play import run_demo

__all__ = ["GUTTER", "Demo", "DemoFailed", "run_demo"]
