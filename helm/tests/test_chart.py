"""The chart, rendered offline over a matrix of values (conftest.MATRIX):
lint, Kubernetes schema validation, and what every rendered object must
satisfy: probes, resources and a hardened security context on every
container, peers that resolve, and a NetworkPolicy with exactly the design's
edges."""

from __future__ import annotations

import base64
import json
import re

import helm_python as helm
import kubernetes_validate.utils as kv
import pytest
import yaml

from conftest import (
    CHART_DIR,
    COLLECTOR_PEER,
    DATABASE_PEER,
    ELSEWHERE,
    EVERYTHING_ON,
    MATRIX,
    MINIMAL,
    NAMESPACE,
    OTLP_ENDPOINT,
    REDIS_PEER,
    RELEASE,
    REPO,
    deep_merge,
    render_objects,
    values_file,
)

FULLNAME = f"{RELEASE}-idmesh"
DASHBOARD = CHART_DIR / "dashboards" / "idmesh.json"
COMPONENTS = ("gateway", "directories", "users", "groups", "sessions", "roles", "events")
DEFAULTS = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
PORTS = DEFAULTS["ports"]

# The oldest and newest Kubernetes the chart supports: Chart.yaml's
# kubeVersion floor, and the newest release kubernetes-validate has schemas
# for.
OLDEST, NEWEST = "1.27.0", "1.37.0"

# Kinds without a schema in kubernetes-validate (prometheus-operator CRDs);
# every other kind must validate.
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}


def kind(objects, name):
    return [o for o in objects if o["kind"] == name]


def component_of(obj):
    return obj["metadata"]["labels"]["app.kubernetes.io/component"]


def deployments(objects):
    return {component_of(d): d for d in kind(objects, "Deployment")}


def container(deployment):
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def env_of(deployment):
    return {e["name"]: e for e in container(deployment)["env"]}


# --- lint and Kubernetes schemas ---------------------------------------------


def test_chart_declares_the_supported_kubernetes_versions():
    chart_yaml = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert chart_yaml["kubeVersion"] == f">={OLDEST}-0"
    assert kv.major_minor(NEWEST) == kv.major_minor(kv.latest_version()), "NEWEST: the newest schemas we have"


@pytest.mark.parametrize("name", sorted(MATRIX))
@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_lint_is_clean_in_strict_mode(name, version):
    report = helm.lint(CHART_DIR, MATRIX[name], strict=True, kube_version=f"v{version}", namespace=NAMESPACE)
    # Severity 1 is INFO (Helm's "icon is recommended"); 2 and 3 are
    # warnings and errors, which strict mode fails on.
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


@pytest.mark.parametrize("name", sorted(MATRIX))
@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_every_manifest_validates_strictly(rendered, name, version):
    for obj in rendered[name]:
        ident = f"{obj['kind']}/{obj['metadata']['name']}"
        if (obj["apiVersion"], obj["kind"]) in CRD_KINDS:
            with pytest.raises(kv.SchemaNotFoundError):
                kv.validate(obj, version, strict=True)
            continue
        try:
            kv.validate(obj, version, strict=True)
        except kv.ValidationError as err:
            pytest.fail(f"{name}: {ident} against {version}: {'.'.join(map(str, err.path))}: {err.message}")


# --- every container ---------------------------------------------------------

HARDENED = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_every_container_has_probes_resources_and_a_hardened_security_context(rendered, name):
    assert kind(rendered[name], "Deployment"), "no Deployment rendered"
    for deployment in kind(rendered[name], "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for c in pod["containers"] + pod.get("initContainers", []):
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in c, f"{c['name']} has no {probe}"
            assert {"cpu", "memory"} <= set(c["resources"]["requests"])
            assert "memory" in c["resources"]["limits"]
            assert c["securityContext"] == HARDENED
            # Writable: the data dir and /tmp, both volumes of the pod; the
            # rest are API keys, read-only.
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"] if not m.get("readOnly")}
            assert mounts == {DEFAULTS["dataDir"]: "data", "/tmp": "tmp"}
            assert all(m["mountPath"].startswith("/etc/idmesh/") for m in c["volumeMounts"] if m.get("readOnly"))
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes["tmp"]
        assert "emptyDir" in volumes["data"] or "persistentVolumeClaim" in volumes["data"]


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_probes_use_grpc_health_on_services_and_http_on_the_gateway(rendered, name):
    for component, deployment in deployments(rendered[name]).items():
        c = container(deployment)
        ports = {p["containerPort"] for p in c["ports"]}
        if component in ("gateway", "all-in-one"):
            paths = {p: c[p]["httpGet"]["path"] for p in ("startupProbe", "livenessProbe", "readinessProbe")}
            assert paths == {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
            assert {c[p]["httpGet"]["port"] for p in paths} == {PORTS["http"]}
        else:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert c[probe]["grpc"] == {"port": PORTS[component], "service": ""}
            # NOT_SERVING while the database is down: readiness reacts within
            # seconds, liveness only after much longer.
            window = lambda p: c[p]["periodSeconds"] * c[p]["failureThreshold"]  # noqa: E731
            assert window("livenessProbe") >= 6 * window("readinessProbe")
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            port = (c[probe].get("grpc") or c[probe]["httpGet"])["port"]
            assert port in ports


TARGETS = {component: component for component in COMPONENTS} | {
    "all-in-one": "directories,users,groups,sessions,roles,events,gateway"
}


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_each_deployment_runs_its_targets_with_no_secret_in_arguments(rendered, name):
    for component, deployment in deployments(rendered[name]).items():
        targets = TARGETS[component]
        for optional in ("roles", "events"):
            if component == "all-in-one" and MATRIX[name].get(optional, {}).get("enabled", True) is False:
                targets = targets.replace(f"{optional},", "")
        assert container(deployment)["args"] == ["serve", "--targets", targets]


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_secrets_reach_pods_only_through_secret_references(rendered, name):
    for obj in rendered[name]:
        if obj["kind"] != "Secret":
            text = yaml.safe_dump(obj)
            assert "pw-in-values" not in text and "pw-in-url" not in text, obj["metadata"]["name"]
    for deployment in kind(rendered[name], "Deployment"):
        env = env_of(deployment)
        for var in ("IDMESH_DATABASE_URL", "IDMESH_REDIS_URL", "DATABASE_PASSWORD", "REDIS_PASSWORD"):
            if var not in env:
                continue
            if "valueFrom" in env[var]:
                assert set(env[var]["valueFrom"]) == {"secretKeyRef"}
            else:
                # Composed by Kubernetes from a Secret's password, or a URL
                # without userinfo.
                value = env[var]["value"]
                assert "$(DATABASE_PASSWORD)" in value or "$(REDIS_PASSWORD)" in value or "@" not in value


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_peer_addresses_name_a_rendered_service_port_or_the_override(rendered, name):
    services = {
        (s["metadata"]["name"], p["port"]) for s in kind(rendered[name], "Service") for p in s["spec"]["ports"]
    }
    peers = {
        "IDMESH_DIRECTORY_ADDR": "directories",
        "IDMESH_USER_ADDR": "users",
        "IDMESH_GROUP_ADDR": "groups",
        "IDMESH_SESSION_ADDR": "sessions",
        "IDMESH_ROLE_ADDR": "roles",
        "IDMESH_EVENT_ADDR": "events",
    }
    checked = 0
    for deployment in kind(rendered[name], "Deployment"):
        for var, peer in peers.items():
            value = env_of(deployment).get(var, {}).get("value")
            if value is None:
                continue
            checked += 1
            if MATRIX[name].get(peer, {}).get("enabled", True) is False:
                assert value == ELSEWHERE[peer]
            else:
                host, port = value.rsplit(":", 1)
                assert (host, int(port)) in services and host == f"{FULLNAME}-{peer}"
    if "allInOne" not in MATRIX[name]:
        assert checked, "no peer address rendered"


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_services_select_their_deployments_pods(rendered, name):
    pods = [d["spec"]["template"]["metadata"]["labels"] for d in kind(rendered[name], "Deployment")]
    for service in kind(rendered[name], "Service"):
        selector = service["spec"]["selector"]
        matching = [labels for labels in pods if selector.items() <= labels.items()]
        assert len(matching) == 1, service["metadata"]["name"]


# --- components, all in one, scaling ----------------------------------------


def test_roles_and_events_reach_each_other_only_when_both_run(rendered):
    """Role events: roles follows the log at events, events drains roles'
    outbox. Either one alone runs without the other's address."""
    both = deployments(rendered["everything-on"])
    assert env_of(both["roles"])["IDMESH_EVENT_ADDR"]["value"] == f"{FULLNAME}-events:{PORTS['events']}"
    assert env_of(both["roles"])["IDMESH_SESSION_ADDR"]["value"] == f"{FULLNAME}-sessions:{PORTS['sessions']}"
    assert env_of(both["events"])["IDMESH_ROLE_ADDR"]["value"] == f"{FULLNAME}-roles:{PORTS['roles']}"
    assert "IDMESH_EVENT_ADDR" not in env_of(deployments(rendered["events-off"])["roles"])
    assert "IDMESH_ROLE_ADDR" not in env_of(deployments(rendered["roles-off"])["events"])


@pytest.mark.parametrize("component", COMPONENTS)
def test_a_disabled_component_renders_nothing_of_its_own(rendered, component):
    objects = rendered[f"{component}-off"]
    assert set(deployments(objects)) == set(COMPONENTS) - {component}
    assert f"{FULLNAME}-{component}" not in {o["metadata"]["name"] for o in objects}


def test_all_in_one_is_one_deployment_with_every_port_behind_one_service(rendered):
    objects = rendered["all-in-one"]
    assert set(deployments(objects)) == {"all-in-one"}
    (service,) = kind(objects, "Service")
    assert {p["port"] for p in service["spec"]["ports"]} == set(PORTS.values())
    env = env_of(deployments(objects)["all-in-one"])
    # SQLite in the data dir, sessions in the process: nothing external.
    assert "IDMESH_DATABASE_URL" not in env and "IDMESH_REDIS_URL" not in env
    assert env["IDMESH_ROLE_LISTEN_ADDR"]["value"] == f"0.0.0.0:{PORTS['roles']}"
    assert env["IDMESH_EVENT_LISTEN_ADDR"]["value"] == f"0.0.0.0:{PORTS['events']}"


@pytest.mark.parametrize(
    ("component", "variable", "targets"),
    [
        ("roles", "IDMESH_ROLE_LISTEN_ADDR", "directories,users,groups,sessions,events,gateway"),
        ("events", "IDMESH_EVENT_LISTEN_ADDR", "directories,users,groups,sessions,roles,gateway"),
    ],
)
def test_all_in_one_without_an_optional_component_neither_runs_nor_exposes_it(rendered, component, variable, targets):
    objects = rendered[f"all-in-one-without-{component}"]
    deployment = deployments(objects)["all-in-one"]
    assert container(deployment)["args"] == ["serve", "--targets", targets]
    assert variable not in env_of(deployment)
    (service,) = kind(objects, "Service")
    assert {p["port"] for p in service["spec"]["ports"]} == set(PORTS.values()) - {PORTS[component]}


@pytest.mark.parametrize(
    ("component", "variable"),
    [("roles", "IDMESH_ROLE_LISTEN_ADDR"), ("events", "IDMESH_EVENT_LISTEN_ADDR")],
)
def test_roles_and_events_reach_users_and_groups_at_their_services(rendered, component, variable):
    env = env_of(deployments(rendered["minimal"])[component])
    assert env[variable]["value"] == f"0.0.0.0:{PORTS[component]}"
    assert env["IDMESH_USER_ADDR"]["value"] == f"{FULLNAME}-users:{PORTS['users']}"
    assert env["IDMESH_GROUP_ADDR"]["value"] == f"{FULLNAME}-groups:{PORTS['groups']}"
    assert env["IDMESH_DATABASE_URL"]["value"].startswith("postgres://")


# --- API keys ----------------------------------------------------------------

KEYED = ("gateway", "users", "groups", "sessions", "roles", "events")


def secret_volumes(deployment):
    """The deployment's Secret volumes as {mount path: (secret, {key: path})}."""
    pod = deployment["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in container(deployment)["volumeMounts"]}
    return {
        mounts[v["name"]]: (v["secret"]["secretName"], {i["key"]: i["path"] for i in v["secret"]["items"]})
        for v in pod["volumes"]
        if "secret" in v
    }


def test_each_component_calls_with_its_own_key_which_directories_installs(rendered):
    objects = rendered["minimal"]
    (secret,) = [o for o in kind(objects, "Secret") if o["metadata"]["name"] == f"{FULLNAME}-api-keys"]
    keys = {name: base64.b64decode(value).decode() for name, value in secret["data"].items()}
    assert set(keys) == {"bootstrap-admin", *KEYED}
    assert all(key.startswith("idmk_") and len(key) >= 69 for key in keys.values())
    assert len(set(keys.values())) == len(keys), "every component has a key of its own"
    for component, deployment in deployments(objects).items():
        env = env_of(deployment)
        volumes = secret_volumes(deployment)
        if component == "directories":
            assert volumes["/etc/idmesh/admin"] == (secret["metadata"]["name"], {"bootstrap-admin": "bootstrap-admin"})
            assert volumes["/etc/idmesh/service-keys"] == (secret["metadata"]["name"], {c: c for c in KEYED})
            assert env["IDMESH_SERVICE_KEYS_DIR"]["value"] == "/etc/idmesh/service-keys"
            assert env["IDMESH_BOOTSTRAP_ADMIN_KEY_FILE"]["value"] == "/etc/idmesh/admin/bootstrap-admin"
            # What `kubectl exec … idmesh directory create` calls with.
            assert env["IDMESH_API_KEY_FILE"]["value"] == "/etc/idmesh/admin/bootstrap-admin"
        else:
            assert volumes == {"/etc/idmesh/api-key": (secret["metadata"]["name"], {component: "key"})}
            assert env["IDMESH_API_KEY_FILE"]["value"] == "/etc/idmesh/api-key/key"
            assert "IDMESH_BOOTSTRAP_ADMIN_KEY_FILE" not in env


def test_all_in_one_has_only_the_admin_key(rendered):
    deployment = deployments(rendered["all-in-one"])["all-in-one"]
    assert secret_volumes(deployment) == {
        "/etc/idmesh/admin": (f"{FULLNAME}-api-keys", {"bootstrap-admin": "bootstrap-admin"})
    }
    env = env_of(deployment)
    assert env["IDMESH_BOOTSTRAP_ADMIN_KEY_FILE"]["value"] == env["IDMESH_API_KEY_FILE"]["value"]
    assert "IDMESH_SERVICE_KEYS_DIR" not in env


def test_keys_from_an_existing_secret_are_mounted_and_none_is_created(chart):
    objects = render_objects(chart, deep_merge(MINIMAL, {"apiKeys": {"existingSecret": "our-keys"}}))
    assert not [o for o in kind(objects, "Secret") if o["metadata"]["name"].endswith("api-keys")]
    for deployment in deployments(objects).values():
        assert {name for name, _ in secret_volumes(deployment).values()} == {"our-keys"}


def test_all_in_one_persistence_is_a_claim_and_a_recreate_strategy(rendered):
    objects = rendered["all-in-one-persistent"]
    (claim,) = kind(objects, "PersistentVolumeClaim")
    assert claim["spec"]["storageClassName"] == "ssd"
    deployment = deployments(objects)["all-in-one"]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]


def test_pdbs_and_autoscalers_exist_only_when_enabled(rendered):
    assert not kind(rendered["minimal"], "PodDisruptionBudget")
    assert not kind(rendered["minimal"], "HorizontalPodAutoscaler")
    objects = rendered["everything-on"]
    labels = lambda d: d["spec"]["template"]["metadata"]["labels"]  # noqa: E731
    for deployment in kind(objects, "Deployment"):
        name = deployment["metadata"]["name"]
        (pdb,) = [p for p in kind(objects, "PodDisruptionBudget") if p["metadata"]["name"] == name]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels(deployment).items()
        (hpa,) = [h for h in kind(objects, "HorizontalPodAutoscaler") if h["metadata"]["name"] == name]
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        # The autoscaler owns the replica count.
        assert "replicas" not in deployment["spec"]


def test_replicas_spread_over_zones_and_nodes_by_default(rendered):
    for deployment in kind(rendered["minimal"], "Deployment"):
        constraints = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert [c["topologyKey"] for c in constraints] == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        for c in constraints:
            assert c["whenUnsatisfiable"] == "ScheduleAnyway"
            assert c["labelSelector"]["matchLabels"].items() <= pod_labels.items()


def test_the_ha_overlay_runs_two_replicas_per_component_on_distinct_nodes(rendered):
    objects = rendered["ha"]
    ha = values_file("values-ha.yaml")
    assert ha["externalRedis"]["url"].startswith("redis+cluster://")
    pdbs = {p["metadata"]["name"] for p in kind(objects, "PodDisruptionBudget")}
    for component, deployment in deployments(objects).items():
        spec = deployment["spec"]
        if component == "gateway":
            (hpa,) = [h for h in kind(objects, "HorizontalPodAutoscaler") if h["metadata"]["name"] == deployment["metadata"]["name"]]
            assert hpa["spec"]["minReplicas"] >= 2
        else:
            assert spec["replicas"] >= 2
        assert deployment["metadata"]["name"] in pdbs
        (term,) = spec["template"]["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert term["labelSelector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert env_of(deployments(objects)["sessions"])["IDMESH_REDIS_URL"]["value"] == ha["externalRedis"]["url"]


def test_migrations_run_in_the_services_not_in_a_hook_job(rendered):
    for name, objects in rendered.items():
        assert not kind(objects, "Job"), name
        for obj in objects:
            assert "helm.sh/hook" not in obj["metadata"].get("annotations", {}), name
        # Rolling updates (Kubernetes' default strategy), so old pods serve
        # until new ones have migrated and are ready; only all in one on its
        # ReadWriteOnce volume is recreated.
        for component, deployment in deployments(objects).items():
            persistent = MATRIX[name].get("allInOne", {}).get("persistence", {}).get("enabled", False)
            assert deployment["spec"].get("strategy") == ({"type": "Recreate"} if persistent else None), component


# --- monitoring --------------------------------------------------------------


def test_the_service_monitor_scrapes_every_metrics_port(rendered):
    objects = rendered["everything-on"]
    (monitor,) = kind(objects, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    selector = monitor["spec"]["selector"]["matchLabels"]
    scraped = [s for s in kind(objects, "Service") if selector.items() <= s["metadata"]["labels"].items()]
    assert {component_of(s) for s in scraped} == set(COMPONENTS)
    for service in scraped:
        assert {"name": "metrics", "port": PORTS["metrics"], "targetPort": "metrics", "protocol": "TCP", "appProtocol": "http"} in service["spec"]["ports"]
    for deployment in kind(objects, "Deployment"):
        assert env_of(deployment)["IDMESH_METRICS_ADDR"]["value"] == f"0.0.0.0:{PORTS['metrics']}"


def test_the_prometheus_rule_alerts_on_revocation_and_event_outbox_age_webhooks_5xx_and_429(rendered):
    (rule,) = kind(rendered["everything-on"], "PrometheusRule")
    alerts = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}
    assert set(alerts) == {
        "IdmeshRevocationBacklogStale",
        "IdmeshEventOutboxStale",
        "IdmeshWebhookFailing",
        "IdmeshWebhookDisabled",
        "IdmeshGatewayServerErrors",
        "IdmeshGatewayRateLimited",
    }
    assert re.fullmatch(r"max\(idmesh_session_revocation_oldest_seconds\{[^}]*\}\) > 60", alerts["IdmeshRevocationBacklogStale"]["expr"])
    assert re.fullmatch(r"max\(idmesh_event_outbox_oldest_seconds\{[^}]*\}\) > 300", alerts["IdmeshEventOutboxStale"]["expr"])
    assert re.fullmatch(r"max\(idmesh_webhooks_failing\{[^}]*\}\) > 0", alerts["IdmeshWebhookFailing"]["expr"])
    assert alerts["IdmeshWebhookFailing"]["for"] == "30m"
    assert re.fullmatch(r"max\(idmesh_webhooks_disabled\{[^}]*\}\) > 0", alerts["IdmeshWebhookDisabled"]["expr"])
    assert 'status=~"5.."' in alerts["IdmeshGatewayServerErrors"]["expr"]
    assert 'status="429"' in alerts["IdmeshGatewayRateLimited"]["expr"]
    for alert in alerts.values():
        assert "idmesh_" in alert["expr"] and f'namespace="{NAMESPACE}"' in alert["expr"]


def test_the_http_metric_names_are_values(chart):
    values = deep_merge(EVERYTHING_ON, {"prometheusRule": {"httpRequestsMetric": "scim_requests_total", "httpStatusLabel": "code"}})
    (rule,) = kind(render_objects(chart, values), "PrometheusRule")
    exprs = {r["alert"]: r["expr"] for r in rule["spec"]["groups"][0]["rules"]}
    assert 'scim_requests_total{' in exprs["IdmeshGatewayServerErrors"] and 'code=~"5.."' in exprs["IdmeshGatewayServerErrors"]
    assert 'code="429"' in exprs["IdmeshGatewayRateLimited"]


def test_every_process_logs_json_and_traces_to_the_collector_under_its_component_name(rendered):
    for name in ("everything-on", "all-in-one-everything-on"):
        for deployment in kind(rendered[name], "Deployment"):
            env = env_of(deployment)
            assert env["IDMESH_LOG_FORMAT"]["value"] == "json"
            assert env["IDMESH_OTLP_ENDPOINT"]["value"] == OTLP_ENDPOINT
            assert env["OTEL_SERVICE_NAME"]["value"] == deployment["metadata"]["name"]
    for deployment in kind(rendered["minimal"], "Deployment"):
        assert "IDMESH_OTLP_ENDPOINT" not in env_of(deployment), "no exporter unless tracing.otlpEndpoint is set"


def test_the_grafana_dashboard_ships_in_a_labelled_configmap_only_when_enabled(rendered):
    (configmap,) = [c for c in kind(rendered["everything-on"], "ConfigMap") if c["metadata"]["name"] == f"{FULLNAME}-dashboard"]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["idmesh.json"]) == json.loads(DASHBOARD.read_text())
    assert not [c for c in kind(rendered["minimal"], "ConfigMap") if c["metadata"]["name"].endswith("-dashboard")]


def test_the_dashboard_goes_where_the_sidecar_looks(chart):
    values = deep_merge(MINIMAL, {"grafanaDashboard": {"enabled": True, "namespace": "monitoring", "labels": {"dashboards": "idmesh"}, "annotations": {"grafana_folder": "idmesh"}}})
    (configmap,) = kind(render_objects(chart, values), "ConfigMap")
    assert configmap["metadata"]["namespace"] == "monitoring"
    assert configmap["metadata"]["labels"]["dashboards"] == "idmesh"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "idmesh"}


def exported_metrics() -> set[str]:
    """Every metric name the Rust sources spell out as a string literal."""
    sources = [*REPO.glob("libs/*/src/**/*.rs"), *REPO.glob("services/*/src/**/*.rs")]
    return {name for path in sources for name in re.findall(r'"(idmesh_[a-z0-9_]+)"', path.read_text())}


def queried_metrics(expression: str) -> set[str]:
    """The idmesh metrics a PromQL expression reads, histogram series
    (_bucket, _sum, _count) as the histogram's name."""
    names = set()
    for name in re.findall(r"\bidmesh_[a-z0-9_]+", expression):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        names.add(base if base != name and base in exported_metrics() else name)
    return names


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for top in dashboard["panels"] for p in [top, *top.get("panels", [])]]
    queries = [target["expr"] for panel in panels for target in panel.get("targets", [])]
    queries += [variable["definition"] for variable in dashboard["templating"]["list"] if "definition" in variable]
    return queries


def test_every_metric_the_dashboard_and_the_alerts_read_is_exported_by_the_code(rendered):
    (rule,) = kind(rendered["everything-on"], "PrometheusRule")
    alerts = [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]
    exported = exported_metrics()
    for source, queries in (("dashboard", dashboard_queries()), ("PrometheusRule", alerts)):
        read = set().union(*(queried_metrics(q) for q in queries))
        assert read, f"the {source} reads no idmesh metric"
        assert read <= exported, f"the {source} reads metrics no code exports: {sorted(read - exported)}"


def test_the_dashboard_shows_every_exported_metric():
    shown = set().union(*(queried_metrics(q) for q in dashboard_queries()))
    assert exported_metrics() <= shown, sorted(exported_metrics() - shown)


def test_the_readme_lists_exactly_the_exported_metrics():
    listed = set(re.findall(r"^\| `(idmesh_[a-z0-9_]+)` \|", (REPO / "README.md").read_text(), re.MULTILINE))
    assert listed == exported_metrics()


# --- NetworkPolicy -----------------------------------------------------------

# The design's edges (docs: DESIGN.md "The shape"), as (from, to, port).
CALLS = {
    ("gateway", "directories"),
    ("gateway", "users"),
    ("gateway", "groups"),
    ("users", "sessions"),
    ("users", "groups"),
    ("groups", "users"),
    ("roles", "users"),
    ("roles", "groups"),
    ("roles", "sessions"),
    ("roles", "events"),
    ("events", "users"),
    ("events", "groups"),
    ("events", "roles"),
    # Every service resolves its callers' API keys at directories.
    *((service, "directories") for service in ("users", "groups", "sessions", "roles", "events")),
}
DATABASE_USERS = {"directories", "users", "groups", "roles", "events"}
OUTSIDE = {"ingress", "prometheus", "postgres", "redis", "dns", "collector"}


def peer_name(peer):
    defaults = DEFAULTS["networkPolicy"]
    if peer == DATABASE_PEER:
        return "postgres"
    if peer == REDIS_PEER:
        return "redis"
    if peer == COLLECTOR_PEER:
        return "collector"
    if [peer] == defaults["gatewayFrom"]:
        return "ingress"
    if [peer] == defaults["metricsFrom"]:
        return "prometheus"
    if [peer] == defaults["dns"]["to"]:
        return "dns"
    if set(peer) == {"podSelector"}:
        labels = peer["podSelector"]["matchLabels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE and labels["app.kubernetes.io/name"] == "idmesh"
        return labels["app.kubernetes.io/component"]
    raise AssertionError(f"a peer the design does not have: {peer}")


def allowed_edges(objects):
    """(ingress, egress): the edges the rendered policies allow, each side
    on its own."""
    ingress, egress = set(), set()
    for policy in kind(objects, "NetworkPolicy"):
        spec = policy["spec"]
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        selected = spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for rule in spec.get("ingress") or []:
            # A rule without peers or ports would allow everything.
            assert rule["from"] and rule["ports"]
            for peer in rule["from"]:
                ingress |= {(peer_name(peer), selected, p["port"]) for p in rule["ports"]}
        for rule in spec.get("egress") or []:
            assert rule["to"] and rule["ports"]
            for peer in rule["to"]:
                egress |= {(selected, peer_name(peer), p["port"]) for p in rule["ports"]}
    return ingress, egress


def expected_edges(enabled):
    calls = {(a, b, PORTS[b]) for a, b in CALLS if a in enabled and b in enabled}
    ingress = calls | {(p, c, PORTS["metrics"]) for c in enabled for p in ["prometheus"]}
    if "gateway" in enabled:
        ingress.add(("ingress", "gateway", PORTS["http"]))
    egress = calls | {(c, "dns", 53) for c in enabled} | {(c, "collector", 4317) for c in enabled}
    egress |= {(c, "postgres", 5432) for c in enabled & DATABASE_USERS}
    if "sessions" in enabled:
        egress.add(("sessions", "redis", 6379))
    return ingress, egress


@pytest.mark.parametrize("name", ["everything-on"] + [f"{c}-off" for c in COMPONENTS])
def test_the_network_policies_allow_exactly_the_designs_edges(rendered, name):
    enabled = {c for c in COMPONENTS if MATRIX[name].get(c, {}).get("enabled", True)}
    ingress, egress = allowed_edges(rendered[name])
    assert (ingress, egress) == expected_edges(enabled)
    # Every edge between two components is allowed on both ends.
    inside = lambda edges: {e for e in edges if e[0] not in OUTSIDE and e[1] not in OUTSIDE}  # noqa: E731
    assert inside(ingress) == inside(egress)
    assert {component_of(p) for p in kind(rendered[name], "NetworkPolicy")} == enabled


def test_all_in_one_keeps_only_the_outer_edges(rendered):
    ingress, egress = allowed_edges(rendered["all-in-one-everything-on"])
    assert ingress == {("ingress", "all-in-one", PORTS["http"]), ("prometheus", "all-in-one", PORTS["metrics"])}
    assert egress == {
        ("all-in-one", "dns", 53),
        ("all-in-one", "postgres", 5432),
        ("all-in-one", "redis", 6379),
        ("all-in-one", "collector", 4317),
    }


def test_platform_clients_are_extra_ingress_on_the_service_port_only(chart):
    client = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "platform"}}}
    values = deep_merge(EVERYTHING_ON, {"networkPolicy": {"extraIngress": {"sessions": [client]}}})
    (policy,) = [p for p in kind(render_objects(chart, values), "NetworkPolicy") if component_of(p) == "sessions"]
    rules = [r for r in policy["spec"]["ingress"] if r["from"] == [client]]
    assert rules == [{"from": [client], "ports": [{"port": PORTS["sessions"], "protocol": "TCP"}]}]


@pytest.mark.parametrize("all_in_one", [False, True])
def test_webhook_endpoints_are_egress_of_the_events_service_only(chart, all_in_one):
    internet = {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}
    values = deep_merge(EVERYTHING_ON, {"networkPolicy": {"webhooks": {"to": [internet], "ports": [443, 8443]}}})
    if all_in_one:
        values = deep_merge(values, {"allInOne": {"enabled": True}})
    rule = {"to": [internet], "ports": [{"port": 443, "protocol": "TCP"}, {"port": 8443, "protocol": "TCP"}]}
    with_rule = {component_of(p) for p in kind(render_objects(chart, values), "NetworkPolicy") if rule in p["spec"]["egress"]}
    assert with_rule == ({"all-in-one"} if all_in_one else {"events"})


def test_no_network_policy_unless_enabled(rendered):
    assert not kind(rendered["minimal"], "NetworkPolicy")


# --- values that would install but not work ----------------------------------

REFUSED = {
    "no database for the components": ({}, "directories needs externalDatabase"),
    "several sessions replicas without redis": (
        deep_merge(MINIMAL, {"sessions": {"replicas": 2}}),
        "sessions.replicas > 1 (or sessions.autoscaling) needs externalRedis",
    ),
    "sessions autoscaling without redis": (
        deep_merge(MINIMAL, {"sessions": {"autoscaling": {"enabled": True}}}),
        "needs externalRedis",
    ),
    "several all-in-one replicas on sqlite": ({"allInOne": {"enabled": True, "replicas": 2}}, "needs externalDatabase"),
    "several all-in-one replicas without redis": (
        deep_merge(MINIMAL, {"allInOne": {"enabled": True, "replicas": 2}}),
        "needs externalRedis",
    ),
    "persistence with several replicas": (
        deep_merge(MINIMAL, {"externalRedis": {"url": "redis://r:6379"}, "allInOne": {"enabled": True, "replicas": 2, "persistence": {"enabled": True}}}),
        "allInOne.persistence needs allInOne.replicas 1",
    ),
    "network policy without the database's address": (
        deep_merge(MINIMAL, {"networkPolicy": {"enabled": True}}),
        "networkPolicy.database.to",
    ),
    "network policy without redis's address": (
        deep_merge(MINIMAL, {"externalRedis": {"url": "redis://r:6379"}, "networkPolicy": {"enabled": True, "database": {"to": [DATABASE_PEER]}}}),
        "networkPolicy.redis.to",
    ),
    "tracing through a network policy without the collector's address": (
        deep_merge(EVERYTHING_ON, {"networkPolicy": {"otlpCollector": {"to": []}}}),
        "networkPolicy.otlpCollector.to",
    ),
    "service monitor without metrics": (
        deep_merge(MINIMAL, {"serviceMonitor": {"enabled": True}, "metrics": {"enabled": False}}),
        "serviceMonitor.enabled needs metrics.enabled",
    ),
    "a disabled peer without an address": (
        deep_merge(MINIMAL, {"sessions": {"enabled": False}}),
        "sessions.enabled is false: set sessions.addressOverride",
    ),
    "a database secret without keys": (
        {"externalDatabase": {"host": "pg", "existingSecret": "db"}},
        "externalDatabase.existingSecret needs existingSecretUrlKey",
    ),
    "a database password key without host": (
        {"externalDatabase": {"existingSecret": "db", "existingSecretPasswordKey": "pw"}},
        "externalDatabase.existingSecretPasswordKey needs externalDatabase.host",
    ),
    "a redis secret without keys": (
        deep_merge(MINIMAL, {"externalRedis": {"url": "redis://r:6379", "existingSecret": "r"}}),
        "externalRedis.existingSecret needs",
    ),
    "a redis password key without url": (
        deep_merge(MINIMAL, {"externalRedis": {"existingSecret": "r", "existingSecretPasswordKey": "pw"}}),
        "externalRedis.existingSecretPasswordKey needs externalRedis.url",
    ),
    "autoscaling without a cpu request": (
        deep_merge(MINIMAL, {"gateway": {"autoscaling": {"enabled": True}, "resources": {"requests": {"cpu": None}}}}),
        "gateway.autoscaling needs gateway.resources.requests.cpu",
    ),
    "autoscaling maximum below minimum": (
        deep_merge(MINIMAL, {"gateway": {"autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 2}}}),
        "maxReplicas is below minReplicas",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_values_that_would_not_work_are_refused_with_the_reason(chart, case):
    values, reason = REFUSED[case]
    with pytest.raises(helm.HelmRenderError) as err:
        chart.render(values, name=RELEASE, namespace=NAMESPACE)
    assert reason in str(err.value)


# --- NOTES -------------------------------------------------------------------


def notes(chart, values):
    return chart.render(values, name=RELEASE, namespace=NAMESPACE)["idmesh/templates/NOTES.txt"]


def test_notes_tell_how_to_create_the_first_directory(chart):
    text = notes(chart, deep_merge(MINIMAL, {"gateway": {"publicUrl": "https://scim.example.com"}}))
    command = " ".join(text.replace("\\\n", " ").split())
    assert (
        f"kubectl exec -n {NAMESPACE} deploy/{FULLNAME}-directories -- idmesh directory create --name \"Acme Corp\" "
        f"--directory-addr 127.0.0.1:{PORTS['directories']} --public-url https://scim.example.com"
    ) in command
    assert "port-forward" not in text


def test_notes_in_all_in_one_mode_exec_into_the_one_deployment(chart):
    text = notes(chart, {"allInOne": {"enabled": True}})
    command = " ".join(text.replace("\\\n", " ").split())
    assert f"deploy/{FULLNAME}-all-in-one -- idmesh directory create" in command
    assert f"--public-url http://127.0.0.1:{PORTS['http']}" in command
    assert f"kubectl port-forward -n {NAMESPACE} svc/{FULLNAME}-all-in-one {PORTS['http']}" in command



# --- what the README says ----------------------------------------------------

README = (CHART_DIR.parents[1] / "README.md").read_text()


def test_the_readme_install_values_render_with_secrets_only_by_reference(chart):
    block = re.search(r"cat >idmesh-values.yaml <<'VALUES'\n(.*?)\nVALUES\n", README, re.DOTALL)
    values = yaml.safe_load(block.group(1))
    objects = render_objects(chart, values)
    database_secrets = [o for o in kind(objects, "Secret") if o["metadata"]["name"].endswith("-database")]
    assert not database_secrets, "the README's values keep the password in the user's Secret"
    for component in ("directories", "users", "groups", "roles", "events"):
        env = env_of(deployments(objects)[component])
        assert env["DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "idmesh-db", "key": "password"}
        assert env["IDMESH_DATABASE_URL"]["value"] == "postgres://idmesh:$(DATABASE_PASSWORD)@postgres.db.svc:5432/idmesh?sslmode=prefer"
    assert env_of(deployments(objects)["gateway"])["IDMESH_PUBLIC_URL"]["value"] == "https://scim.example.com"
    assert container(deployments(objects)["gateway"])["image"] == "registry.example.com/idmesh:0.1.0"


def test_the_readme_first_directory_command_is_the_one_the_notes_print(chart):
    block = re.search(r"```sh\n(kubectl exec -n idmesh deploy/.*?)```", README, re.DOTALL)
    command = " ".join(block.group(1).replace("\\\n", " ").split())
    values = deep_merge(MINIMAL, {"gateway": {"publicUrl": "https://scim.example.com"}})
    text = chart.render(values, name="idmesh", namespace="idmesh")["idmesh/templates/NOTES.txt"]
    assert command in " ".join(text.replace("\\\n", " ").split())


def test_values_given_inline_go_into_a_secret_the_chart_creates(rendered):
    def database_secret(objects):
        (secret,) = [o for o in kind(objects, "Secret") if o["metadata"]["name"].endswith("-database")]
        return secret

    secret = database_secret(rendered["inline-url"])
    assert secret["stringData"] == {"url": MATRIX["inline-url"]["externalDatabase"]["url"]}
    secret = database_secret(rendered["minimal"])
    assert secret["stringData"] == {"password": MINIMAL["externalDatabase"]["password"]}


def test_probe_windows_are_the_documented_ones(rendered):
    for component, deployment in deployments(rendered["minimal"]).items():
        c = container(deployment)
        window = {p: c[p]["periodSeconds"] * c[p]["failureThreshold"] for p in ("startupProbe", "livenessProbe", "readinessProbe")}
        if component == "gateway":
            continue
        # Out of its Service within seconds, restarted after two minutes,
        # five minutes to connect and migrate.
        assert window == {"startupProbe": 300, "livenessProbe": 120, "readinessProbe": 10}, component
