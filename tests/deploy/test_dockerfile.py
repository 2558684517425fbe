"""The image definition: what it copies exists, it runs unprivileged, its defaults suit a container.

No Docker engine runs here, so the Dockerfile is read, not built: the instructions are
parsed and every path, user, variable and module it names is checked against the tree.
"""

from __future__ import annotations

import re
import shlex

from tests.deploy.repo import DEFAULT_PORTS, REPO, SERVICES, prefix_of, service_env_vars

DOCKERFILE = (REPO / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def env() -> dict[str, str]:
    found = {}
    for op, args in instructions():
        if op == "ENV":
            found |= dict(item.split("=", 1) for item in shlex.split(args))
    return found


def test_the_image_runs_as_an_unprivileged_user() -> None:
    users = [args for op, args in instructions() if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert users[-1].split(":")[0].isdigit()  # numeric, so runAsNonRoot can verify it


def test_every_copied_path_exists_and_the_build_context_lets_it_in() -> None:
    ignore = (REPO / ".dockerignore").read_text().split()
    for op, args in instructions():
        if op == "COPY" and not args.startswith("--from"):
            *sources, _ = args.split()
            for source in sources:
                assert (REPO / source).exists(), source
                assert f"!{source.rstrip('/')}/" in ignore or f"!{source}" in ignore, f"{source} is excluded by .dockerignore"


def test_the_image_installs_only_locked_runtime_dependencies() -> None:
    runs = " ".join(args for op, args in instructions() if op == "RUN")
    assert "-c /src/requirements.lock" in runs  # every version pinned by the lock
    assert "pytest" not in runs


def test_container_defaults_listen_on_all_interfaces_and_keep_data_in_the_volume() -> None:
    variables = env()
    volumes = [args for op, args in instructions() if op == "VOLUME"]
    assert volumes == ['["/data"]']
    assert variables["INTAKE_SMTP_HOST"] == "0.0.0.0"  # intake's SMTP receiver, reachable from outside too
    for service in SERVICES:
        known = service_env_vars(service)
        assert variables[f"{prefix_of(service)}HTTP_HOST"] == "0.0.0.0"
        url = variables.get(f"{prefix_of(service)}DATABASE_URL")
        if f"{prefix_of(service)}DATABASE_URL" in known:
            assert url == f"sqlite+aiosqlite:////data/{service}.db"
        else:
            assert url is None
    exposed = next(args for op, args in instructions() if op == "EXPOSE").split()
    smtp_port = service_env_vars("intake")["INTAKE_SMTP_PORT"]
    assert sorted(map(int, exposed)) == sorted([*DEFAULT_PORTS.values(), smtp_port])
    assert variables["PYTHONDONTWRITEBYTECODE"] == "1"  # the root filesystem is read-only


def test_the_default_command_is_a_service_module() -> None:
    cmd = next(args for op, args in reversed(instructions()) if op == "CMD")
    module = cmd.strip('[]').replace('"', "").split(", ")[-1]
    assert (REPO / module.replace(".", "/") / "__main__.py").is_file()
