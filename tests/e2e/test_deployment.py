"""docker-compose.yml and the Dockerfile: everything the code expects is there.

Docker cannot run here; these tests read the files, and `docker-compose config` (Debian's
docker-compose, which `make test` installs when run as root) checks the compose file is valid.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import tomllib
from pathlib import Path

import yaml

from tests.system_packages import require_command

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def _env(service: str) -> dict[str, str]:
    return {key: str(value) for key, value in SERVICES[service]["environment"].items()}


def _mounts(service: str) -> dict[str, str]:
    """Volume name (or host path) -> mount path in the container."""
    return {volume.split(":")[0]: volume.split(":")[1] for volume in SERVICES[service]["volumes"]}


# What the isolation package may import inside the Label Studio image: the standard library,
# Label Studio's own packages and apps, and itself (relative imports).
LABEL_STUDIO_PROVIDES = {"django", "rest_framework", "label_studio", "core", "projects"}
LABEL_STUDIO_PROVIDES |= {"organizations", "users", "tasks", "labels_manager", "webhooks"}
LABEL_STUDIO_PROVIDES |= {"data_manager"}


def test_services_and_volumes():
    assert set(SERVICES) == {"db", "label-studio", "backend"}
    volumes = {"pg-data", "ls-data", "backend-state", "bundles", "manager-data"}
    assert set(COMPOSE["volumes"]) == volumes
    for service in SERVICES.values():
        assert "healthcheck" in service or service.get("build")  # backend: Dockerfile's
    assert "HEALTHCHECK" in (REPO / "Dockerfile").read_text()


def test_label_studio_is_the_tested_version_on_postgres():
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    tested = next(p["version"] for p in lock["package"] if p["name"] == "label-studio")
    assert SERVICES["label-studio"]["image"] == f"heartexlabs/label-studio:{tested}"
    env = _env("label-studio")
    assert env["DJANGO_DB"] == "default"
    assert env["POSTGRE_HOST"] == "db"
    assert SERVICES["label-studio"]["depends_on"]["db"]["condition"] == "service_healthy"


def test_bundles_are_served_from_the_same_path_the_backend_publishes_from():
    env = _env("label-studio")
    assert env["LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED"] == "true"
    root = env["LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"]
    assert _mounts("label-studio")["bundles"] == root
    assert _mounts("backend")["bundles"] == root
    assert f"--files-root {root}" in (REPO / "docker-compose.yml").read_text()


def test_ssrf_protection_is_on_and_allows_the_backend_alone():
    """Label Studio calls no private address but the backend's (issue 29: an annotator's URL
    import fetched a loopback service)."""
    import ipaddress

    from ls_backend.isolation.ssrf import ALLOWED_ADDRESSES_ENV

    env = _env("label-studio")
    assert env["ML_BLOCK_LOCAL_IP"] == "true"
    assert env["SSRF_PROTECTION_ENABLED"] == "true"
    backend = SERVICES["backend"]["networks"]["xnaming"]["ipv4_address"]
    assert env[ALLOWED_ADDRESSES_ENV] == backend
    (subnet,) = [c["subnet"] for c in COMPOSE["networks"]["xnaming"]["ipam"]["config"]]
    assert ipaddress.ip_address(backend) in ipaddress.ip_network(subnet)
    for service in ("db", "label-studio"):  # one network: the backend's address is the one above
        assert SERVICES[service]["networks"] == ["xnaming"]


def test_the_backends_secret_comes_from_env_and_is_required(tmp_path):
    env = _env("backend")
    for name in ("XNAMING_BACKEND_USER", "XNAMING_BACKEND_PASSWORD"):
        assert env[name] == f"${{{name}:?set {name} in .env " + env[name].split(" in .env ")[1]
    assert "XNAMING_BACKEND" not in " ".join(SERVICES["backend"]["command"])  # not on argv
    binary = require_command("docker-compose", needed_for="checking docker-compose.yml")
    example = (REPO / ".env.example").read_text().splitlines()
    partial = tmp_path / "partial.env"
    partial.write_text("\n".join(x for x in example if not x.startswith("XNAMING_BACKEND_PASSW")))
    result = subprocess.run(
        [binary, "--env-file", str(partial), "-f", str(REPO / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("XNAMING_BACKEND")},
    )
    assert result.returncode != 0
    assert "set XNAMING_BACKEND_PASSWORD in .env" in result.stderr


def test_publish_records_its_projects_on_a_volume():
    env = _env("backend")
    assert _mounts("backend")["manager-data"] == env["XNAMING_DATA_DIR"]
    assert (
        f"mkdir -p /data/backend /data/bundles {env['XNAMING_DATA_DIR']}"
        in (REPO / "Dockerfile").read_text()
    )


def test_backend_gets_every_variable_the_code_reads():
    source = "\n".join(path.read_text() for path in (REPO / "ls_backend").glob("*.py"))
    read = set(re.findall(r"os\.environ(?:\.get)?[(\[]\s*\"([A-Z_]+)\"", source))
    assert read, "expected the backend to read its settings from the environment"
    assert read <= set(_env("backend")), (
        f"missing in docker-compose.yml: {read - set(_env('backend'))}"
    )
    command = " ".join(SERVICES["backend"]["command"])
    assert command.startswith("xnaming ls backend")
    assert "--host=0.0.0.0" in command


def test_env_example_defines_every_variable_the_compose_file_uses():
    used = set(re.findall(r"\$\{([A-Z_]+)", (REPO / "docker-compose.yml").read_text()))
    example = (REPO / ".env.example").read_text()
    defined = set(re.findall(r"^([A-Z_]+)=", example, flags=re.MULTILINE))
    assert used <= defined, f"add to .env.example: {sorted(used - defined)}"
    assert "/.env" in (REPO / ".gitignore").read_text().splitlines()  # secrets stay out of git


def test_dockerfile_installs_every_package_from_the_lock():
    dockerfile = (REPO / "Dockerfile").read_text()
    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    for package in {p.rstrip("*").split(".")[0] for p in include}:  # sub-packages come with theirs
        assert f"COPY {package} ./{package}" in dockerfile
    assert "uv sync --locked" in dockerfile


def test_docker_compose_accepts_the_file(tmp_path):
    binary = require_command("docker-compose", needed_for="checking docker-compose.yml")
    result = subprocess.run(
        [
            binary,
            "--env-file",
            str(REPO / ".env.example"),
            "-f",
            str(REPO / "docker-compose.yml"),
            "config",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "label-studio" in result.stdout


def test_label_studio_loads_the_isolation_settings_from_a_read_only_mount():
    from ls_backend.server import ISOLATION_SETTINGS

    env = _env("label-studio")
    assert env["DJANGO_SETTINGS_MODULE"] == ISOLATION_SETTINGS
    mounts = {
        volume.split(":")[1]: volume.split(":")
        for volume in SERVICES["label-studio"]["volumes"]
        if volume.startswith("./")
    }
    # The settings module resolves, through PYTHONPATH and a mount, to this repository's file.
    found = []
    for root in env["PYTHONPATH"].split(":"):
        target = f"{root}/{ISOLATION_SETTINGS.replace('.', '/')}.py"
        for inside, (source, _, *mode) in mounts.items():
            if target.startswith(inside + "/"):
                found.append((REPO / source / target[len(inside) + 1 :], mode))
    assert found, f"{ISOLATION_SETTINGS} is on no mount of PYTHONPATH={env['PYTHONPATH']}"
    for path, mode in found:
        assert path.is_file(), path
        assert mode == ["ro"], f"mount it read-only, got {mode}"
    assert env["SENTRY_DSN"] == ""
    # The health check fails while the isolation's API is missing.
    assert "/api/xnaming/annotators" in " ".join(SERVICES["label-studio"]["healthcheck"]["test"])


def test_isolation_package_needs_nothing_the_label_studio_image_lacks():
    """Only the standard library, Label Studio and itself; Python 3.10 syntax (the image's)."""
    import sys

    for path in sorted((REPO / "ls_backend" / "isolation").glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path), feature_version=(3, 10))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                continue  # relative: the package itself
            names = (
                [node.module]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                top = name.split(".")[0]
                allowed = top in sys.stdlib_module_names or top in LABEL_STUDIO_PROVIDES
                allowed |= name.startswith("ls_backend.isolation")
                assert allowed, f"{path.name} imports {name}: not in the Label Studio image"
