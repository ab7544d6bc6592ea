"""Seed data for the fake Posit Connect server.

Content items follow the shape recorded from real servers (reference section 3.2). The server fills
in the URL fields (`content_url`, `dashboard_url`) because they depend on its own address.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# The documented off-host example image (rsconnect docs, reference section 1.3).
OFF_HOST_IMAGE = "rstudio/content-base:r3.6.3-py3.9.5-jammy"

# Deterministic guids: demos and screenshots stay stable across runs.
_NAMESPACE = uuid.UUID("5f0c3d2e-8a4b-4c1d-9e7f-0a1b2c3d4e5f")

# app_mode -> runtime language it needs ("R", "Python" or None for plain static content).
APP_MODE_LANGUAGE: dict[str, str | None] = {
    "shiny": "R",
    "rmd-shiny": "R",
    "rmd-static": "R",
    "api": "R",
    "quarto-shiny": "R",
    "quarto-static": "Python",
    "python-dash": "Python",
    "python-streamlit": "Python",
    "python-fastapi": "Python",
    "python-api": "Python",
    "python-shiny": "Python",
    "python-bokeh": "Python",
    "jupyter-static": "Python",
    "static": None,
    "unknown": None,
}

QUARTO_VERSION = "1.4.550"


@dataclass
class Seed:
    """Initial server state: runtime caches, content items and the users owning the content
    (`owners`: guid, username, first_name, last_name, email, optionally user_role), and the
    packages their bundles use (`packages`: rows made by `make_package`)."""

    caches: list[dict[str, str]]
    content: list[dict[str, Any]]
    owners: list[dict[str, str]] = field(default_factory=list)
    packages: list[dict[str, Any]] = field(default_factory=list)


def rfc3339(moment: datetime) -> str:
    """Connect's timestamp format: second precision, UTC, `Z` suffix."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_cache(language: str, version: str, image_name: str = "Local") -> dict[str, str]:
    return {"language": language, "version": version, "image_name": image_name}


def make_content_item(**fields: Any) -> dict[str, Any]:
    """A complete v1 content item (keys in the order a real server sends them).

    Unknown keys are kept, so callers can add fields newer servers return. Unpublished items
    (`bundle_id=None`) get `app_mode="unknown"` and no runtime versions unless given explicitly.
    """
    guid = str(fields.pop("guid", None) or uuid.uuid4())
    title = fields.pop("title", None) or "Untitled"
    published = fields.get("bundle_id", "1") is not None
    app_mode = fields.pop("app_mode", None) or ("shiny" if published else "unknown")
    created = fields.pop("created_time", None) or rfc3339(datetime.now(UTC))
    name = fields.pop("name", None) or _slug(title)
    item: dict[str, Any] = {
        "guid": guid,
        "name": name,
        "title": title,
        "description": "",
        "access_type": "acl",
        "locked": False,
        "locked_message": "",
        "connection_timeout": None,
        "read_timeout": None,
        "init_timeout": None,
        "idle_timeout": None,
        "max_processes": None,
        "min_processes": None,
        "max_conns_per_process": None,
        "load_factor": None,
        "memory_request": None,
        "memory_limit": None,
        "cpu_request": None,
        "cpu_limit": None,
        "amd_gpu_limit": None,
        "nvidia_gpu_limit": None,
        "service_account_name": None,
        "default_image_name": None,
        "default_environment_guid": None,
        "created_time": created,
        "last_deployed_time": created,
        "bundle_id": "1",
        "app_mode": app_mode,
        "content_category": "",
        "parameterized": False,
        "environment_guid": None,
        "cluster_name": "Local",
        "image_name": None,
        "r_version": None,
        "py_version": None,
        "quarto_version": None,
        "r_environment_management": None,
        "default_r_environment_management": None,
        "py_environment_management": None,
        "default_py_environment_management": None,
        "run_as": None,
        "run_as_current_user": False,
        "owner_guid": DEMO_OWNERS[0]["guid"],
        "content_url": None,
        "dashboard_url": None,
        "app_role": "owner",
        "id": "1",
        "public_content_status": "unrestricted",
    }
    item.update(fields)
    item["bundle_id"] = None if item["bundle_id"] is None else str(item["bundle_id"])
    item["id"] = str(item["id"])
    if item["r_version"] is not None and item["r_environment_management"] is None:
        item["r_environment_management"] = True
    if item["py_version"] is not None and item["py_environment_management"] is None:
        item["py_environment_management"] = True
    return item


def make_package(
    item: dict[str, Any],
    name: str,
    version: str,
    *,
    bundle_id: str | None = None,
    language_version: str | None = None,
) -> dict[str, Any]:
    """A package row for `GET v1/packages`: `item`'s bundle (its active one unless given)
    depends on `name`. The language is the item's runtime (Python if it has one, else R)."""
    language = "python" if item.get("py_version") else "r"
    runtime = item.get("py_version") if language == "python" else item.get("r_version")
    return {
        "language": language,
        "language_version": language_version or runtime or "",
        "name": name,
        "version": version,
        "hash": None if language == "python" else uuid.uuid5(_NAMESPACE, name + version).hex,
        "bundle_id": str(bundle_id or item["bundle_id"]),
        "content_guid": item["guid"],
    }


def _slug(title: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in title.lower())
    return "-".join(part for part in cleaned.split("-") if part)[:64] or "content"


DEMO_OWNERS: list[dict[str, str]] = [
    {
        "guid": "20a79ce3-6e87-4522-9faf-be24228800a4",
        "username": "publisher1",
        "first_name": "Pat",
        "last_name": "Publisher",
        "email": "publisher1@connect.example",
    },
    {
        "guid": "820f092f-d564-4ab5-819a-0f4d2f03d11e",
        "username": "admin",
        "first_name": "admin1",
        "last_name": "",
        "email": "admin@connect.example",
        "user_role": "administrator",
    },
]

# (title, app_mode, r_version, py_version, published, off-host image or None, access_type)
_DEMO_ITEMS: list[tuple[str, str, str | None, str | None, bool, str | None, str]] = [
    ("Sales Dashboard", "shiny", "4.3.0", None, True, None, "acl"),
    ("<!channel> Sales & <Ops>", "python-dash", None, "3.11.3", True, None, "logged_in"),
    ("Churn Prediction API", "python-fastapi", None, "3.11.3", True, None, "acl"),
    ("Forecast Explorer", "python-streamlit", None, "3.9.5", True, None, "logged_in"),
    ("Plumber Scoring API", "api", "4.2.1", None, True, None, "acl"),
    ("Ops Monitor", "python-shiny", None, "3.11.3", True, None, "acl"),
    ("Inventory Explorer", "rmd-shiny", "4.2.1", None, True, None, "acl"),
    ("Quarterly Report", "rmd-static", "4.3.0", None, True, None, "logged_in"),
    ("Quarto Metrics Digest", "quarto-static", None, "3.11.3", True, None, "acl"),
    ("Notebook: Cohort Analysis", "jupyter-static", None, "3.9.5", True, None, "acl"),
    ("Team Landing Page", "static", None, None, True, None, "all"),
    ("Legacy Model Dashboard", "python-dash", None, "3.9.5", True, OFF_HOST_IMAGE, "acl"),
    ("Legacy Finance Report", "rmd-static", "3.6.3", None, True, OFF_HOST_IMAGE, "acl"),
    ("Executive KPIs", "shiny", "4.3.0", None, True, None, "acl"),
    ("Draft: Pricing Simulator", "unknown", None, None, False, None, "acl"),
    ("Scratch API (never deployed)", "unknown", None, None, False, None, "acl"),
]


# Packages of the demo items' active bundles: title -> (name, version)...
_DEMO_PACKAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "Sales Dashboard": (("shiny", "1.8.0"), ("sf", "1.0-15")),
    "Executive KPIs": (("shiny", "1.8.0"), ("sf", "1.0-16")),
    "Legacy Finance Report": (("rmarkdown", "2.11"), ("sf", "0.9-8")),
    "Inventory Explorer": (("shiny", "1.7.5"),),
    "Plumber Scoring API": (("plumber", "1.2.1"),),
    "Churn Prediction API": (("fastapi", "0.110.0"), ("numpy", "1.26.4")),
    "Forecast Explorer": (("numpy", "1.24.4"), ("streamlit", "1.31.0")),
    "Legacy Model Dashboard": (("dash", "2.0.0"), ("numpy", "1.21.6")),
    "Ops Monitor": (("shiny", "0.7.1"), ("typing_extensions", "4.9.0")),
}
# Packages only an older bundle of an item used (`bundle_id` = active one - 5): not in use.
_DEMO_OLD_PACKAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "Inventory Explorer": (("sf", "1.0-12"),),
}


def _demo_packages(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_title = {item["title"]: item for item in content}
    rows = [
        make_package(by_title[title], name, version)
        for title, packages in _DEMO_PACKAGES.items()
        for name, version in packages
    ]
    for title, packages in _DEMO_OLD_PACKAGES.items():
        item = by_title[title]
        old_bundle = str(int(item["bundle_id"]) - 5)
        rows.extend(make_package(item, n, v, bundle_id=old_bundle) for n, v in packages)
    return rows


# A published item locked in Connect (no Rebuild button there): in `demo_seed(locked=True)`.
LOCKED_DEMO_TITLE = "Archived: 2023 Board Pack"
LOCKED_DEMO_MESSAGE = "Archived for the audit. Ask *Finance* before changing it."


def demo_seed(*, locked: bool = False) -> Seed:
    """A small, hand-written server: 16 items (14 published) and caches matching their runtimes.

    Python 3.8.10 has a cache but no content uses it (a typical candidate for deletion).
    R `sf` is used by three items (one off-host), and by a fourth only in an old bundle;
    Python `numpy` by three (one off-host).
    `locked`: a 17th item, published on R 4.3.0 and locked (`LOCKED_DEMO_TITLE`).
    """
    caches = [
        make_cache("R", "4.3.0"),
        make_cache("R", "4.2.1"),
        make_cache("Python", "3.11.3"),
        make_cache("Python", "3.9.5"),
        make_cache("Python", "3.8.10"),
        make_cache("R", "3.6.3", OFF_HOST_IMAGE),
        make_cache("Python", "3.9.5", OFF_HOST_IMAGE),
    ]
    base = datetime(2024, 3, 1, 9, 0, 0, tzinfo=UTC)
    content = []
    for index, (title, mode, r_ver, py_ver, published, image, access) in enumerate(_DEMO_ITEMS):
        created = base + timedelta(days=index * 3, hours=index)
        # Deploy times are deliberately not in creation order, so ordering bugs show up.
        deployed = (
            created + timedelta(days=(index * 7) % 40, minutes=index) if published else created
        )
        content.append(
            make_content_item(
                guid=str(uuid.uuid5(_NAMESPACE, title)),
                title=title,
                description=f"Demo content item: {title}",
                access_type=access,
                created_time=rfc3339(created),
                last_deployed_time=rfc3339(deployed),
                bundle_id=str(100 + index * 11) if published else None,
                app_mode=mode,
                r_version=r_ver,
                py_version=py_ver,
                quarto_version=QUARTO_VERSION if mode.startswith("quarto") else None,
                cluster_name="Kubernetes" if image else "Local",
                image_name=image,
                owner_guid=DEMO_OWNERS[index % 2]["guid"],
                app_role="owner" if index % 2 else "editor",
                id=str(8200 + index),
            )
        )
    if locked:
        content.append(
            make_content_item(
                guid=str(uuid.uuid5(_NAMESPACE, LOCKED_DEMO_TITLE)),
                title=LOCKED_DEMO_TITLE,
                description=f"Demo content item: {LOCKED_DEMO_TITLE}",
                locked=True,
                locked_message=LOCKED_DEMO_MESSAGE,
                created_time=rfc3339(base - timedelta(days=400)),
                last_deployed_time=rfc3339(base - timedelta(days=300)),
                bundle_id="90",
                app_mode="shiny",
                r_version="4.3.0",
                owner_guid=DEMO_OWNERS[0]["guid"],
                id=str(8200 + len(_DEMO_ITEMS)),
            )
        )
    return Seed(
        caches=caches,
        content=content,
        owners=[dict(owner) for owner in DEMO_OWNERS],
        packages=_demo_packages(content),
    )


# Runtimes for generated servers: (language, version, app modes using that runtime).
_GENERATED_RUNTIMES: list[tuple[str, str, tuple[str, ...]]] = [
    ("R", "4.3.0", ("shiny", "rmd-static", "api", "rmd-shiny")),
    ("R", "4.2.1", ("shiny", "rmd-static")),
    ("Python", "3.11.3", ("python-dash", "python-fastapi", "python-shiny", "quarto-static")),
    ("Python", "3.9.5", ("python-streamlit", "jupyter-static", "python-api")),
]


# App modes of items using R and Python (`mixed_share`), by the language of the runtime drawn
# for them, which is the app mode's own language in `APP_MODE_LANGUAGE`: R Markdown or Quarto
# documents and Shiny apps calling Python through reticulate; Quarto documents on Jupyter with R.
_MIXED_MODES: dict[str, tuple[str, ...]] = {
    "R": ("rmd-static", "quarto-shiny", "shiny", "rmd-shiny"),
    "Python": ("quarto-static",),
}

GeneratedRuntime = tuple[str, str, Sequence[str]]  # (language, version, app modes)


def generated_seed(
    n_items: int,
    *,
    seed: int = 0,
    runtimes: Sequence[GeneratedRuntime] | None = None,
    mixed_share: float = 0.0,
) -> Seed:
    """`n_items` published items spread over four runtimes and a dozen content types.

    Deterministic for a given `seed`, for benchmarks (500 and 10,000 items).
    `runtimes`: (language "R"/"Python", version, app modes) to draw from instead of the four
    default ones; every one gets a cache (Local). `mixed_share`: that share of the items (rounded,
    chosen by the seed) use R and Python: each keeps the runtime drawn for it, gets a mode of that
    language from `_MIXED_MODES` and a version of the other language drawn from `runtimes`.
    The other items are the same as without `mixed_share` (its draws use their own RNG).
    """
    if not 0.0 <= mixed_share <= 1.0:
        raise ValueError("mixed_share must be within 0..1")
    choices = list(runtimes) if runtimes is not None else _GENERATED_RUNTIMES
    if not choices:
        raise ValueError("runtimes must not be empty")
    for language, _, modes in choices:
        if language not in _MIXED_MODES or not modes:
            raise ValueError(f"runtime language must be R or Python, with app modes: {language!r}")
    rng = random.Random(seed)
    mixed_rng = random.Random(f"mixed:{seed}")
    n_mixed = round(mixed_share * n_items)
    mixed = set(mixed_rng.sample(range(n_items), n_mixed)) if n_mixed else set()
    versions = {
        language: sorted({v for lang, v, _ in choices if lang == language})
        for language in _MIXED_MODES
    }
    if mixed and not (versions["R"] and versions["Python"]):
        raise ValueError("mixed_share needs at least one R and one Python runtime")
    caches = [make_cache(lang, version) for lang, version, _ in choices]
    base = datetime(2023, 1, 1, tzinfo=UTC)
    content = []
    for index in range(n_items):
        language, version, modes = rng.choice(choices)
        mode = rng.choice(modes)
        created = base + timedelta(seconds=rng.randrange(0, 365 * 86400))
        deployed = created + timedelta(seconds=rng.randrange(0, 180 * 86400))
        guid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        owner = DEMO_OWNERS[index % len(DEMO_OWNERS)]
        r_version = version if language == "R" else None
        py_version = version if language == "Python" else None
        if index in mixed:
            mode = mixed_rng.choice(_MIXED_MODES[language])
            if language == "R":
                py_version = mixed_rng.choice(versions["Python"])
            else:
                r_version = mixed_rng.choice(versions["R"])
        content.append(
            make_content_item(
                guid=guid,
                name=f"content-{index:05d}",
                title=f"{mode} item {index}",
                created_time=rfc3339(created),
                last_deployed_time=rfc3339(deployed),
                bundle_id=str(1000 + index),
                app_mode=mode,
                r_version=r_version,
                py_version=py_version,
                quarto_version=QUARTO_VERSION if mode.startswith("quarto") else None,
                owner_guid=owner["guid"],
                id=str(10000 + index),
            )
        )
    return Seed(caches=caches, content=content, owners=[dict(owner) for owner in DEMO_OWNERS])


def long_tailed_durations(
    guids: Sequence[str],
    *,
    seed: int = 1,
    base: float = 1.0,
    jitter: float = 0.2,
    tail_share: float = 0.05,
    tail_factor: float = 8.0,
) -> dict[str, float]:
    """Build durations (seconds) for `FakeConnect.set_build_durations`, deterministic by seed.

    Each item takes `base` x uniform(1 - jitter, 1 + jitter); exactly round(tail_share x n) of
    the n items, chosen by the seeded RNG, take `tail_factor` times that (the long tail).
    Repeated GUIDs count once.
    """
    if base <= 0 or not 0.0 <= jitter < 1.0 or not 0.0 <= tail_share <= 1.0 or tail_factor <= 0:
        raise ValueError("need base > 0, 0 <= jitter < 1, 0 <= tail_share <= 1, tail_factor > 0")
    unique = list(dict.fromkeys(guids))
    rng = random.Random(seed)
    durations = {guid: base * rng.uniform(1.0 - jitter, 1.0 + jitter) for guid in unique}
    for guid in rng.sample(unique, round(tail_share * len(unique))):
        durations[guid] *= tail_factor
    return durations
