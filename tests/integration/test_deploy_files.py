"""The container and Kubernetes files (Dockerfile, compose.yaml, packaging/kubernetes/portico.yaml):
their portico command lines are accepted and serve the example site with the probes they name,
and the stop timings fit portico's graceful timeout. Building and running the image itself needs
podman (PORTICO_CONTAINER_TEST=1: see docs/deployment.md for the settings this kind of machine
needs); the rest runs the same command lines with the binary under test."""

import json
import os
import re
import shutil
import subprocess
import urllib.request

import pytest
import yaml

from servers import free_port, portico_binary
from wsgi_support import wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "examples", "django")
GRACEFUL_DEFAULT = 30


def dockerfile_command():
    """The image's ENTRYPOINT + CMD (JSON form), as a list."""
    text = open(os.path.join(ROOT, "Dockerfile")).read().replace("\\\n", " ")
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))
    return entry + cmd


def k8s_documents():
    with open(os.path.join(ROOT, "packaging", "kubernetes", "portico.yaml")) as handle:
        return {doc["kind"]: doc for doc in yaml.safe_load_all(handle) if doc}


def localized(argv, tmp_path):
    """argv with the image's paths and ports made local: /app → the example, free ports."""
    ports = {}
    out = []
    static = tmp_path / "staticfiles"
    static.mkdir(exist_ok=True)
    for arg in argv:
        arg = arg.replace("/static/=/app/staticfiles/", "/static/=%s/" % static)
        arg = arg.replace("/app", EXAMPLE)
        match = re.fullmatch(r"0\.0\.0\.0:(\d+)", arg)
        if match:
            ports[int(match.group(1))] = free_port()
            arg = "127.0.0.1:%d" % ports[int(match.group(1))]
        out.append(arg)
    return out, ports


def serve(argv, tmp_path):
    argv, ports = localized(argv, tmp_path)
    assert argv[0] == "/usr/local/bin/portico"
    log = open(tmp_path / "portico.log", "wb")
    env = dict(os.environ, DATABASE_URL="sqlite:///%s/db.sqlite3" % tmp_path)
    proc = subprocess.Popen([portico_binary()] + argv[1:], stdout=log, stderr=subprocess.STDOUT,
                            env=env)
    return proc, ports


def get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=3) as r:
            return r.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def check_serves(argv, probes, tmp_path):
    proc, ports = serve(argv, tmp_path)
    try:
        wait_until(lambda: get(ports[9100], "/health/live") == 200 or proc.poll() is not None,
                   20.0)
        assert proc.poll() is None, open(tmp_path / "portico.log").read()[-3000:]
        for path, port in probes:
            assert get(ports[port], path) == 200, path
        # The app itself answers on 8000 (the admin's login page needs no database).
        assert get(ports[8000], "/admin/login/") == 200
        assert get(ports[9100], "/metrics") == 200
    finally:
        proc.terminate()
        assert proc.wait(GRACEFUL_DEFAULT + 5) == 0


def test_dockerfile_command_serves_with_its_probes(tmp_path):
    argv = dockerfile_command()
    assert "--metrics-bind" in argv and "-w" in argv
    compose = yaml.safe_load(open(os.path.join(ROOT, "compose.yaml")))
    web = compose["services"]["web"]
    health = " ".join(web["healthcheck"]["test"])
    assert "http://127.0.0.1:9100/health/ready" in health
    # compose's stop timeout leaves the graceful stop its 30 s.
    assert int(web["stop_grace_period"].rstrip("s")) > GRACEFUL_DEFAULT
    assert {"db", "setup", "web"} <= set(compose["services"])
    assert "static" in compose["volumes"]
    check_serves(argv, [("/health/ready", 9100), ("/health/live", 9100)], tmp_path)


def test_kubernetes_manifests_fit_portico(tmp_path):
    docs = k8s_documents()
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= set(docs)
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    args = container["args"]
    graceful = int(args[args.index("--graceful-timeout") + 1]) if "--graceful-timeout" in args \
        else GRACEFUL_DEFAULT
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["terminationGracePeriodSeconds"] > graceful + pre_stop
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    probes = []
    for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        probe = container[kind]["httpGet"]
        probes.append((probe["path"], ports[probe["port"]]))
    assert container["resources"]["limits"]["cpu"]
    hpa = docs["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == docs["Deployment"]["metadata"]["name"]
    check_serves(container["command"] + args, probes, tmp_path)


@pytest.mark.skipif(os.environ.get("PORTICO_CONTAINER_TEST") != "1",
                    reason="builds the image with podman (minutes): PORTICO_CONTAINER_TEST=1")
def test_image_builds_and_serves(tmp_path):
    if not shutil.which("podman"):
        pytest.skip("podman is not installed")
    base = os.environ.get("PORTICO_CONTAINER_BASE", "debian:bookworm-slim")
    tag = "localhost/portico-example:test"
    build = subprocess.run(["podman", "build", "--pull=never", "--build-arg", "BASE=" + base,
                            "-t", tag, ROOT], capture_output=True, timeout=3600)
    assert build.returncode == 0, build.stderr.decode()[-3000:]
    port, metrics = free_port(), free_port()
    name = "portico-test-%d" % os.getpid()
    run = subprocess.run(["podman", "run", "-d", "--rm", "--name", name, "--network", "host",
                          "--entrypoint", "/usr/local/bin/portico", tag, "--chdir", "/app",
                          "--bind", "127.0.0.1:%d" % port, "-w", "auto",
                          "--metrics-bind", "127.0.0.1:%d" % metrics,
                          "--static", "/static/=/app/staticfiles/", "mysite.wsgi:application"],
                         capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr.decode()
    try:
        wait_until(lambda: get(metrics, "/health/ready") == 200, 30.0)
        assert get(port, "/static/catalog/style.css") == 200
    finally:
        stop = subprocess.run(["podman", "stop", "-t", "40", name], capture_output=True,
                              timeout=60)
        assert stop.returncode == 0
