"""The Kubernetes manifests: every overlay renders, validates, and keeps the rules a cluster relies on.

Rendering is ``kubectl kustomize`` (kustomize v5); validation is kubernetes-validate's
JSON schemas for Kubernetes ``K8S_VERSION`` (strict: unknown fields are errors). The two
Prometheus Operator kinds have no schema there and are checked against the parts of their
CRDs we use (``CRD_SCHEMAS``).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from contracts.topics import ALL_TOPICS
from tests.deploy.manifests import (
    OVERLAYS,
    container,
    deployment,
    env_of,
    named,
    of_kind,
    ours,
    render,
)
from tests.deploy.repo import (
    DEFAULT_PORTS,
    DEPLOY,
    REPO,
    SERVICES,
    prefix_of,
    service_env_vars,
)

K8S_VERSION = "1.30"  # the oldest minor release the manifests promise to work on
DB_SERVICES = tuple(s for s in SERVICES if f"{prefix_of(s)}DATABASE_URL" in service_env_vars(s))
CONFIG_FILES = (  # (service, variable, file in deploy/base/config/ the deployment's ConfigMap is made from)
    ("routing", "ROUTING_RULES_FILE", "routing-rules.yaml"),
    ("routing", "ROUTING_AGENTS_FILE", "routing-agents.yaml"),
    ("escalation", "ESCALATION_LEVELS_FILE", "escalation-levels.yaml"),
    ("escalation", "ESCALATION_POLICIES_FILE", "escalation-sla.yaml"),
    ("notify", "NOTIFY_RECIPIENTS_FILE", "notify-recipients.yaml"),
    ("intake", "INTAKE_DIRECTORY_FILE", "intake-directory.yaml"),
)
EXTRA_PORTS = {"intake": ("smtp", "INTAKE_SMTP_PORT")}  # a service's port besides HTTP: intake's SMTP receiver
_METADATA = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
CRD_SCHEMAS = {
    "ServiceMonitor": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["selector", "endpoints"],
                "additionalProperties": False,
                "properties": {
                    "jobLabel": {"type": "string"},
                    "selector": {"type": "object", "properties": {"matchLabels": {"type": "object"}}},
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "port": {"type": "string"},
                                "path": {"type": "string"},
                                "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                                "honorLabels": {"type": "boolean"},
                            },
                        },
                    },
                },
            },
        },
    },
    "PrometheusRule": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["groups"],
                "properties": {
                    "groups": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name", "rules"],
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": "string"},
                                "rules": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["alert", "expr"],
                                        "additionalProperties": False,
                                        "properties": {
                                            "alert": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]*$"},
                                            "expr": {"type": "string"},
                                            "for": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h|d)$"},
                                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                                        },
                                    },
                                },
                            },
                        },
                    }
                },
            },
        },
    },
}


def validate(obj: dict) -> None:
    if obj["kind"] in CRD_SCHEMAS:
        jsonschema.validate(obj, CRD_SCHEMAS[obj["kind"]])
    else:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_of_the_overlay_passes_schema_validation(overlay: str) -> None:
    objects = render(overlay)
    assert len(objects) > 30
    failures = []
    for obj in objects:
        try:
            validate(obj)
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as exc:
            failures.append(f"{obj['kind']}/{obj['metadata']['name']}: {getattr(exc, 'message', exc)}")
    assert not failures, "\n".join(failures)


def test_the_schema_validation_rejects_a_mistake() -> None:
    broken = copy.deepcopy(deployment(render("prod"), "tickets"))
    container(broken)["livenesProbe"] = container(broken).pop("livenessProbe")  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)
    rule = copy.deepcopy(of_kind(render("prod"), "PrometheusRule")[0])
    rule["spec"]["groups"][0]["rules"][0]["for"] = "two minutes"
    with pytest.raises(jsonschema.ValidationError):
        validate(rule)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_has_its_deployment_service_budget_autoscaler_policy_and_account(overlay: str) -> None:
    objects = render(overlay)
    for service in SERVICES:
        name = f"helpdesk-{service}"
        for kind in ("Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy", "ServiceAccount"):
            named(objects, kind, name)  # exactly one
    assert {d["metadata"]["name"] for d in ours(objects, "Deployment")} == {f"helpdesk-{s}" for s in SERVICES}


def _pod_specs(objects: tuple[dict, ...]) -> list[tuple[str, dict]]:
    return [(o["metadata"]["name"], o["spec"]["template"]["spec"]) for o in ours(objects, "Deployment") + ours(objects, "Job")]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_unprivileged_on_a_read_only_root_with_limits(overlay: str) -> None:
    for name, pod in _pod_specs(render(overlay)):
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert sc["runAsUser"] != 0, name
            for key in ("cpu", "memory"):
                assert c["resources"]["requests"][key] and c["resources"]["limits"][key], (name, key)
            assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"]), f"{name}: no writable /tmp"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_is_probed_on_its_health_endpoints_at_its_port(overlay: str) -> None:
    objects = render(overlay)
    for service in SERVICES:
        d = deployment(objects, service)
        c = container(d)
        env = env_of(d)
        port = DEFAULT_PORTS[service]
        assert c["command"] == ["python", "-m", f"services.{service}"]
        assert env[f"{prefix_of(service)}HTTP_PORT"]["value"] == str(port)
        assert env[f"{prefix_of(service)}HTTP_HOST"]["value"] == "0.0.0.0"  # the default 127.0.0.1 is unreachable
        ports = [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        if service in EXTRA_PORTS:
            name, variable = EXTRA_PORTS[service]
            extra = service_env_vars(service)[variable]
            assert env[variable]["value"] == str(extra)
            assert env[f"{prefix_of(service)}SMTP_HOST"]["value"] == "0.0.0.0"
            ports.append({"name": name, "containerPort": extra, "protocol": "TCP"})
        assert c["ports"] == ports
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
        svc = named(objects, "Service", f"helpdesk-{service}")
        assert svc["spec"]["ports"][0]["port"] == port and svc["spec"]["ports"][0]["name"] == "http"
        served = {(p["name"], p["targetPort"]) for p in svc["spec"]["ports"]}
        assert served == {(p["name"], p["name"]) for p in ports}, service
        assert svc["spec"]["selector"] == d["spec"]["selector"]["matchLabels"]


def broker_drain_seconds() -> float:
    """How long the runtime lets in-flight batches finish when it stops (faststream's graceful timeout)."""
    from runtime.kafka import make_broker
    from runtime.settings import CommonSettings

    return float(make_broker("probe", CommonSettings()).config.graceful_timeout)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_termination_grace_outlasts_the_drain_of_in_flight_work(overlay: str) -> None:
    drain = broker_drain_seconds()
    for service in SERVICES:
        d = deployment(render(overlay), service)
        pod = d["spec"]["template"]["spec"]
        pre_stop = float(container(d)["lifecycle"]["preStop"]["exec"]["command"][-1])
        shutdown = float(env_of(d)[f"{prefix_of(service)}SHUTDOWN_TIMEOUT_S"]["value"])
        assert pod["terminationGracePeriodSeconds"] > pre_stop + max(drain, shutdown), service


def consumed_partitions() -> dict[str, int]:
    """Per service: the most partitions among the topics it consumes (from the ACL file, checked against the code).

    A replica beyond that would consume nothing at all. Below it, a replica may sit idle in the group of a
    smaller topic (intake's directory topic has 3) while it takes its share of the others.
    """
    partitions = {t.name: t.partitions for t in ALL_TOPICS}
    acls = yaml.safe_load((DEPLOY / "kafka" / "acls.yaml").read_text())["principals"]
    return {s: max(partitions[c["topic"]] for c in acls[f"helpdesk-{s}"]["consumes"]) for s in SERVICES}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscalers_never_add_more_consumers_than_partitions(overlay: str) -> None:
    objects = render(overlay)
    for service, partitions in consumed_partitions().items():
        hpa = named(objects, "HorizontalPodAutoscaler", f"helpdesk-{service}")
        assert hpa["spec"]["scaleTargetRef"]["name"] == f"helpdesk-{service}"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= partitions, service
        assert named(objects, "PodDisruptionBudget", f"helpdesk-{service}")["spec"]["maxUnavailable"] == 1


def _egress_targets(policy: dict) -> set[str]:
    kinds = set()
    for rule in policy["spec"]["egress"]:
        ports = {p["port"] for p in rule["ports"]}
        labels = {k for peer in rule.get("to", []) for k in peer.get("podSelector", {}).get("matchLabels", {})}
        if ports == {53}:
            kinds.add("dns")
        elif "helpdesk.io/kafka" in labels and ports <= {9092, 9093}:
            kinds.add("kafka")
        elif "helpdesk.io/postgres" in labels and ports == {5432}:
            kinds.add("postgres")
        elif "helpdesk.io/smtp" in labels and ports <= {25, 465, 587, 1025}:
            kinds.add("smtp")
        elif ports == {443} and [peer.get("ipBlock", {}).get("cidr") for peer in rule["to"]] == ["0.0.0.0/0"]:
            kinds.add("https")
        elif labels == {"app.kubernetes.io/name"} and ports == {9093}:
            kinds.add("alertmanager")
        else:
            kinds.add(f"unexpected {rule}")
    return kinds


def test_network_policies_let_each_service_reach_only_dns_kafka_its_database_and_providers_for_notify() -> None:
    objects = render("prod")
    for service in SERVICES:
        policy = named(objects, "NetworkPolicy", f"helpdesk-{service}")
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        assert policy["spec"]["podSelector"]["matchLabels"] == deployment(objects, service)["spec"]["selector"]["matchLabels"]
        wanted = {"dns", "kafka"} | ({"postgres"} if service in DB_SERVICES else set())
        if service == "notify":  # e-mail, and SMS, calls, pages, webhooks over HTTPS, alarms to Alertmanager
            wanted |= {"smtp", "https", "alertmanager"}
        assert _egress_targets(policy) == wanted, service
        served = [{"port": "http", "protocol": "TCP"}]
        if service in EXTRA_PORTS:
            served.append({"port": EXTRA_PORTS[service][0], "protocol": "TCP"})
        for rule in policy["spec"]["ingress"]:
            assert rule["ports"] == served, service
    assert _egress_targets(named(objects, "NetworkPolicy", "helpdesk-topics")) == {"dns", "kafka"}


SECRET_LIKE = re.compile(r"PASSWORD|SECRET|TOKEN|DATABASE_URL")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secret_values_only_ever_come_from_secret_references(overlay: str) -> None:
    for name, pod in _pod_specs(render(overlay)):
        for c in pod["containers"]:
            for var in c.get("env", []):
                if SECRET_LIKE.search(var["name"]):
                    assert "value" not in var and "secretKeyRef" in var["valueFrom"], f"{name}: {var['name']} in plain text"


def test_production_defines_no_secret_and_dev_only_clearly_marked_placeholders() -> None:
    assert of_kind(render("prod"), "Secret") == []
    dev_secrets = of_kind(render("dev"), "Secret")
    assert dev_secrets
    for secret in dev_secrets:
        assert secret["metadata"]["annotations"]["helpdesk.io/dev-placeholder"] == "true"
    assert "secretGenerator" not in (DEPLOY / "overlays" / "prod" / "kustomization.yaml").read_text()


def test_every_secret_production_needs_is_documented() -> None:
    doc = (REPO / "docs" / "operations.md").read_text()
    refs = set()
    for _, pod in _pod_specs(render("prod")):
        for c in pod["containers"]:
            refs |= {v["valueFrom"]["secretKeyRef"]["name"] for v in c.get("env", []) if "secretKeyRef" in v.get("valueFrom", {})}
            refs |= {f["secretRef"]["name"] for f in c.get("envFrom", []) if "secretRef" in f}
        refs |= {v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
    missing = sorted(r for r in refs if f"`{r}`" not in doc)
    assert not missing, f"Secrets not described in docs/operations.md: {missing}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_set_is_one_the_service_reads(overlay: str) -> None:
    objects = render(overlay)
    shared = {k: v for k, v in next(o for o in of_kind(objects, "ConfigMap") if o["metadata"]["name"].startswith("helpdesk-kafka"))["data"].items()}
    for service in SERVICES:
        known = service_env_vars(service)
        unknown = (set(env_of(deployment(objects, service))) | set(shared)) - set(known) - {"POD_NAME"}
        assert not unknown, f"{service} does not read {sorted(unknown)}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configuration_files_are_mounted_where_the_variables_point(overlay: str) -> None:
    objects = render(overlay)
    for service, variable, shipped in CONFIG_FILES:
        d = deployment(objects, service)
        path = Path(env_of(d)[variable]["value"])
        [mount] = [m for m in container(d)["volumeMounts"] if m["mountPath"] == str(path.parent)]
        [volume] = [v for v in d["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]]
        sources = [s["configMap"] for s in volume["projected"]["sources"]] if "projected" in volume else [volume["configMap"]]
        files = {item["path"]: (source["name"], item["key"]) for source in sources for item in source["items"]}
        assert path.name in files, f"{service}: {variable}={path} is not in the mounted volume"
        config_map, key = files[path.name]
        data = named(objects, "ConfigMap", config_map)["data"][key]
        assert data == (DEPLOY / "base" / "config" / shipped).read_text(), f"{service}: {variable} is not {shipped}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_with_a_database_gets_its_url_from_a_secret(overlay: str) -> None:
    objects = render(overlay)
    for service in DB_SERVICES:
        url = env_of(deployment(objects, service))[f"{prefix_of(service)}DATABASE_URL"]  # SQLite on a read-only root fails
        assert url["valueFrom"]["secretKeyRef"]["name"].startswith(f"helpdesk-{service}-db"), service


def test_the_configuration_files_shipped_for_kubernetes_are_valid() -> None:
    from services.escalation.levels import load_levels
    from services.escalation.policies_file import load_policies
    from services.intake.adapters.directory_file import load_directory
    from services.notify.recipients import load_recipients
    from services.routing.adapters.agents_file import load_agents
    from services.routing.adapters.rules_file import load_rules

    loaders = {
        "ROUTING_RULES_FILE": load_rules,
        "ROUTING_AGENTS_FILE": load_agents,
        "ESCALATION_LEVELS_FILE": load_levels,
        "ESCALATION_POLICIES_FILE": load_policies,
        "NOTIFY_RECIPIENTS_FILE": lambda path: load_recipients(path, environ={}),  # webhook keys come from a Secret
        "INTAKE_DIRECTORY_FILE": lambda path: load_directory(path, "GB"),
    }
    assert set(loaders) == {variable for _, variable, _ in CONFIG_FILES}
    for _, variable, shipped in CONFIG_FILES:
        loaded = loaders[variable](DEPLOY / "base" / "config" / shipped)  # raises, naming file and line, if invalid
        assert loaded and (not hasattr(loaded, "__len__") or len(loaded) > 0), shipped


def test_the_topics_job_replicates_three_times_in_production_and_once_in_dev() -> None:
    def args(overlay: str) -> list[str]:
        job = named(render(overlay), "Job", "helpdesk-topics")
        command = container(job)["command"]
        assert command[:3] == ["python", "-m", "runtime.topics_admin"]
        assert env_of(job)["KAFKA_SASL_USERNAME"]["value"] == "helpdesk-topics-admin"
        return command[3:]

    assert args("prod") == ["--replication-factor", "3", "--min-insync-replicas", "2"]
    assert args("dev") == ["--replication-factor", "1", "--min-insync-replicas", "1"]


def test_production_talks_to_kafka_over_sasl_ssl_as_one_principal_per_service() -> None:
    objects = render("prod")
    shared = next(o for o in of_kind(objects, "ConfigMap") if o["metadata"]["name"].startswith("helpdesk-kafka"))["data"]
    assert shared["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert shared["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    acls = yaml.safe_load((DEPLOY / "kafka" / "acls.yaml").read_text())["principals"]
    for service in SERVICES:
        d = deployment(objects, service)
        user = env_of(d)["KAFKA_SASL_USERNAME"]["value"]
        assert user == f"helpdesk-{service}" and user in acls
        ca = [m for m in container(d)["volumeMounts"] if m["mountPath"] == str(Path(shared["KAFKA_SSL_CA_FILE"]).parent)]
        assert ca, f"{service}: the Kafka CA is not mounted"


def test_production_namespace_enforces_the_restricted_pod_security_standard() -> None:
    [namespace] = of_kind(render("prod"), "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {o["metadata"].get("namespace") for o in render("prod") if o["kind"] != "Namespace"} == {"helpdesk"}


def test_the_kubernetes_alerts_are_the_compose_alerts() -> None:
    compose = yaml.safe_load((DEPLOY / "compose" / "prometheus" / "alerts.yml").read_text())
    [rule] = of_kind(render("prod"), "PrometheusRule")
    assert rule["spec"]["groups"] == compose["groups"]
    [monitor] = of_kind(render("prod"), "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    selected = monitor["spec"]["selector"]["matchLabels"]
    services = [s for s in of_kind(render("prod"), "Service") if selected.items() <= s["metadata"]["labels"].items()]
    assert {s["metadata"]["name"] for s in services} == {f"helpdesk-{s}" for s in SERVICES}
    assert {s["metadata"]["labels"][monitor["spec"]["jobLabel"]] for s in services} == set(SERVICES)
