"""The product's wheel holds the product only; the simulators ship apart (connect-bot-sim)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def build_wheel(source: Path, out: Path) -> zipfile.ZipFile:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("*.whl")
    return zipfile.ZipFile(wheel)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    out = tmp_path_factory.mktemp("wheels")
    return {
        "product": build_wheel(REPO, out / "product").namelist(),
        "sim": build_wheel(REPO / "sim", out / "sim").namelist(),
    }


def test_the_products_wheel_has_no_simulator_module(wheels: dict[str, list[str]]) -> None:
    code = [n for n in wheels["product"] if ".dist-info/" not in n]
    assert code and all(name.startswith("bot/") for name in code), code
    assert not [n for n in code if n.startswith(("bot/sim", "bot/demo", "sim/"))]
    for module in ("bot/cli.py", "bot/runtime.py", "bot/store/migrations/env.py"):
        assert module in code
    metadata = next(n for n in wheels["product"] if n.endswith(".dist-info/METADATA"))
    assert metadata.startswith("connect_bot-")
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in wheels["product"])


def test_the_simulators_ship_as_their_own_distribution(wheels: dict[str, list[str]]) -> None:
    code = [n for n in wheels["sim"] if ".dist-info/" not in n]
    assert all(name.startswith("sim/") for name in code), code
    for module in ("sim/connect_server.py", "sim/slack/server.py", "sim/demo/play.py"):
        assert module in code
    entry_points = next(n for n in wheels["sim"] if n.endswith("entry_points.txt"))
    assert entry_points.startswith("connect_bot_sim-")
