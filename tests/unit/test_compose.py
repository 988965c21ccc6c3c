"""docker-compose.yml and the files it uses, checked without a Docker engine: every local file it names
exists, every image is pinned, published ports do not clash, the MODELMON__ variables are valid modelmon
config, dependencies and Prometheus's scrape targets name real services and the ports they expose, and the
Prometheus, Alertmanager and Grafana files each container reads are the ones the repository has."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from modelmon.dashboards.build import DATASOURCE_UID
from pydantic import BaseModel

from modelmon.config import ENV_PREFIX, Config, env_overrides, load_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
MODELMON_IMAGE = "modelmon:0.1.0"
# Where docker/Dockerfile puts the repository inside the image.
IMAGE_SOURCE = PurePosixPath("/opt/modelmon")

_FROM = re.compile(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?\s*$", re.IGNORECASE | re.MULTILINE)
_PIP_FLINK = re.compile(r'pip install "apache-flink==([\d.]+)"')


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def dockerfiles(services: Mapping[str, dict[str, Any]]) -> dict[Path, str]:
    """The Dockerfile text of each distinct build."""
    found = {}
    for service in services.values():
        if "build" in service:
            build = service["build"]
            context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            path = context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
            found[path] = path.read_text()
    return found


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment (map or list syntax), values as the container sees them."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {
        str(name): "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in env.items()
    }


def image_environment(dockerfile: str) -> dict[str, str]:
    """The ENV settings of a Dockerfile's last stage (`ENV A=1 \\ B=2`)."""
    last = dockerfile[[m.start() for m in _FROM.finditer(dockerfile)][-1] :]
    text = re.sub(r"\\\n", " ", last)
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(pair.split("=", 1) for pair in line[4:].split())
    return env


def bind_mounts(service: Mapping[str, Any]) -> list[tuple[Path, PurePosixPath]]:
    """(path on this machine, path in the container) of each bind mount."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
            if source.startswith((".", "/")):
                mounts.append((ROOT / source, PurePosixPath(target)))
        elif volume.get("type") == "bind":
            mounts.append((ROOT / volume["source"], PurePosixPath(volume["target"])))
    return mounts


def in_container(service: Mapping[str, Any], path: str | PurePosixPath) -> Path:
    """The local file a container path of this service shows, through its bind mounts."""
    wanted = PurePosixPath(path)
    for source, target in sorted(bind_mounts(service), key=lambda mount: len(mount[1].parts), reverse=True):
        if wanted == target or target in wanted.parents:
            return source.joinpath(*wanted.parts[len(target.parts) :])
    raise AssertionError(f"{wanted} is not mounted from this repository")


def published(service: Mapping[str, Any]) -> Iterator[tuple[str, int, int]]:
    """(host address, host port, container port) of each published port."""
    for port in service.get("ports", []):
        if isinstance(port, dict):
            yield port.get("host_ip", "0.0.0.0"), int(port["published"]), int(port["target"])
            continue
        parts = str(port).split("/")[0].split(":")
        if len(parts) == 3:
            yield parts[0], int(parts[1]), int(parts[2])
        elif len(parts) == 2:
            yield "0.0.0.0", int(parts[0]), int(parts[1])
        else:
            pytest.fail(f"port {port}: publish it as HOST:CONTAINER, not on a random host port")


def exposed(service: Mapping[str, Any]) -> set[int]:
    """The ports a service's process listens on, as the compose file declares them (`expose`)."""
    return {int(str(port).split("/")[0]) for port in service.get("expose", [])}


def flag(command: list[str], name: str) -> str:
    """The value of `--name=value` in a command."""
    values = [arg.split("=", 1)[1] for arg in command if arg.startswith(f"{name}=")]
    assert len(values) == 1, f"{name} in {command}"
    return values[0]


def host_port(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def modelmon_services(services: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: service for name, service in services.items() if service.get("image") == MODELMON_IMAGE}


# ---------------------------------------------------------------------------------------------------------
# Files and images


def test_every_local_file_exists(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        build = service.get("build")
        if build is not None:
            context = ROOT / build["context"]
            assert context.is_dir(), f"{name}: build context {context}"
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            assert dockerfile.is_file(), f"{name}: {dockerfile}"
            for source in re.findall(r"^COPY\s+(?!--from)(\S+)", dockerfile.read_text(), re.MULTILINE):
                assert (context / source).exists(), f"{dockerfile}: COPY {source}"
        for source, target in bind_mounts(service):
            assert source.exists(), f"{name}: {source} (mounted at {target}) does not exist"
        for key in ("env_file",):
            for path in [service[key]] if isinstance(service.get(key), str) else service.get(key, []):
                assert (ROOT / path).is_file(), f"{name}: {key} {path}"
        # A script of the repository run from the image's copy of it.
        command = service.get("command")
        if isinstance(command, list) and command[0].startswith(f"{IMAGE_SOURCE}/"):
            script = ROOT / PurePosixPath(command[0]).relative_to(IMAGE_SOURCE)
            assert script.is_file() and os.access(script, os.X_OK), f"{name}: {script} missing or not executable"


def test_named_volumes_are_declared(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if isinstance(volume, str) and not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared under volumes:"


def _pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest") and any(char.isdigit() for char in tag)


def test_every_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert "image" in service, f"{name}: no image (a build needs a tag too, so every service shares it)"
        assert _pinned(service["image"]), f"{name}: image {service['image']} has no version tag"
    for path, text in dockerfiles(services).items():
        stages: set[str] = set()
        for image, stage in _FROM.findall(text):
            assert image in stages or _pinned(image), f"{path}: FROM {image} has no version tag"
            if stage:
                stages.add(stage)


def test_one_build_for_the_modelmon_image(services: dict[str, dict[str, Any]]) -> None:
    users = modelmon_services(services)
    assert {"jobmanager", "taskmanager", "flink-job", "exporter", "simulator"} <= set(users)
    # Every service of the image can build it (no pull of a local tag), all from the same recipe.
    assert all(service.get("build") == users["exporter"]["build"] for service in users.values())


def test_flink_versions_agree(services: dict[str, dict[str, Any]]) -> None:
    """The Flink image, the PyFlink the image installs and pyproject's pin are one Flink version."""
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (pyproject,) = [pin.split("==")[1] for pin in pins if pin.startswith("apache-flink==")]
    (text,) = dockerfiles(services).values()
    flink_images = [image for image, _ in _FROM.findall(text) if image.startswith("flink:")]
    assert [image.split(":")[1].split("-")[0] for image in flink_images] == [pyproject]
    assert _PIP_FLINK.findall(text) == [pyproject]


def test_the_build_context_leaves_local_state_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".modelmon", ".git", "jvm/target", "build"} <= ignored


# ---------------------------------------------------------------------------------------------------------
# Ports and dependencies


def test_published_ports_do_not_clash(services: dict[str, dict[str, Any]]) -> None:
    taken: dict[int, str] = {}
    for name, service in services.items():
        for address, port, target in published(service):
            assert address == "127.0.0.1", f"{name}: port {port} is published on {address}, not only locally"
            assert port not in taken, f"{name} and {taken.get(port)} both publish port {port}"
            taken[port] = name
            assert target in exposed(service), f"{name}: publishes {target}, which it does not expose"
    assert {3000, 9090, 9108} <= set(taken)  # Grafana, Prometheus, the exporter


def test_dependencies_name_services(services: dict[str, dict[str, Any]]) -> None:
    graph: dict[str, set[str]] = {}
    for name, service in services.items():
        depends = service.get("depends_on", [])
        conditions = depends if isinstance(depends, dict) else {other: {} for other in depends}
        graph[name] = set(conditions)
        for other, settings in conditions.items():
            assert other in services and other != name, f"{name} depends on unknown service {other}"
            if (settings or {}).get("condition") == "service_healthy":
                assert "healthcheck" in services[other], f"{name} waits for {other} to be healthy; it has no check"
    # No cycle: services can be started in some order.
    done: set[str] = set()
    while len(done) < len(graph):
        ready = {name for name, needs in graph.items() if name not in done and needs <= done}
        assert ready, f"dependency cycle among {sorted(set(graph) - done)}"
        done |= ready


# ---------------------------------------------------------------------------------------------------------
# modelmon's configuration


def _field_path_exists(keys: list[str]) -> bool:
    model: type[BaseModel] = Config
    for depth, key in enumerate(keys):
        field = model.model_fields.get(key)
        if field is None:
            return False
        if depth < len(keys) - 1:
            annotation = field.annotation
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def modelmon_environment(service: Mapping[str, Any], image_env: Mapping[str, str]) -> dict[str, str]:
    """The MODELMON__ variables a modelmon container sees: the image's, overridden by the service's."""
    merged = {**image_env, **environment(service)}
    return {name: value for name, value in merged.items() if name.startswith(ENV_PREFIX)}


def test_modelmon_variables_are_valid_config(services: dict[str, dict[str, Any]]) -> None:
    (dockerfile,) = dockerfiles(services).values()
    image_env = image_environment(dockerfile)
    assert any(name.startswith(ENV_PREFIX) for name in image_env)
    for name, service in modelmon_services(services).items():
        env = modelmon_environment(service, image_env)
        for variable in env:
            keys = variable[len(ENV_PREFIX) :].lower().split("__")
            assert _field_path_exists(keys), f"{name}: {variable} names no config field ({'.'.join(keys)})"
        assert env_overrides(env)  # the loader reads them ...
        cfg = load_config(environ=env)  # ... and the config accepts them
        assert str(cfg.paths.data_dir) == "/data" and cfg.paths.jars_dir is not None
        # Kafka is the compose service, on the port its PLAINTEXT listener has.
        for server in cfg.kafka.bootstrap_servers.split(","):
            host, port = host_port(server)
            assert host in services and port in exposed(services[host]), f"{name}: Kafka at {server}"


def test_the_exporter_listens_on_every_interface(services: dict[str, dict[str, Any]]) -> None:
    service = services["exporter"]
    (dockerfile,) = dockerfiles(services).values()
    cfg = load_config(environ=modelmon_environment(service, image_environment(dockerfile)))
    assert cfg.exporter.host == "0.0.0.0"
    assert service["command"][:4] == ["modelmon", "exporter", "--host", "0.0.0.0"]
    assert cfg.exporter.port in exposed(service)
    assert services["simulator"]["command"][:2] == ["modelmon", "simulate"]


def flink_properties(service: Mapping[str, Any]) -> dict[str, str]:
    """FLINK_PROPERTIES as the Flink image's entrypoint reads it: `key: value` lines."""
    lines = environment(service)["FLINK_PROPERTIES"].splitlines()
    return dict(tuple(part.strip() for part in line.split(":", 1)) for line in lines if line.strip())  # type: ignore[misc]


def test_the_flink_cluster(services: dict[str, dict[str, Any]]) -> None:
    jobmanager, taskmanager = services["jobmanager"], services["taskmanager"]
    assert jobmanager["command"] == "jobmanager" and taskmanager["command"] == "taskmanager"
    settings = flink_properties(jobmanager)
    assert settings == flink_properties(taskmanager)
    assert settings["jobmanager.rpc.address"] == "jobmanager"
    assert settings["metrics.reporter.prom.factory.class"].endswith("PrometheusReporterFactory")
    reporter = int(settings["metrics.reporter.prom.port"])
    assert reporter in exposed(jobmanager) and reporter in exposed(taskmanager)
    # Checkpoints live on a volume every Flink process and the submitter share (paths.data_dir).
    for name in ("jobmanager", "taskmanager", "flink-job"):
        assert "modelmon-data:/data" in services[name]["volumes"], name
    # The one-shot submission: `flink run -py` of the job, against the JobManager's REST port.
    submit = services["flink-job"]
    assert submit.get("restart") == "no"
    script = (ROOT / PurePosixPath(submit["command"][0]).relative_to(IMAGE_SOURCE)).read_text()
    assert re.search(r"exec flink run -t remote .*-d .*-py /opt/modelmon/pipelines/job\.py", script.replace("\\\n", ""))
    assert (ROOT / "pipelines" / "job.py").is_file()
    env = environment(submit)
    assert env["FLINK_REST_ADDRESS"] == "jobmanager" and int(env["FLINK_REST_PORT"]) in exposed(jobmanager)


# ---------------------------------------------------------------------------------------------------------
# Prometheus, Alertmanager, Grafana


def _targets(config: Mapping[str, Any]) -> Iterator[tuple[str, str, int]]:
    """(what, service, port) of every scrape and Alertmanager target."""
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                yield (f"job {job['job_name']}", *host_port(target))
        for dns in job.get("dns_sd_configs", []):
            for name in dns["names"]:
                yield f"job {job['job_name']} (DNS)", name, int(dns["port"])
    for manager in config["alerting"]["alertmanagers"]:
        for static in manager["static_configs"]:
            for target in static["targets"]:
                yield ("alertmanagers", *host_port(target))


def test_prometheus_scrapes_compose_services(services: dict[str, dict[str, Any]]) -> None:
    prometheus = services["prometheus"]
    config_path = flag(prometheus["command"], "--config.file")
    config_file = in_container(prometheus, config_path)
    assert config_file == ROOT / "prometheus" / "prometheus-compose.yml"
    config = yaml.safe_load(config_file.read_text())
    for rule_file in config["rule_files"]:
        assert in_container(prometheus, PurePosixPath(config_path).parent / rule_file).is_file(), rule_file
    seen = set()
    for what, host, port in _targets(config):
        assert host in services, f"{what}: {host} is not a compose service"
        assert port in exposed(services[host]), f"{what}: {host} does not expose {port}"
        seen.add(host)
    assert {"exporter", "jobmanager", "taskmanager", "alertmanager"} <= seen


def test_alertmanager_reads_the_repositorys_config(services: dict[str, dict[str, Any]]) -> None:
    alertmanager = services["alertmanager"]
    config_file = in_container(alertmanager, flag(alertmanager["command"], "--config.file"))
    assert config_file == ROOT / "prometheus" / "alertmanager.yml"


def test_grafana_provisioning(services: dict[str, dict[str, Any]]) -> None:
    grafana = services["grafana"]
    datasources = in_container(grafana, "/etc/grafana/provisioning/datasources")
    (source,) = yaml.safe_load((datasources / "prometheus.yml").read_text())["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "prometheus"
    host, port = host_port(source["url"].removeprefix("http://"))
    assert host in services and port in exposed(services[host])
    providers = in_container(grafana, "/etc/grafana/provisioning/dashboards")
    (provider,) = yaml.safe_load((providers / "modelmon.yml").read_text())["providers"]
    dashboard = in_container(grafana, PurePosixPath(provider["options"]["path"]) / "modelmon.json")
    assert dashboard == ROOT / "dashboards" / "modelmon.json"
    home = environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert in_container(grafana, home) == dashboard


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("promtool", ("check", "config", "prometheus/prometheus-compose.yml")),  # and the rules it loads
        ("amtool", ("check-config", "prometheus/alertmanager.yml")),
    ],
    ids=["promtool", "amtool"],
)
def test_configs_pass_their_tools(tool: str, args: tuple[str, ...]) -> None:
    found = shutil.which(tool)
    if found is None:
        pytest.fail(f"{tool} not found: `make setup` installs Debian's prometheus and prometheus-alertmanager")
    result = subprocess.run([found, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{tool} {' '.join(args)}:\n{result.stdout}{result.stderr}"
