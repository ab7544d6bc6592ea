"""deploy/compose.yaml (also against the Compose specification's schema) and deploy/kubernetes/,
checked without Docker or a cluster.

Both parse as YAML and say what the README promises: two replicas on PostgreSQL, health on
/healthz and readiness on /readyz, the image's non-root user, a rolling update that never drops
below the wanted replicas. The Kubernetes objects are also validated (strictly: no unknown
field) against the API's schema by `kubernetes-validate`.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate as validator
import pytest
import yaml

from bot.services.rebuilds.leases import DRAIN_SECONDS
from bot.slack.background import BackgroundLoop

# The longest SIGTERM takes: the reporter's Slack post under way, the build requests under way,
# then the rest of close (a few seconds).
STOP_SECONDS = BackgroundLoop.CLOSE_SECONDS + DRAIN_SECONDS + 10

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "deploy" / "compose.yaml"
# The Compose specification's JSON schema, vendored from github.com/compose-spec/compose-spec
# (schema/compose-spec.json, Apache-2.0): Compose v2 is not installed where the tests run.
COMPOSE_SCHEMA = REPO / "tests" / "data" / "compose-spec.json"
README = REPO / "README.md"
DOCKERFILE = REPO / "Dockerfile"


# ------------------------------------------------------------------ what the image says


def dockerfile_lines() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    lines, pending = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    return lines


def instruction(name: str) -> str:
    (args,) = [line.split(None, 1)[1] for line in dockerfile_lines() if line.startswith(name + " ")]
    return args


def image_user() -> tuple[int, int]:
    uid, _, gid = instruction("USER").partition(":")
    return int(uid), int(gid)


def image_port() -> int:
    return int(instruction("EXPOSE"))


def image_healthcheck() -> list[str]:
    health = instruction("HEALTHCHECK")
    return list(json.loads(health[health.index("CMD") + 3 :]))


# ------------------------------------------------------------------ deploy/compose.yaml


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_compose_has_postgres_16_with_a_healthcheck_and_a_volume(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    # The image may be chosen (POSTGRES_IMAGE); the default is the official PostgreSQL 16.
    image = re.fullmatch(r"\$\{POSTGRES_IMAGE:-([^}]+)\}", postgres["image"])
    assert image, postgres["image"]
    assert re.fullmatch(r"postgres:16(\.\d+)?(-\w+)?", image[1])
    env = environment(postgres)
    assert env["POSTGRES_USER"] == "connect_bot" and env["POSTGRES_DB"] == "connect_bot"
    assert env["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")  # required, no default
    test = postgres["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL" and "pg_isready -U connect_bot -d connect_bot" in test[1]
    (volume,) = postgres["volumes"]
    name, _, target = volume.partition(":")
    assert target == "/var/lib/postgresql/data"
    assert name in compose["volumes"]  # a named volume: the data outlives the container


def test_compose_runs_two_bot_replicas_built_from_the_repository(
    compose: dict[str, Any],
) -> None:
    bot = compose["services"]["bot"]
    context = (COMPOSE.parent / bot["build"]["context"]).resolve()
    assert context == REPO and (context / "Dockerfile").exists()
    # The base image may be chosen (PYTHON_IMAGE); the default is the Dockerfile's own.
    default = instruction("ARG").removeprefix("PYTHON_IMAGE=")
    assert bot["build"]["args"] == {"PYTHON_IMAGE": f"${{PYTHON_IMAGE:-{default}}}"}
    assert bot["deploy"]["replicas"] == 2
    # Replicas cannot share a container name or a fixed host port.
    assert "container_name" not in bot
    for port in bot.get("ports", []):
        assert ":" not in str(port), port
    assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_bot_settings_come_from_env_and_point_at_postgres(
    compose: dict[str, Any],
) -> None:
    bot = compose["services"]["bot"]
    env_files = bot["env_file"] if isinstance(bot["env_file"], list) else [bot["env_file"]]
    assert env_files == [".env"]
    url = environment(bot)["BOT_DATABASE_URL"]
    match = re.fullmatch(
        r"postgresql://connect_bot:(\$\{POSTGRES_PASSWORD[^}]*\})@postgres/(\w+)", url
    )
    assert match, url
    assert match[2] == environment(compose["services"]["postgres"])["POSTGRES_DB"]
    # deploy/.env holds secrets: it must never reach the image's build context.
    rules = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()]
    assert "**/.env" in rules


def compose_schema_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    assert compose_schema_errors(compose) == []


def test_compose_schema_check_catches_a_misspelt_field(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["bot"]["healthcheck"]["intervall"] = "5s"
    broken["services"]["bot"]["build"]["args"] = ["PYTHON_IMAGE"]  # a list of names is valid
    errors = compose_schema_errors(broken)
    assert len(errors) == 1 and "intervall" in errors[0], errors


def test_compose_bot_healthcheck_is_the_images(compose: dict[str, Any]) -> None:
    health = compose["services"]["bot"]["healthcheck"]
    assert health["test"] == ["CMD", *image_healthcheck()]
    grace = re.fullmatch(r"(\d+)s", compose["services"]["bot"]["stop_grace_period"])
    assert grace and int(grace[1]) >= STOP_SECONDS  # the longest stop


# ------------------------------------------------------------------ README: Kubernetes


def readme_section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n### {title}\n")
    end = text.find("\n### ", start + 1)
    return text[start : end if end != -1 else len(text)]


def fenced(section: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", section, flags=re.DOTALL | re.MULTILINE)


KUBERNETES = REPO / "deploy" / "kubernetes"


@pytest.fixture(scope="module")
def kubernetes() -> dict[str, dict[str, Any]]:
    """The objects `kubectl apply -k deploy/kubernetes` creates, by kind."""
    listed = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(
        p.name for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml"
    )
    documents = [
        d for name in listed for d in yaml.safe_load_all((KUBERNETES / name).read_text()) if d
    ]
    kinds = {d["kind"]: d for d in documents}
    assert sorted(kinds) == ["Deployment", "PodDisruptionBudget", "Service"]
    assert len(documents) == 3
    return kinds


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def named_port(spec: dict[str, Any], port: str | int) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in spec.get("ports", []) if p.get("name") == port]
    return int(number)


def secret_command() -> tuple[str, dict[str, str]]:
    (block,) = fenced(readme_section("Kubernetes"), "sh")
    words = shlex.split(block.replace("\\\n", " "))
    assert words[:4] == ["kubectl", "create", "secret", "generic"]
    literals = dict(
        w.removeprefix("--from-literal=").split("=", 1)
        for w in words
        if w.startswith("--from-literal=")
    )
    return words[4], literals


def test_deployment_two_replicas_rolling_without_dropping_one(
    kubernetes: dict[str, dict[str, Any]],
) -> None:
    deployment = kubernetes["Deployment"]
    assert deployment["apiVersion"] == "apps/v1"
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] >= STOP_SECONDS


def test_deployment_runs_as_the_images_non_root_user(
    kubernetes: dict[str, dict[str, Any]],
) -> None:
    pod = kubernetes["Deployment"]["spec"]["template"]["spec"]
    uid, gid = image_user()
    context = pod["securityContext"]
    assert context["runAsNonRoot"] is True
    assert (context["runAsUser"], context["runAsGroup"]) == (uid, gid)
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    bot = container(kubernetes["Deployment"])
    assert bot["securityContext"]["allowPrivilegeEscalation"] is False
    assert bot["securityContext"]["readOnlyRootFilesystem"] is True
    # What the bot writes (the SQLite default, temporary files) lands on volumes.
    mounts = {m["mountPath"] for m in bot["volumeMounts"]}
    assert mounts == {"/data", "/tmp"}


def test_deployment_image_tag_is_pinned(kubernetes: dict[str, dict[str, Any]]) -> None:
    image = container(kubernetes["Deployment"])["image"]
    tag = image.rpartition(":")[2]
    assert "/" not in tag and tag not in ("", "latest"), image


def test_disruption_budget_keeps_a_replica_through_a_drain(
    kubernetes: dict[str, dict[str, Any]],
) -> None:
    budget = kubernetes["PodDisruptionBudget"]
    labels = kubernetes["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["maxUnavailable"] < kubernetes["Deployment"]["spec"]["replicas"]


def test_deployment_probes_health_and_readiness_on_their_own_port(
    kubernetes: dict[str, dict[str, Any]],
) -> None:
    """Slack on the image's port; the probes on BOT_HEALTH_PORT, where slow clients of the
    public port cannot delay them (issue 17)."""
    bot = container(kubernetes["Deployment"])
    env = {e["name"]: e.get("value") for e in bot["env"]}
    health = int(env["BOT_HEALTH_PORT"])
    assert sorted(p["containerPort"] for p in bot["ports"]) == sorted([image_port(), health])
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = bot[probe]["httpGet"]
        assert get["path"] == path, probe
        assert named_port(bot, get["port"]) == health, probe
    startup = bot["startupProbe"]["httpGet"]  # slow starts (migrations) are not killed
    assert startup["path"] == "/healthz" and named_port(bot, startup["port"]) == health


def test_deployment_secrets_come_from_the_secret_the_readme_creates(
    kubernetes: dict[str, dict[str, Any]],
) -> None:
    bot = container(kubernetes["Deployment"])
    name, literals = secret_command()
    assert [source["secretRef"]["name"] for source in bot["envFrom"]] == [name]
    for key in ("CONNECT_API_KEY", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "BOT_DATABASE_URL"):
        assert key in literals, key
    assert re.fullmatch(
        r"postgresql://connect_bot:PASSWORD@[\w.-]+/connect_bot", literals["BOT_DATABASE_URL"]
    )
    assert "`SLACK_SIGNING_SECRET` instead of\n`SLACK_APP_TOKEN`" in readme_section("Kubernetes")
    # No secret in plain env: only settings that are not secrets.
    plain = {entry["name"] for entry in bot.get("env", [])}
    assert not plain & {*literals, "SLACK_SIGNING_SECRET"}
    assert all("value" in entry for entry in bot.get("env", []))


def test_service_for_http_mode_reaches_the_pods(kubernetes: dict[str, dict[str, Any]]) -> None:
    service = kubernetes["Service"]
    deployment = kubernetes["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert named_port(container(deployment), port["targetPort"]) == image_port()


def test_kubernetes_objects_match_the_api_schema(kubernetes: dict[str, dict[str, Any]]) -> None:
    version = validator.latest_version()
    for document in kubernetes.values():
        validator.validate(document, version, strict=True)


def test_kubernetes_schema_check_catches_a_misspelt_field(
    kubernetes: dict[str, dict[str, Any]],
) -> None:
    broken = json.loads(json.dumps(kubernetes["Deployment"]))
    broken["spec"]["strategy"]["rollingUpdate"]["maxSurges"] = 1
    with pytest.raises(validator.ValidationError):
        validator.validate(broken, validator.latest_version(), strict=True)


# ------------------------------------------------------------------ README: Docker


def test_readme_docker_section_names_what_make_image_test_runs() -> None:
    """The commands the README shows are the ones tests/image runs (kept in step)."""

    def flat(text: str) -> str:  # continuation lines joined, runs of spaces as one
        return " ".join(text.replace("\\\n", " ").split())

    section = flat(readme_section("Docker"))
    script = flat((REPO / "tests" / "image" / "run.sh").read_text())
    scenarios = (REPO / "tests" / "image" / "scenarios.py").read_text()
    assert "make image-test" in section
    for fragment in (
        "--iptables=false --ip6tables=false --bridge=none --storage-driver=overlay2",
        "debootstrap --variant=minbase bookworm",
        "docker build --network host --build-arg PYTHON_IMAGE=local/python:3.11",
        "-f tests/image/postgres.Dockerfile tests/image",
        "BOT_TEST_DOCKER=1",
    ):
        assert fragment in section, fragment
        assert fragment in script, fragment
    for option in ("--network", "--read-only", "--tmpfs", "/tmp", "--health-interval=1s"):
        assert option in section and f'"{option}' in scenarios, option
    assert "BOT_TEST_DOCKER=1 make image-test" in (REPO / ".ci" / "run").read_text()
