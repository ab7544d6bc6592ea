"""The container image, without a Docker engine: its Dockerfile is parsed and its steps replayed.

Replaying means: the build context is filtered through .dockerignore, the builder stage's COPY
and RUN steps build the wheel, the final stage's steps install it (with the `[postgres]` extra)
into a clean venv, container paths (/wheels, /opt/connect-bot, /data) are mapped into a scratch
directory, and the installed `connect-bot` runs under the Dockerfile's non-root uid against the
simulators. Set BOT_SKIP_INSTALL_TEST=1 to skip the replay (it downloads packages from the index).
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

import pytest

from sim.connect_server import FakeConnect
from sim.process import free_port
from sim.slack import FakeSlack

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
# Container paths the steps use, mapped under a scratch root when replayed here.
CONTAINER_PATHS = ("/opt/connect-bot", "/tmp/wheels", "/wheels", "/data", "/src")
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ADMIN_KEY = "ImageAdm1nKey0000000000000000000"
BOT_TOKEN = "xoxb-image-bot-token-11aa"
SIGNING_SECRET = "image-signing-secret-22bb"

skip_install = pytest.mark.skipif(
    os.environ.get("BOT_SKIP_INSTALL_TEST") == "1",
    reason="BOT_SKIP_INSTALL_TEST=1: not replaying the image install (it needs the package index)",
)


# ------------------------------------------------------------------ Dockerfile model


@dataclass(frozen=True)
class Step:
    command: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    steps: list[Step] = field(default_factory=list)

    def all(self, command: str) -> list[Step]:
        return [step for step in self.steps if step.command == command]

    def one(self, command: str) -> Step:
        (step,) = self.all(command)
        return step

    def env(self) -> dict[str, str]:
        values = {"PATH": BASE_PATH}
        for step in self.all("ENV"):
            for pair in shlex.split(step.args):
                name, _, value = pair.partition("=")
                values[name] = re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m[1], ""), value)
        return values


def logical_lines(text: str) -> list[str]:
    """Join continuation lines; comment lines are dropped, also inside a continuation."""
    lines, pending = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    return lines


def parse_dockerfile(text: str) -> list[Stage]:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical_lines(text):
        command, _, rest = line.partition(" ")
        command, rest = command.upper(), rest.strip()
        if command == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif command == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: args[m[1]], words[0])
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else None
            stages.append(Stage(base, name))
        else:
            stages[-1].steps.append(Step(command, rest))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def ignored(path: str, rules: list[str]) -> bool:
    """.dockerignore semantics: last matching rule wins; a rule on a folder covers its files."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for rule in rules:
        negated = rule.startswith("!")
        pattern = rule.lstrip("!").strip("/")
        patterns = {pattern, pattern.removeprefix("**/")}
        if any(fnmatch(c, p) for c in candidates for p in patterns):
            excluded = not negated
    return excluded


def dockerignore_rules() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


# ------------------------------------------------------------------ the Dockerfile itself


def test_two_stages_and_a_slim_python_base(stages: list[Stage]) -> None:
    builder, final = stages
    assert builder.name == "builder"
    assert builder.base == final.base
    assert re.fullmatch(r"python:3\.1[1-9]-slim", final.base)


def test_builder_makes_only_the_wheel(stages: list[Stage]) -> None:
    (run,) = stages[0].all("RUN")
    assert "pip wheel" in run.args and "--no-deps" in run.args and "-w /wheels" in run.args
    assert "cp requirements.lock /wheels/" in run.args


def test_final_stage_installs_the_wheel_with_postgres_into_a_venv(stages: list[Stage]) -> None:
    final = stages[1]
    assert "--from=builder /wheels /tmp/wheels" in [s.args for s in final.all("COPY")]
    install = " ".join(next(s.args for s in final.all("RUN") if "pip install" in s.args).split())
    assert "python -m venv /opt/connect-bot" in install
    # The dependencies come from the lock file, hashes checked; the wheel adds nothing to them.
    assert "--require-hashes --no-deps -r /tmp/wheels/requirements.lock" in install
    assert "--no-deps /tmp/wheels/connect_bot-*.whl" in install
    assert "pip check" in install
    assert final.env()["PATH"].startswith("/opt/connect-bot/bin:")


def test_runs_as_a_named_non_root_user(stages: list[Stage]) -> None:
    final = stages[1]
    user = final.one("USER").args
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0
    create = " ".join(s.args for s in final.all("RUN") if "useradd" in s.args)
    assert re.search(rf"useradd .*--uid {uid} .*connect-bot", create)
    assert "chown connect-bot:connect-bot /data" in create


def test_data_volume_port_health_and_command(stages: list[Stage]) -> None:
    final = stages[1]
    assert final.one("VOLUME").args == "/data"
    assert final.one("WORKDIR").args == "/data"
    assert final.env()["BOT_DATABASE_URL"] == "sqlite:////data/connect-bot.db"
    assert final.one("EXPOSE").args == "3000"
    assert json.loads(final.one("CMD").args) == ["connect-bot", "serve"]
    assert not final.all("ENTRYPOINT")
    health = final.one("HEALTHCHECK").args
    probe = json.loads(health[health.index("CMD") + 3 :])
    assert probe == ["python", "/opt/connect-bot/healthcheck.py"]
    assert "docker/healthcheck.py /opt/connect-bot/healthcheck.py" in [
        s.args for s in final.all("COPY")
    ]


def test_build_context_has_the_sources_and_no_secrets() -> None:
    rules = dockerignore_rules()
    kept_files = ("pyproject.toml", "README.md", "LICENSE", "requirements.lock", "bot/cli.py")
    for kept in (*kept_files, "bot/store/migrations/env.py"):
        assert not ignored(kept, rules), kept
    assert not ignored("docker/healthcheck.py", rules)
    for dropped in (".env", "bot/.env", "connect-bot.db", ".venv/bin/python", ".git/config"):
        assert ignored(dropped, rules), dropped
    assert ignored("bot/__pycache__/cli.cpython-311.pyc", rules)
    assert ignored("tests/test_check.py", rules)


# ------------------------------------------------------------------ the health probe


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[http.server.HTTPServer, type[_Health]]]:
    handler = type("Health", (_Health,), {"status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


def probe(port: int, **env: str) -> subprocess.CompletedProcess[str]:
    script = REPO / "docker" / "healthcheck.py"
    full_env = {"PATH": os.environ["PATH"], "PORT": str(port), **env}
    return subprocess.run(
        [sys.executable, str(script)], env=full_env, capture_output=True, text=True, timeout=30
    )


def test_health_probe_passes_on_200_even_behind_a_proxy(
    health_server: tuple[http.server.HTTPServer, type[_Health]],
) -> None:
    server, _ = health_server
    port = server.server_address[1]
    assert probe(port).returncode == 0
    # A proxy meant for outbound calls must not swallow the loopback probe.
    assert (
        probe(port, HTTP_PROXY="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9").returncode
        == 0
    )


def test_health_probe_prefers_the_health_port(
    health_server: tuple[http.server.HTTPServer, type[_Health]],
) -> None:
    server, _ = health_server
    closed = free_port()  # nobody listens there
    answer = probe(closed, BOT_HEALTH_PORT=str(server.server_address[1]))
    assert answer.returncode == 0, answer.stderr


def test_health_probe_fails_on_error_status_and_closed_port(
    health_server: tuple[http.server.HTTPServer, type[_Health]],
) -> None:
    server, handler = health_server
    handler.status = 503
    answer = probe(server.server_address[1])
    assert answer.returncode == 1 and "HTTP Error 503" in answer.stderr
    closed = free_port()  # nobody listens there
    assert probe(closed).returncode == 1


# ------------------------------------------------------------------ replaying the build


@dataclass
class Image:
    root: Path  # the final stage's filesystem, mapped
    env: dict[str, str]  # the final stage's ENV, mapped
    uid: int
    gid: int
    workdir: Path

    @property
    def venv(self) -> Path:
        return self.root / "opt" / "connect-bot"


def remap(text: str, root: Path) -> str:
    names = "|".join(re.escape(p) for p in sorted(CONTAINER_PATHS, key=len, reverse=True))
    return re.sub(rf"(?<![\w.-])({names})(?![\w-])", lambda m: f"{root}{m[1]}", text)


def copy_into(sources: list[str], dest: Path, into_dir: bool, rules: list[str]) -> None:
    """COPY from the build context (REPO): folders copy their contents, files keep their name
    when the destination is a folder."""
    for source in sources:
        origin = REPO / source
        assert not ignored(source, rules), f"{source} is excluded by .dockerignore"
        if origin.is_dir():
            for path in origin.rglob("*"):
                if path.is_file() and not ignored(path.relative_to(REPO).as_posix(), rules):
                    target = dest / path.relative_to(origin)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target)
        else:
            target = dest / origin.name if into_dir else dest
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)


def run_step(command: str, root: Path, cwd: Path, env: dict[str, str]) -> None:
    """A RUN step through /bin/sh, as Docker runs the shell form, with paths mapped."""
    subprocess.run(
        ["/bin/sh", "-c", remap(command, root)], cwd=cwd, env=env, check=True, timeout=240
    )


def step_env(stage: Stage, root: Path, python_dir: Path) -> dict[str, str]:
    env = {k: remap(v, root) for k, v in stage.env().items()}
    env["PATH"] = env["PATH"].replace(BASE_PATH, f"{python_dir}:{BASE_PATH}")
    # Keep the machine's index settings (PIP_*), as a build host's pip.conf would apply.
    env.update({k: v for k, v in os.environ.items() if k.startswith("PIP_") or k == "HOME"})
    return env


def replay_stage(stage: Stage, root: Path, python_dir: Path, sibling: Path | None) -> Path:
    """Run the stage's COPY/WORKDIR/RUN steps under `root`; returns its final workdir."""
    rules = dockerignore_rules()
    workdir = root
    env = step_env(stage, root, python_dir)
    for step in stage.steps:
        if step.command == "WORKDIR":
            workdir = Path(remap(step.args, root))
            workdir.mkdir(parents=True, exist_ok=True)
        elif step.command == "COPY" and step.args.startswith("--from=builder "):
            source, dest = step.args.split()[1:]
            assert sibling is not None
            shutil.copytree(Path(remap(source, sibling)), Path(remap(dest, root)))
        elif step.command == "COPY":
            *sources, dest = step.args.split()
            target = Path(remap(dest, root)) if dest.startswith("/") else workdir / dest
            copy_into(sources, target, dest.endswith("/") or len(sources) > 1, rules)
        elif step.command == "RUN" and re.search(r"\bpip\b|\bvenv\b", step.args):
            run_step(step.args, root, workdir, env)
        elif step.command == "RUN":
            # Creating the user and /data needs root on the host: done by the caller instead.
            assert re.search(r"useradd|groupadd|mkdir|chown", step.args), step.args
    return workdir


def python_for(uid: int) -> Path:
    """A Python 3.11+ with venv that `uid` can run (pyenv under /root is not readable by it)."""
    candidates = [Path(sys._base_executable), Path("/usr/bin/python3.11"), Path("/usr/bin/python3")]
    check = "import ensurepip, sys, venv; assert sys.version_info >= (3, 11)"
    for candidate in filter(Path.exists, candidates):
        # Through a shell, as the image's commands run: it resolves the path as `uid` does.
        command = ["/bin/sh", "-c", 'exec "$0" -c "$1"', str(candidate), check]
        if os.geteuid() == 0:
            command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *command]
        if subprocess.run(command, capture_output=True).returncode == 0:
            return candidate
    pytest.skip(f"no Python 3.11+ with venv that uid {uid} can run: cannot replay as non-root")


def as_user(image: Image, argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv  # already not root
    return ["setpriv", f"--reuid={image.uid}", f"--regid={image.gid}", "--clear-groups", *argv]


@pytest.fixture(scope="module")
def image(stages: list[Stage]) -> Iterator[Image]:
    if os.environ.get("BOT_SKIP_INSTALL_TEST") == "1":
        pytest.skip("BOT_SKIP_INSTALL_TEST=1")
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot run the image's non-root user")
    builder, final = stages
    uid, _, gid = final.one("USER").args.partition(":")
    # mkdtemp is 0700: open it up so the unprivileged user can reach the mapped image.
    scratch = Path(tempfile.mkdtemp(prefix="connect-bot-image-"))
    scratch.chmod(0o755)
    try:
        python = python_for(int(uid))
        bin_dir = scratch / "host-bin"
        bin_dir.mkdir()
        (bin_dir / "python").symlink_to(python)
        replay_stage(builder, scratch / "builder", bin_dir, None)
        root = scratch / "image"
        workdir = replay_stage(final, root, bin_dir, scratch / "builder")
        if os.geteuid() == 0:  # the image's `chown connect-bot:connect-bot /data`
            os.chown(workdir, int(uid), int(gid))
        env = {k: remap(v, root) for k, v in final.env().items()}
        env.update(LANG="C.UTF-8", HOME=str(workdir))  # HOME: the user's home is /data
        yield Image(root, env, int(uid), int(gid), workdir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_in_image(image: Image, argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        as_user(image, argv),
        cwd=image.workdir,
        env={**image.env, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@skip_install
@pytest.mark.timeout(400)
def test_installed_image_has_the_command_and_only_its_own_packages(image: Image) -> None:
    result = run_in_image(image, ["connect-bot", "--help"])
    assert result.returncode == 0, result.stderr
    assert "Usage: connect-bot" in result.stdout and "check" in result.stdout
    probe_imports = "import psycopg, slack_bolt, sqlalchemy, bot.check, bot.logs\n" + (
        "import importlib.util as u; assert u.find_spec('pytest') is None"
    )
    result = run_in_image(image, ["python", "-c", probe_imports])
    assert result.returncode == 0, result.stderr
    # The code is root's: the bot's user cannot change it.
    if os.geteuid() == 0:  # as root the replay can drop to the image's uid; else it runs as us
        result = run_in_image(image, ["python", "-c", f"open('{image.venv}/probe', 'w')"])
        assert result.returncode != 0 and "Permission denied" in result.stderr


@skip_install
@pytest.mark.timeout(400)
def test_installed_image_checks_a_configuration_as_non_root(image: Image) -> None:
    with (
        FakeConnect(api_keys={ADMIN_KEY: "administrator"}) as connect,
        FakeSlack(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET) as slack,
    ):
        connect.start()
        slack.start()
        config = {
            "CONNECT_SERVER": connect.url,
            "CONNECT_API_KEY": ADMIN_KEY,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "BOT_ADMIN_USERS": "U0ADMIN1",
        }
        good = run_in_image(image, ["connect-bot", "check"], **config)
        bad = run_in_image(
            image, ["connect-bot", "check"], **{**config, "CONNECT_API_KEY": "x" * 12}
        )
    assert good.returncode == 0, good.stdout + good.stderr
    assert f"database {image.workdir}/connect-bot.db does not exist yet" in good.stdout
    assert "Ready to run `connect-bot serve`" in good.stdout
    assert "SQLite allows one bot process" in good.stdout  # the image's default database
    assert bad.returncode == 1 and "the key is not valid" in bad.stdout
    for secret in (ADMIN_KEY, BOT_TOKEN, SIGNING_SECRET):
        assert secret not in good.stdout + good.stderr + bad.stdout + bad.stderr


def test_lock_file_pins_every_declared_dependency() -> None:
    """`make lock` regenerates requirements.lock; a dependency added to pyproject.toml without
    it would be missing from the image."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["postgres"]]
    lock = (REPO / "requirements.lock").read_text()
    pinned = {
        canonicalize_name(m[1]): m[2]
        for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", lock, re.M)
    }
    for line in declared:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pinned[name]), f"{name}=={pinned[name]}: {line}"
    assert all("--hash=sha256:" in block for block in lock.split("==")[1:])
