"""docker-compose.yml: valid for Compose, and everything it names exists in the code.

No Docker engine runs here, so the file is checked with ``docker-compose config``
(Debian's docker-compose) and by reading what it resolves to.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from typing import Any

import pytest
import yaml

from tests.deploy.repo import (
    DEFAULT_PORTS,
    DEPLOY,
    REPO,
    SERVICES,
    prefix_of,
    service_env_vars,
)

COMPOSE = REPO / "docker-compose.yml"
CONFIG_FILE_VARS = {
    "INTAKE_DIRECTORY_FILE", "ROUTING_RULES_FILE", "ROUTING_AGENTS_FILE", "ESCALATION_LEVELS_FILE",
    "ESCALATION_POLICIES_FILE", "NOTIFY_RECIPIENTS_FILE",
}
EXTRA_PORTS = {"intake": "INTAKE_SMTP_PORT"}  # a service's port besides HTTP: intake's SMTP receiver
GRAFANA_PASSWORD = "the-operators-own-7f3a"  # what the person starting compose chose
SETTINGS = ("HELPDESK_BIND", "GRAFANA_ADMIN_PASSWORD")  # what compose reads from the environment


def compose_config(**settings: str) -> subprocess.CompletedProcess[str]:
    """``docker-compose config`` with only the given settings in its environment."""
    compose = shutil.which("docker-compose")
    if compose is None:
        raise RuntimeError("docker-compose not found: scripts/system-packages installs it")
    env = {name: value for name, value in os.environ.items() if name not in SETTINGS}
    return subprocess.run(
        [compose, "-f", str(COMPOSE), "config"], capture_output=True, text=True, timeout=60, cwd=REPO,
        env={**env, **settings},
    )


@cache
def resolved(bind: str | None = None) -> dict[str, Any]:
    """The file as Compose understands it (anchors merged, paths absolute), by default or with HELPDESK_BIND."""
    out = compose_config(GRAFANA_ADMIN_PASSWORD=GRAFANA_PASSWORD, **({"HELPDESK_BIND": bind} if bind else {}))
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


def published(spec: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host address, published port, container port) of each port, from the long or the short syntax."""
    found = []
    for port in spec.get("ports", []):
        if isinstance(port, dict):
            found.append((port.get("host_ip", "0.0.0.0"), int(port["published"]), int(port["target"])))
        else:  # "127.0.0.1:8001:8001/tcp"
            *address, outside, inside = port.split("/")[0].split(":")
            found.append((address[0] if address else "0.0.0.0", int(outside), int(inside)))
    return found


def volumes(spec: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(type, source, target) of each volume, from the long or the short ("src:dst:ro") syntax."""
    found = []
    for volume in spec.get("volumes", []):
        if isinstance(volume, dict):
            found.append((volume["type"], volume["source"], volume["target"]))
        else:
            source, target = volume.split(":")[:2]
            found.append(("bind" if source.startswith(("/", ".")) else "volume", source, target))
    return found


def test_compose_accepts_the_file() -> None:
    quiet = subprocess.run(
        [shutil.which("docker-compose") or "docker-compose", "-f", str(COMPOSE), "config", "-q"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
        env={**os.environ, "GRAFANA_ADMIN_PASSWORD": GRAFANA_PASSWORD},
    )
    assert quiet.returncode == 0, quiet.stderr
    assert set(SERVICES) | {"kafka", "postgres", "mailpit", "init", "prometheus", "grafana"} <= set(resolved()["services"])


def test_kafka_is_the_official_image_in_kraft_mode() -> None:
    kafka = resolved()["services"]["kafka"]
    assert kafka["image"] == "apache/kafka:4.1.1"
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # topics come from `init`
    assert "healthcheck" in kafka


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_runs_its_module_with_variables_it_reads_on_its_port(service: str) -> None:
    spec = resolved()["services"][service]
    assert spec["command"] == ["python", "-m", f"services.{service}"]
    assert (REPO / "services" / service / "__main__.py").is_file()
    env = spec["environment"]
    unknown = set(env) - set(service_env_vars(service))
    assert not unknown, f"{service} does not read {sorted(unknown)}"
    port = int(env.get(f"{prefix_of(service)}HTTP_PORT", DEFAULT_PORTS[service]))
    assert port == DEFAULT_PORTS[service] == service_env_vars(service)[f"{prefix_of(service)}HTTP_PORT"]
    assert env[f"{prefix_of(service)}HTTP_HOST"] == "0.0.0.0"
    ports = [(port, port)]
    if service in EXTRA_PORTS:
        extra = int(env[EXTRA_PORTS[service]])
        assert extra == service_env_vars(service)[EXTRA_PORTS[service]]
        assert env[f"{prefix_of(service)}SMTP_HOST"] == "0.0.0.0"  # the default 127.0.0.1 is unreachable
        ports.append((extra, extra))
    assert [(outside, inside) for _, outside, inside in published(spec)] == ports
    assert f"http://127.0.0.1:{port}/readyz" in " ".join(spec["healthcheck"]["test"])


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_starts_after_the_topics_exist_and_its_dependencies_are_healthy(service: str) -> None:
    spec = resolved()["services"][service]
    depends = spec["depends_on"]
    assert depends["init"]["condition"] == "service_completed_successfully"
    assert depends["kafka"]["condition"] == "service_healthy"
    if f"{prefix_of(service)}DATABASE_URL" in spec["environment"]:
        assert spec["environment"][f"{prefix_of(service)}DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert depends["postgres"]["condition"] == "service_healthy"
    assert spec["read_only"] is True and spec["user"] == "10001:10001" and spec["cap_drop"] == ["ALL"]


def test_the_init_service_creates_the_topics_once() -> None:
    init = resolved()["services"]["init"]
    assert init["command"][:3] == ["python", "-m", "runtime.topics_admin"]
    assert init["restart"] == "no"
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert set(init["environment"]) <= set(service_env_vars("routing"))  # only shared settings


def test_every_mounted_file_exists_and_every_configuration_variable_points_at_a_mount() -> None:
    for name, spec in resolved()["services"].items():
        mounts = {}
        for kind, source, target in volumes(spec):
            if kind == "bind":
                assert (REPO / source).exists(), f"{name}: {source} does not exist"
                mounts[target] = REPO / source
        for var, value in spec.get("environment", {}).items():
            if var in CONFIG_FILE_VARS:
                assert value in mounts, f"{name}: {var}={value} is not mounted"
    declared = set(resolved().get("volumes", {}))
    used = {source for s in resolved()["services"].values() for kind, source, _ in volumes(s) if kind == "volume"}
    assert used == declared


def test_the_databases_compose_creates_are_the_ones_the_services_use() -> None:
    sql = (DEPLOY / "components" / "dev-infra" / "postgres-init.sql").read_text()
    for service in SERVICES:
        if f"{prefix_of(service)}DATABASE_URL" not in service_env_vars(service):
            continue
        url = resolved()["services"][service]["environment"][f"{prefix_of(service)}DATABASE_URL"]
        database = url.rsplit("/", 1)[1]
        assert f"CREATE DATABASE {database} " in sql


def test_prometheus_scrapes_every_service_where_it_listens_and_loads_the_alerts() -> None:
    config = yaml.safe_load((DEPLOY / "compose" / "prometheus" / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    for service in SERVICES:
        assert targets[service] == [f"{service}:{DEFAULT_PORTS[service]}"]
    assert "kafka-exporter" in targets and "kafka-exporter" in resolved()["services"]
    mounts = {target for kind, _, target in volumes(resolved()["services"]["prometheus"]) if kind == "bind"}
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"] and "/etc/prometheus/alerts.yml" in mounts


def test_grafana_is_provisioned_with_the_dashboard() -> None:
    grafana = resolved()["services"]["grafana"]
    mounts = {target: (REPO / source).resolve() for kind, source, target in volumes(grafana) if kind == "bind"}
    provider = yaml.safe_load((mounts["/etc/grafana/provisioning"] / "dashboards" / "helpdesk.yml").read_text())
    dashboards_dir = provider["providers"][0]["options"]["path"]
    assert mounts[f"{dashboards_dir}/helpdesk.json"] == DEPLOY / "base" / "monitoring" / "helpdesk-dashboard.json"
    datasource = yaml.safe_load((mounts["/etc/grafana/provisioning"] / "datasources" / "prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"



def test_every_published_port_is_on_this_machine_only_by_default() -> None:
    ports = {name: published(spec) for name, spec in resolved()["services"].items() if spec.get("ports")}
    assert set(SERVICES) | {"kafka", "mailpit", "prometheus", "grafana"} <= set(ports)
    elsewhere = {name: found for name, found in ports.items() if any(ip != "127.0.0.1" for ip, _, _ in found)}
    assert not elsewhere, f"published beyond 127.0.0.1: {elsewhere}"


def test_publishing_on_the_network_takes_an_explicit_setting_and_never_includes_kafka() -> None:
    ports = {name: published(spec) for name, spec in resolved("0.0.0.0")["services"].items() if spec.get("ports")}
    assert {ip for _, found in ports.items() for ip, _, _ in found} == {"0.0.0.0", "127.0.0.1"}
    assert ports["kafka"] == [("127.0.0.1", 29092, 29092)]  # PLAINTEXT, no authentication: loopback only
    assert {ip for ip, _, _ in ports["tickets"]} == {"0.0.0.0"}


def test_grafana_has_no_known_password_and_no_anonymous_viewer() -> None:
    refused = compose_config()
    assert refused.returncode != 0 and "set GRAFANA_ADMIN_PASSWORD" in refused.stderr
    env = resolved()["services"]["grafana"]["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == GRAFANA_PASSWORD
    assert env.get("GF_AUTH_ANONYMOUS_ENABLED", "false") == "false"
    written = re.findall(r"^\s*GF_SECURITY_ADMIN_PASSWORD:\s*(.*)$", COMPOSE.read_text(), re.MULTILINE)
    assert written and all(value.startswith("${GRAFANA_ADMIN_PASSWORD:?") for value in written), written


@pytest.mark.parametrize("service", SERVICES)
def test_compose_runs_each_service_with_development_credentials_and_says_so(service: str) -> None:
    # Compose is a local run: the services start with the built-in credentials only because it says so.
    assert resolved()["services"][service]["environment"]["HELPDESK_DEVELOPMENT"] == "true"
