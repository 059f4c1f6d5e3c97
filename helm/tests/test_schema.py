"""values.schema.json: one test per rule, each a value Helm must refuse at
install (render validates against the schema first, as install does)."""

from __future__ import annotations

import helm_python as helm
import pytest

from conftest import MINIMAL, NAMESPACE, RELEASE, deep_merge, values_file

PEER = {"ipBlock": {"cidr": "10.0.0.0/8"}}

# rule → (override on top of MINIMAL, the path Helm names in its answer)
REJECTED = {
    "negative replicas": ({"users": {"replicas": -1}}, "/users/replicas"),
    "replicas as text": ({"gateway": {"replicas": "2"}}, "/gateway/replicas"),
    "unknown top-level key": ({"replicaCount": 2}, "additional properties 'replicaCount'"),
    "unknown component key": ({"groups": {"replica": 2}}, "additional properties 'replica'"),
    "a component that does not exist": ({"roleMapping": {"enabled": True}}, "additional properties 'roleMapping'"),
    "bad pull policy": ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    "bad image digest": ({"image": {"digest": "latest"}}, "/image/digest"),
    "port out of range": ({"ports": {"http": 70000}}, "/ports/http"),
    "zero probe period": ({"sessions": {"probes": {"liveness": {"periodSeconds": 0}}}}, "/sessions/probes/liveness/periodSeconds"),
    "unknown probe setting": ({"gateway": {"probes": {"readiness": {"path": "/"}}}}, "additional properties 'path'"),
    "root user": ({"securityContext": {"runAsUser": 0}}, "/securityContext/runAsUser"),
    "security context fields are not values": ({"securityContext": {"privileged": True}}, "additional properties 'privileged'"),
    "relative data dir": ({"dataDir": "data"}, "/dataDir"),
    "public url without scheme": ({"gateway": {"publicUrl": "scim.example.com"}}, "/gateway/publicUrl"),
    "public url with query": ({"gateway": {"publicUrl": "https://scim.example.com/?x=1"}}, "/gateway/publicUrl"),
    "group patch member limit zero": ({"gateway": {"groupPatchMemberLimit": 0}}, "/gateway/groupPatchMemberLimit"),
    "database url of another kind": ({"externalDatabase": {"url": "mysql://db/idmesh"}}, "/externalDatabase/url"),
    "bad sslmode": ({"externalDatabase": {"sslMode": "on"}}, "/externalDatabase/sslMode"),
    "redis url of another kind": ({"externalRedis": {"url": "http://redis:6379"}}, "/externalRedis/url"),
    "redis password in the url": ({"externalRedis": {"url": "redis://:hunter2@redis:6379"}}, "/externalRedis/url"),
    "bad service type": ({"directories": {"service": {"type": "ExternalName"}}}, "/directories/service/type"),
    "pdb allowing no disruption": ({"users": {"pdb": {"maxUnavailable": 0}}}, "/users/pdb/maxUnavailable"),
    "autoscaling target above 100%": ({"gateway": {"autoscaling": {"targetCPUUtilizationPercentage": 150}}}, "/gateway/autoscaling/targetCPUUtilizationPercentage"),
    "autoscaling to zero": ({"gateway": {"autoscaling": {"minReplicas": 0}}}, "/gateway/autoscaling/minReplicas"),
    "bad anti-affinity": ({"podAntiAffinity": "strict"}, "/podAntiAffinity"),
    "bad topology spread policy": ({"topologySpread": {"whenUnsatisfiable": "Never"}}, "/topologySpread/whenUnsatisfiable"),
    "network policy peer of unknown kind": ({"networkPolicy": {"database": {"to": [{"service": "pg"}]}}}, "additional properties 'service'"),
    "empty network policy peer": ({"networkPolicy": {"gatewayFrom": [{}]}}, "/networkPolicy/gatewayFrom/0"),
    "egress without ports": ({"networkPolicy": {"redis": {"to": [PEER], "ports": []}}}, "/networkPolicy/redis/ports"),
    "bad scrape interval": ({"serviceMonitor": {"interval": "often"}}, "/serviceMonitor/interval"),
    "alert ratio above 1": ({"prometheusRule": {"serverErrors": {"ratio": 5}}}, "/prometheusRule/serverErrors/ratio"),
    "bad metric name": ({"prometheusRule": {"httpRequestsMetric": "http-requests"}}, "/prometheusRule/httpRequestsMetric"),
    "dashboard namespace not a DNS label": ({"grafanaDashboard": {"namespace": "Monitoring_NS"}}, "/grafanaDashboard/namespace"),
    "dashboard label value not text": ({"grafanaDashboard": {"labels": {"grafana_dashboard": 1}}}, "/grafanaDashboard/labels/grafana_dashboard"),
    "unknown dashboard setting": ({"grafanaDashboard": {"folder": "idmesh"}}, "additional properties 'folder'"),
    "unknown log format": ({"logFormat": "logfmt"}, "/logFormat"),
    "otlp endpoint over https": ({"tracing": {"otlpEndpoint": "https://collector:4317"}}, "/tracing/otlpEndpoint"),
    "otlp endpoint without scheme": ({"tracing": {"otlpEndpoint": "collector:4317"}}, "/tracing/otlpEndpoint"),
    "collector egress without ports": ({"networkPolicy": {"otlpCollector": {"to": [PEER], "ports": []}}}, "/networkPolicy/otlpCollector/ports"),
    "extra env without a name": ({"gateway": {"extraEnv": [{"value": "x"}]}}, "/gateway/extraEnv/0"),
    "bad persistence size": ({"allInOne": {"persistence": {"size": "lots"}}}, "/allInOne/persistence/size"),
}


@pytest.mark.parametrize("rule", sorted(REJECTED))
def test_the_schema_rejects(chart, rule):
    override, where = REJECTED[rule]
    with pytest.raises(helm.HelmValuesError) as err:
        chart.render(deep_merge(MINIMAL, override), name=RELEASE, namespace=NAMESPACE)
    assert where in str(err.value)


@pytest.mark.parametrize("overlay", [{}, values_file("values-ha.yaml")])
def test_the_schema_accepts_the_shipped_values(chart, overlay):
    chart.validate_schema(chart.merge_values(deep_merge(overlay, MINIMAL)))
