"""Offline checks of the production deployment: docker-compose.yml, .env.example, Dockerfile.

No Docker engine runs here, so the compose file is validated against the Compose
Specification JSON schema (vendored by check-jsonschema) and its services are checked
against the real CLI (`newswire.cli.main`) and the real settings class.
"""

from __future__ import annotations

import ast
import copy
import fnmatch
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from pydantic import BaseModel

from newswire.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"

# The four long-running newswire services and the sub-command each runs.
SERVICE_COMMANDS = {"poller": "poll", "processor": "process", "indexer": "index", "web": "serve"}
SEARCH_SERVICES = ("processor", "indexer", "web")
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|API_KEY|ENCRYPTIONKEY|ENCRYPTION_KEY")
# Compose interpolation: $$ (a literal $), ${VAR}, ${VAR:-default}, ${VAR-default},
# ${VAR:?error}, ${VAR?error}, $VAR.
INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(Exception):
    pass


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Resolve compose variables in every string of ``value``, as `docker compose` does."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        current = env.get(name)
        unset_or_empty = not current
        if op in (":-", "-"):
            use_default = unset_or_empty if op == ":-" else current is None
            return arg if use_default else current  # type: ignore[return-value]
        if op in (":?", "?"):
            missing = unset_or_empty if op == ":?" else current is None
            if missing:
                raise MissingVariable(f"{name}: {arg}")
        return current or ""

    return INTERPOLATION.sub(one, value)


def variables_used(text: str) -> set[str]:
    return {m["braced"] or m["bare"] for m in INTERPOLATION.finditer(text) if not m["escaped"]}


def read_env_file(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f"{path.name}: not NAME=value: {line!r}"
        env[name.strip()] = value.strip()
    return env


def example_env() -> dict[str, str]:
    """.env.example with every empty secret filled in, as an operator would."""
    env = read_env_file(ENV_EXAMPLE)
    return {k: (v or f"test-{k.lower()}-0123456789abcdef0123456789" if SECRET_NAME.search(k)
                else v) for k, v in env.items()}


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def resolved_compose() -> dict[str, Any]:
    return interpolate(load_compose(), example_env())


def compose_validator() -> jsonschema.Validator:
    schema = get_builtin_schema("vendor.compose-spec")
    assert "draft-07" in schema["$schema"]
    validator = jsonschema.Draft7Validator
    return validator(schema, format_checker=validator.FORMAT_CHECKER)


def is_newswire_image(service: dict[str, Any]) -> bool:
    build = service.get("build")
    return isinstance(build, dict) and build.get("context") == "." or build == "."


def settings_field(dotted_env: str) -> bool:
    """Does NEWSWIRE_A__B name a real field of Settings (nested with __), or NEWSWIRE_SMTP_X
    one of the e-mail channel's own settings?"""
    from processors.alerts.channels import SmtpSettings

    if dotted_env.startswith("NEWSWIRE_SMTP_") and "__" not in dotted_env:
        return dotted_env.removeprefix("NEWSWIRE_SMTP_").lower() in SmtpSettings.model_fields
    if dotted_env.startswith("NEWSWIRE_ALERTS__"):  # the alert stage's own settings
        from processors.alerts.settings import SECRET_NAME, AlertSettings

        name = dotted_env.removeprefix("NEWSWIRE_ALERTS__").lower()
        if name.startswith("secrets__"):
            return re.fullmatch(SECRET_NAME, name.removeprefix("secrets__")) is not None
        return name in AlertSettings.model_fields
    parts = dotted_env.removeprefix("NEWSWIRE_").lower().split("__")
    model: type[BaseModel] = Settings
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if i < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def healthcheck_url(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    text = " ".join(test) if isinstance(test, list) else test
    match = re.search(r"https?://[^'\"\s]+", text)
    assert match, f"no URL in healthcheck {test!r}"
    return match.group(0)


# ---------------------------------------------------------------- schema


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    validator = compose_validator()
    for document in (load_compose(), resolved_compose()):
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
        assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_schema_check_rejects_a_broken_compose_file() -> None:
    # The validator must be able to fail: a misspelt key and a wrong type are both caught.
    broken = copy.deepcopy(load_compose())
    broken["services"]["web"]["healthcheck"]["retires"] = 5
    broken["services"]["kafka"]["ports"] = "9094:9094"
    messages = [e.message for e in compose_validator().iter_errors(broken)]
    assert any("retires" in m for m in messages), messages
    assert any("is not of type 'array'" in m for m in messages), messages


# ---------------------------------------------------------------- commands and images


def test_each_newswire_service_runs_a_registered_subcommand() -> None:
    from newswire.cli import main

    services = resolved_compose()["services"]
    registered = set(main.commands)
    missing = sorted(set(SERVICE_COMMANDS.values()) - registered)
    assert not missing, f"sub-commands used by docker-compose.yml but not registered: {missing}"
    for name, subcommand in SERVICE_COMMANDS.items():
        service = services[name]
        assert is_newswire_image(service), name
        assert "entrypoint" not in service, f"{name} must use the image's ENTRYPOINT newswire"
        command = service["command"]
        assert command[0] == subcommand, (name, command)
        # The arguments parse with the real click command (no unknown option slips through).
        main.commands[subcommand].make_context(subcommand, list(command[1:]))


def test_one_shot_helpers_call_real_code() -> None:
    services = resolved_compose()["services"]
    # topic-init runs `newswire topics` through the image's ENTRYPOINT, with arguments the
    # real click command accepts.
    from newswire.cli import main

    init = services["topic-init"]
    assert is_newswire_image(init) and "entrypoint" not in init
    assert init["command"][0] == "topics"
    main.commands["topics"].make_context("topics", list(init["command"][1:]))
    # kibana-import runs the script and NDJSON file from the mounted deploy/kibana folder.
    importer = services["kibana-import"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in importer["volumes"]}
    for container_path in (importer["entrypoint"][-1], importer["command"][0]):
        folder, _, filename = container_path.rpartition("/")
        assert folder in mounts, container_path
        assert (ROOT / mounts[folder] / filename).is_file(), container_path
    script = (ROOT / mounts["/kibana"] / "import_saved_objects.py").read_text()
    for key in importer["environment"]:
        assert f'"{key}"' in script, f"kibana-import sets {key}, which the script never reads"
    assert importer["environment"]["KIBANA_URL"].startswith("http://kibana:")
    # es-users gets every variable the setup script insists on.
    setup = (ROOT / "deploy" / "compose" / "elastic-setup.sh").read_text()
    needed = set(re.findall(r"^\s*need (\w+)", setup, flags=re.M))
    assert needed and needed <= set(services["es-users"]["environment"]), needed


def test_images_are_pinned_and_match_the_python_client() -> None:
    import importlib.metadata

    services = resolved_compose()["services"]
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        image = service.get("image", "")
        if is_newswire_image(service):
            continue
        repo, _, tag = image.rpartition(":")
        assert repo and re.fullmatch(r"\d+\.\d+\.\d+", tag), f"{name}: unpinned image {image!r}"
    es_tag = services["elasticsearch"]["image"].rsplit(":", 1)[1]
    kibana_tag = services["kibana"]["image"].rsplit(":", 1)[1]
    assert es_tag == kibana_tag, "Kibana must run the same version as Elasticsearch"
    # elasticsearch-py N sends `compatible-with=N`; an older server major rejects it.
    client_major = importlib.metadata.version("elasticsearch").split(".")[0]
    assert es_tag.split(".")[0] == client_major
    assert services["kafka"]["image"].startswith("apache/kafka:")


# ---------------------------------------------------------------- environment


def test_every_newswire_setting_in_compose_is_a_real_setting() -> None:
    services = resolved_compose()["services"]
    for name, service in services.items():
        if not is_newswire_image(service):
            continue
        for key in service.get("environment", {}):
            if key.startswith("NEWSWIRE_"):
                assert settings_field(key), f"{name}: {key} is not a field of newswire Settings"
    # the check itself can fail
    assert not settings_field("NEWSWIRE_SEARCH__ELASTICSEARCH_ULR")
    assert not settings_field("NEWSWIRE_SMTP_HOTS")
    assert not settings_field("NEWSWIRE_WEB__PORT__X")


@pytest.mark.parametrize("name", sorted(SERVICE_COMMANDS))
def test_service_environment_builds_the_intended_settings(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = resolved_compose()["services"]
    service = services[name]
    env = service["environment"]
    for key in [k for k in os.environ if k.startswith("NEWSWIRE_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    settings = Settings()

    # Kafka: the INTERNAL listener the broker advertises on the compose network.
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    internal = re.search(r"INTERNAL://([^,]+)", advertised)
    assert internal and settings.kafka.bootstrap_servers == internal.group(1)
    assert settings.kafka.partitions >= 2
    # Metrics on the port the healthcheck uses; the web app serves /metrics on its own port.
    if name != "web":
        assert settings.metrics_port > 0
        assert f":{settings.metrics_port}/metrics" in healthcheck_url(service)
    else:
        assert settings.metrics_port == 0
    assert str(settings.data_dir) == "/data"
    if name in ("poller", "processor"):
        # Feed polls and article fetches share one per-host budget: the same file, on a
        # volume both mount.
        limits = settings.fetch.host_limits_file
        assert settings.fetch.share_host_limits and limits is not None
        assert f"host-limits:{limits.parent}" in service["volumes"]

    if name in SEARCH_SERVICES:
        assert settings.search.uses_elasticsearch and settings.search.backend == "elasticsearch"
        url = settings.search.elasticsearch_url or ""
        assert url.startswith("https://elasticsearch:"), "TLS to the compose Elasticsearch"
        assert settings.search.username and settings.search.password is not None
        mounted = [m.split(":")[1] for m in service.get("volumes", []) if m.startswith("certs:")]
        assert settings.search.ca_certs and any(
            str(settings.search.ca_certs).startswith(f"{m}/") for m in mounted
        ), "the CA certificate path must be inside the mounted certs volume"
        assert settings.search.index_prefix == "newswire"
    if name == "web":
        assert settings.web.host == "0.0.0.0"
        assert settings.web.token is not None
        assert settings.web.cors_origins == []
        assert healthcheck_url(service) == f"http://127.0.0.1:{settings.web.port}/healthz"
        published = [p for p in service["ports"] if p.endswith(f":{settings.web.port}")]
        assert published and all(p.startswith("127.0.0.1:") for p in published)
    if name == "processor":
        from processors.alerts.channels import SmtpSettings

        smtp = SmtpSettings()
        assert smtp.port == 587 and smtp.starttls and not smtp.host  # off until configured
    if name == "poller":
        assert settings.feeds_file is not None
        targets = [c["target"] for c in service["configs"]]
        assert str(settings.feeds_file) in targets
        feeds_config = load_compose()["configs"]["feeds"]["file"]
        host_file = ROOT / interpolate(feeds_config, example_env())
        urls = [u for u in host_file.read_text().split() if u]
        assert urls and all(u.startswith("https://") for u in urls)


def test_secrets_come_from_env_file_never_inline() -> None:
    raw = load_compose()
    found = 0
    for name, service in raw["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key) and not key.endswith("USERNAME"):
                found += 1
                # ${VAR:?message} or ${VAR}: no default, so an empty .env fails fast;
                # an optional secret may default to empty (${VAR:-}), never to a value.
                reference = re.fullmatch(r"\$\{[A-Z0-9_]+(:\?[^}]*|:-)?\}", str(value))
                assert reference, (name, key, value)
    assert found >= 8
    # A compose run without the secrets refuses to start.
    env = {k: v for k, v in example_env().items() if not SECRET_NAME.search(k)}
    with pytest.raises(MissingVariable, match="ELASTIC_PASSWORD|NEWSWIRE_ES_PASSWORD"):
        interpolate(raw, env)
    # .env.example ships no secret values.
    for key, value in read_env_file(ENV_EXAMPLE).items():
        if SECRET_NAME.search(key):
            assert value == "", f".env.example must leave {key} empty"


def test_env_example_documents_every_compose_variable() -> None:
    used = variables_used(COMPOSE.read_text())
    lines = ENV_EXAMPLE.read_text().splitlines()
    documented = read_env_file(ENV_EXAMPLE)
    assert used == set(documented), (
        f"undocumented: {sorted(used - set(documented))}; unused: {sorted(set(documented) - used)}"
    )
    for i, line in enumerate(lines):
        if line and not line.startswith("#") and "=" in line:
            assert i > 0 and lines[i - 1].startswith("#") or documented.get(
                lines[i - 1].partition("=")[0]
            ) is not None, f".env.example: {line.split('=')[0]} has no comment above it"


# ---------------------------------------------------------------- health and order


def test_long_running_services_have_healthchecks_and_restart_policies() -> None:
    services = resolved_compose()["services"]
    for name, service in services.items():
        one_shot = service.get("restart", "no") == "no"
        if one_shot:
            continue
        assert service.get("restart") in ("unless-stopped", "always", "on-failure"), name
        check = service.get("healthcheck")
        assert check and not check.get("disable") and check["test"][0] in ("CMD", "CMD-SHELL"), name
    for name in SERVICE_COMMANDS:
        test = services[name]["healthcheck"]["test"]
        # the image has python, maybe not curl
        assert test[:3] == ["CMD", "python", "-c"], name
        ast.parse(test[3])


def test_dependency_order() -> None:
    services = resolved_compose()["services"]

    def condition(name: str, dependency: str) -> str | None:
        deps = services[name].get("depends_on", {})
        return deps.get(dependency, {}).get("condition") if isinstance(deps, dict) else None

    for name, service in services.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            target = services[dependency]
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in target, f"{name} waits for {dependency} to be healthy"
            if spec["condition"] == "service_completed_successfully":
                assert target.get("restart", "no") == "no", f"{dependency} must be a one-shot"

    for name in SERVICE_COMMANDS:
        assert condition(name, "kafka") == "service_healthy", name
        assert condition(name, "topic-init") == "service_completed_successfully", name
    for name in SEARCH_SERVICES:
        assert condition(name, "es-users") == "service_completed_successfully", name
    assert condition("topic-init", "kafka") == "service_healthy"
    assert condition("elasticsearch", "es-certs") == "service_completed_successfully"
    assert condition("es-users", "elasticsearch") == "service_healthy"
    assert condition("kibana", "es-users") == "service_completed_successfully"
    assert condition("kibana-import", "kibana") == "service_healthy"

    # No cycle: a topological order exists.
    order: list[str] = []
    pending = dict.fromkeys(services)
    while pending:
        ready = [n for n in pending if set(services[n].get("depends_on") or {}) <= set(order)]
        assert ready, f"dependency cycle among {sorted(pending)}"
        order.extend(ready)
        for n in ready:
            pending.pop(n)


# ---------------------------------------------------------------- security and Kafka


def test_elasticsearch_runs_with_security_and_tls() -> None:
    services = resolved_compose()["services"]
    es = services["elasticsearch"]["environment"]
    assert es["xpack.security.enabled"] == "true"
    assert es["xpack.security.http.ssl.enabled"] == "true"
    assert es["xpack.security.transport.ssl.enabled"] == "true"
    assert es["ELASTIC_PASSWORD"].startswith("test-")  # from .env, not inline
    kibana = services["kibana"]["environment"]
    assert kibana["ELASTICSEARCH_USERNAME"] == "kibana_system"
    assert "https://" in kibana["ELASTICSEARCH_HOSTS"]
    # Nothing is published beyond the host's loopback.
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on all interfaces"
    script = ROOT / "deploy" / "compose" / "elastic-setup.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "kibana_system/_password" in text and "_security/user/" in text


def test_kafka_runs_in_kraft_mode_without_zookeeper() -> None:
    services = resolved_compose()["services"]
    assert not any("zookeeper" in n or "zookeeper" in str(s.get("image")) for n, s in
                   services.items())
    env = services["kafka"]["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@kafka:")
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"])
    assert not any(k.startswith("KAFKA_ZOOKEEPER") for k in env)
    log_dir = env["KAFKA_LOG_DIRS"]
    volumes = services["kafka"]["volumes"]
    assert any(v.endswith(f":{log_dir}") for v in volumes), "broker data on a volume"


# ---------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_builds_a_non_root_newswire_image() -> None:
    instructions = dockerfile_instructions()
    args = dict(r.split("=", 1) for w, r in instructions if w == "ARG" and "=" in r)
    bases = [interpolate(r.split()[0], args) for w, r in instructions if w == "FROM"]
    assert bases and all(b == "python:3.11-slim" for b in bases), bases
    runs = " ".join(r for w, r in instructions if w == "RUN")
    assert re.search(r"pip install\s+/src", runs)
    final_stage = instructions[max(i for i, (w, _) in enumerate(instructions) if w == "FROM"):]
    users = [r for w, r in final_stage if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert ("ENTRYPOINT", '["newswire"]') in final_stage
    exposed = {p for w, r in final_stage if w == "EXPOSE" for p in r.split()}
    assert {"8600", "9100"} <= exposed
    env_text = " ".join(r for w, r in final_stage if w == "ENV")
    assert "NEWSWIRE_DATA_DIR=/data" in env_text and "NEWSWIRE_WEB__HOST=0.0.0.0" in env_text


def test_dockerignore_keeps_what_pip_install_needs() -> None:
    import tomllib

    ignored = {
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {"pyproject.toml", pyproject["project"]["readme"]}
    includes = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    needed |= {p.rstrip("*") for p in includes}
    assert not needed & ignored, needed & ignored
    assert {".git", ".venv", ".env"} <= ignored


def build_context(dest: Path) -> Path:
    """Copy the repo as `docker build` would send it: minus what .dockerignore excludes."""
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]

    def matches(path: str, pattern: str) -> bool:
        if pattern.startswith("**/"):  # at any depth
            tail = pattern.removeprefix("**/")
            return fnmatch.fnmatchcase(path, tail) or fnmatch.fnmatchcase(path, f"*/{tail}")
        return fnmatch.fnmatchcase(path, pattern)

    def ignored(rel: str) -> bool:
        # Docker's rules: the last matching line wins; "!" re-includes.
        verdict = False
        for rule in rules:
            negate = rule.startswith("!")
            if matches(rel, rule.lstrip("!").rstrip("/")):
                verdict = not negate
        return verdict

    for folder, dirs, files in os.walk(ROOT):
        base = Path(folder).relative_to(ROOT).as_posix()
        prefix = "" if base == "." else f"{base}/"
        # an ignored folder is skipped whole (nothing below it is re-included here)
        dirs[:] = [d for d in dirs if not ignored(prefix + d)]
        for name in files:
            if not ignored(prefix + name):
                target = dest / (prefix + name)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(folder) / name, target)
    return dest


def test_the_image_build_context_installs_the_whole_package(tmp_path: Path) -> None:
    """What the Dockerfile's `pip install /src` gets: the filtered build context must hold every
    package, and setuptools' package discovery + package-data (as pyproject.toml configures
    them) must carry every file of those packages (templates, taxonomy, static files...)."""
    import tomllib

    from setuptools import find_namespace_packages, find_packages

    context = build_context(tmp_path / "src")
    assert not (context / "tests").exists() and not (context / ".venv").exists()
    assert not (context / ".git").exists() and not (context / ".env").exists()
    pyproject = tomllib.loads((context / "pyproject.toml").read_text())
    assert (context / pyproject["project"]["readme"]).is_file()
    tool = pyproject["tool"]["setuptools"]
    find = tool["packages"]["find"]
    # pyproject's packages.find defaults to namespaces = true: data folders count as packages
    finder = find_namespace_packages if find.get("namespaces", True) else find_packages
    packages = finder(str(context), include=find["include"])
    assert {"newswire", "ingest", "processors", "indexer"} <= set(packages)
    patterns = tool.get("package-data", {}).get("*", [])
    missing = []
    for package in packages:
        folder = context / package.replace(".", "/")
        for path in folder.iterdir():
            if not path.is_file() or path.suffix in (".py", ".pyc"):
                continue
            if not any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns):
                missing.append(path.relative_to(context).as_posix())
    assert not missing, f"files the image would lack (extend package-data): {sorted(missing)}"
    scripts = pyproject["project"]["scripts"]
    assert scripts["newswire"] == "newswire.cli:main"
