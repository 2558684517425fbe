"""Render the Kustomize overlays with kubectl and pick objects out of them."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from typing import Any

import yaml

from tests.deploy.repo import DEPLOY, SERVICES

OVERLAYS = ("dev", "prod")
Obj = dict[str, Any]


@cache
def render(overlay: str) -> tuple[Obj, ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError("kubectl not found: the deploy tests render the overlays with `kubectl kustomize` (kustomize v5)")
    out = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / "overlays" / overlay)], capture_output=True, text=True, timeout=60
    )
    if out.returncode != 0:
        raise RuntimeError(f"kubectl kustomize deploy/overlays/{overlay} failed:\n{out.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def of_kind(objects: tuple[Obj, ...], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: tuple[Obj, ...], kind: str, name: str) -> Obj:
    [obj] = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    return obj


def ours(objects: tuple[Obj, ...], kind: str) -> list[Obj]:
    """Objects of the help desk itself (not the dev overlay's Kafka, PostgreSQL, Mailpit)."""
    return [o for o in of_kind(objects, kind) if o["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "helpdesk"]


def deployment(objects: tuple[Obj, ...], service: str) -> Obj:
    return named(objects, "Deployment", f"helpdesk-{service}")


def container(obj: Obj) -> Obj:
    [only] = obj["spec"]["template"]["spec"]["containers"]
    return only


def env_of(obj: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container(obj).get("env", [])}


def config_map_data(objects: tuple[Obj, ...], name_prefix: str) -> dict[str, str]:
    [cm] = [o for o in of_kind(objects, "ConfigMap") if o["metadata"]["name"].startswith(name_prefix)]
    return cm["data"]


__all__ = ["OVERLAYS", "SERVICES", "container", "deployment", "env_of", "named", "of_kind", "ours", "render"]
