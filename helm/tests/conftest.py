"""Shared fixtures of the chart and image tests: the chart, a renderer that
returns Kubernetes objects, and the value sets every chart test runs over."""

from __future__ import annotations

import copy
from pathlib import Path

import helm_python as helm
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "helm" / "idmesh"
RELEASE = "idm"
NAMESPACE = "scim"

# The modules this directory must contribute tests from: a module whose
# tests all disappeared (renamed, skipped at import) fails the run instead of
# leaving pytest to pass with fewer tests.
EXPECTED_MODULES = {"test_chart.py", "test_schema.py", "test_image.py"}


def pytest_collection_modifyitems(session, config, items):
    collected = {Path(item.fspath).name for item in items}
    missing = EXPECTED_MODULES - collected
    if missing and not config.getoption("-k") and not config.getoption("--deselect"):
        raise pytest.UsageError(f"no tests collected from {sorted(missing)}")


def deep_merge(base: dict, override: dict) -> dict:
    """`override` over `base`, as Helm merges several -f files."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def values_file(name: str) -> dict:
    return yaml.safe_load((CHART_DIR / name).read_text())


# Peers the NetworkPolicy values point at, so that the edge test can name them.
DATABASE_PEER = {"ipBlock": {"cidr": "10.20.0.0/24"}}
REDIS_PEER = {"ipBlock": {"cidr": "10.30.0.0/24"}}
COLLECTOR_PEER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}
OTLP_ENDPOINT = "http://otel-collector.observability:4317"

# The least a user must give for the default (one Deployment per component).
MINIMAL = {"externalDatabase": {"host": "postgres.db.svc", "password": "pw-in-values"}}
NETWORK = {
    "networkPolicy": {
        "enabled": True,
        "database": {"to": [DATABASE_PEER]},
        "redis": {"to": [REDIS_PEER]},
    }
}
EVERYTHING_ON = deep_merge(
    NETWORK,
    {
        "externalDatabase": {"host": "postgres.db.svc", "existingSecret": "db", "existingSecretPasswordKey": "password"},
        "externalRedis": {"url": "redis://redis.cache.svc:6379", "existingSecret": "redis", "existingSecretPasswordKey": "password"},
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "grafanaDashboard": {"enabled": True},
        "tracing": {"otlpEndpoint": OTLP_ENDPOINT},
        "networkPolicy": {"otlpCollector": {"to": [COLLECTOR_PEER]}},
        **{
            component: {"pdb": {"enabled": True}, "autoscaling": {"enabled": True}}
            for component in ("gateway", "directories", "users", "groups", "sessions", "roles", "events")
        },
    },
)
ELSEWHERE = {
    "directories": "directories.other.svc:50051",
    "users": "users.other.svc:50052",
    "groups": "groups.other.svc:50054",
    "sessions": "sessions.other.svc:50053",
}


def _matrix() -> dict[str, dict]:
    matrix = {
        "minimal": MINIMAL,
        "ha": deep_merge(values_file("values-ha.yaml"), MINIMAL),
        "ha-everything-on": deep_merge(values_file("values-ha.yaml"), EVERYTHING_ON),
        "all-in-one": {"allInOne": {"enabled": True}},
        "all-in-one-without-roles": {"allInOne": {"enabled": True}, "roles": {"enabled": False}},
        "all-in-one-without-events": {"allInOne": {"enabled": True}, "events": {"enabled": False}},
        "all-in-one-persistent": {"allInOne": {"enabled": True, "persistence": {"enabled": True, "storageClass": "ssd"}}},
        "all-in-one-everything-on": deep_merge(
            EVERYTHING_ON,
            {"allInOne": {"enabled": True, "replicas": 2, "pdb": {"enabled": True}}},
        ),
        "external-secrets-url": {
            "externalDatabase": {"existingSecret": "db", "existingSecretUrlKey": "url"},
            "externalRedis": {"existingSecret": "redis", "existingSecretUrlKey": "url"},
            "sessions": {"replicas": 3},
        },
        "external-secrets-password": {
            "externalDatabase": {"host": "pg", "existingSecret": "db", "existingSecretPasswordKey": "pw"},
            "externalRedis": {"url": "redis+cluster://r1:6379,r2:6379", "existingSecret": "redis", "existingSecretPasswordKey": "pw"},
        },
        "inline-url": {"externalDatabase": {"url": "postgres://idmesh:pw-in-url@pg:5432/idmesh"}},
        "everything-on": EVERYTHING_ON,
        "metrics-off": deep_merge(MINIMAL, {"metrics": {"enabled": False}}),
        "ipv6": deep_merge(MINIMAL, {"listenAddress": "::", "podAntiAffinity": "soft"}),
    }
    for component in ("gateway", "directories", "users", "groups", "sessions", "roles", "events"):
        off = {component: {"enabled": False}}
        if component in ELSEWHERE:
            off[component]["addressOverride"] = ELSEWHERE[component]
        matrix[f"{component}-off"] = deep_merge(EVERYTHING_ON, off)
    return matrix


MATRIX = _matrix()


@pytest.fixture(scope="session")
def chart():
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


def parse(rendered: dict[str, str]) -> list[dict]:
    objects = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def render_objects(chart, values: dict) -> list[dict]:
    return parse(chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True))


@pytest.fixture(scope="session")
def rendered(chart) -> dict[str, list[dict]]:
    """Every value set of the matrix, rendered once."""
    return {name: render_objects(chart, values) for name, values in MATRIX.items()}
