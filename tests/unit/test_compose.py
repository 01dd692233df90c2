"""Static checks of docker-compose.yml, the Dockerfile and .dockerignore.

There is no Docker engine where the tests run, so ``docker compose`` cannot start anything here.
These tests read the files instead and hold them to the rules the system relies on: every service
present and healthy-checked, start-up ordered by real conditions, every command a real ``dearmp``
sub-command, workers scalable (no host ports), a "scaled" profile that runs a second, identical
replica of every worker and of the relay, images pinned, and every queue in ``shared.topology``
consumed by a running service.
"""

from __future__ import annotations

import importlib
import json
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import typer
import typer.main
import yaml
from typer.testing import CliRunner

from services.ops.cli import app
from shared.config import Settings
from shared.messages import EVENT_TYPES
from shared.topology import BINDINGS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

INFRA = {"postgres", "rabbitmq", "mailpit"}
ONE_SHOT = {"migrate"}
WORKERS = {"relay", "resolver", "mailer", "updates"}
DEARMP_LONG_RUNNING = WORKERS | {"intake"}
DEARMP = DEARMP_LONG_RUNNING | ONE_SHOT
# The only container ports the host may reach: intake's site and mailpit's web UI.
PUBLISHED = {"intake": 8000, "mailpit": 8025}
MIGRATE_STEPS = [
    ["db", "upgrade"],
    ["campaigns", "load"],
    ["data", "import-onspd"],
    ["data", "import-constituencies"],
    ["data", "import-mps"],
]


# -- helpers ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    assert COMPOSE.exists(), "docker-compose.yml is missing"
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]  # type: ignore[no-any-return]


def command_lines(command: str | list[str] | None) -> list[list[str]]:
    """A compose ``command`` as the argv of each program it runs (``sh -c 'a && b'`` → two)."""
    if command is None:
        return []
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    if argv[:2] in (["sh", "-c"], ["/bin/sh", "-c"], ["bash", "-c"]):
        script = argv[2]
        assert "||" not in script and ";" not in script, "chain steps with && so a failure stops"
        return [shlex.split(part) for part in script.split("&&")]
    return [argv]


def check_cli(argv: list[str]) -> Any:
    """Walk ``argv`` through the real typer app and parse the leaf command's arguments without
    running it. Fails on an unknown sub-command, a missing argument or an unknown option."""
    assert argv and argv[0] == "dearmp", f"not a dearmp command: {argv}"
    # Duck-typed: recent typer versions ship their own copy of click's classes.
    cmd: Any = typer.main.get_command(app)
    args, path = list(argv[1:]), ["dearmp"]
    while isinstance(getattr(cmd, "commands", None), dict) and args != ["--help"]:
        assert args, f"'{' '.join(path)}' needs a sub-command"
        name = args.pop(0)
        sub = cmd.commands.get(name)
        assert sub is not None, f"'{' '.join(path)}' has no sub-command {name!r}"
        cmd, path = sub, [*path, name]
    if args == ["--help"]:
        result = CliRunner().invoke(app, [*path[1:], "--help"])
        assert result.exit_code == 0, result.output
        return cmd
    try:
        cmd.make_context(path[-1], list(args))
    except Exception as exc:  # click's UsageError family (typer's own copy or click's)
        if not hasattr(exc, "format_message"):
            raise
        pytest.fail(f"'{' '.join(argv)}': {exc.format_message()}")
    return cmd


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...]
        env = dict(item.split("=", 1) for item in env)
    return {k: _interpolate(str(v)) for k, v in env.items()}


def _interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with VAR unset, as on a fresh machine."""
    return re.sub(r"\$\{[A-Z0-9_]+:?-([^}]*)\}", r"\1", value)


def published_ports(service: dict[str, Any]) -> list[int]:
    """Container ports published to the host."""
    out = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            out.append(int(port["target"]))
        else:
            out.append(int(str(port).split("/")[0].rsplit(":", 1)[-1]))
    return out


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def is_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name = image.rsplit("/", 1)[-1]
    return ":" in name and name.rsplit(":", 1)[1] not in ("", "latest")


# -- the checker itself can fail --------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["dearmp", "serve", "mailman"],
        ["dearmp", "serve"],
        ["dearmp", "data", "import-onspd"],  # missing the CSV argument
        ["dearmp", "data", "import-mps", "x.csv", "--loud"],
        ["dearmp", "migrate"],
    ],
)
def test_cli_check_rejects_what_the_cli_would_reject(argv: list[str]) -> None:
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        check_cli(argv)


def test_command_lines_split_shell_chains() -> None:
    assert command_lines(["sh", "-c", "dearmp db upgrade && dearmp status"]) == [
        ["dearmp", "db", "upgrade"],
        ["dearmp", "status"],
    ]
    assert command_lines("dearmp serve relay") == [["dearmp", "serve", "relay"]]


# -- services, health and ordering ------------------------------------------------------------
def test_every_expected_service_is_defined(services: dict[str, Any]) -> None:
    missing = (INFRA | DEARMP) - set(services)
    assert not missing, f"missing services: {sorted(missing)}"


def test_every_long_running_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        if name in ONE_SHOT:
            continue
        check = svc.get("healthcheck") or {}
        assert not check.get("disable"), f"{name}: healthcheck disabled"
        test = check.get("test")
        assert test, f"{name}: no healthcheck"
        if isinstance(test, list):
            assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, f"{name}: bad test {test}"


def test_infrastructure_healthchecks_ask_the_right_tool(services: dict[str, Any]) -> None:
    def joined(name: str) -> str:
        test = services[name]["healthcheck"]["test"]
        return " ".join(test) if isinstance(test, list) else test

    assert "pg_isready" in joined("postgres")
    assert "rabbitmq-diagnostics" in joined("rabbitmq") and "ping" in joined("rabbitmq")
    assert "readyz" in joined("mailpit")


def _probe(service: dict[str, Any]) -> tuple[list[str], str]:
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], "the slim image has no curl: probe with python"
    code = test[3]
    assert "/healthz" in code
    port_var = "DEARMP_HTTP_PORT" if "DEARMP_HTTP_PORT" in code else "DEARMP_METRICS_PORT"
    return [sys.executable, "-c", code], port_var


def test_dearmp_healthchecks_probe_healthz_on_the_port_the_service_listens_on(
    services: dict[str, Any],
) -> None:
    for name in DEARMP_LONG_RUNNING:
        _, port_var = _probe(services[name])
        expected = "DEARMP_HTTP_PORT" if name == "intake" else "DEARMP_METRICS_PORT"
        assert port_var == expected, f"{name}: health is served on {expected}"
        port = env_of(services[name]).get(port_var)
        assert port is not None, f"{name}: set {port_var} so the probe and the server agree"
        assert int(port) > 0, f"{name}: {port_var}=0 picks a random port the probe cannot know"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dearmp_healthcheck_commands_really_work(services: dict[str, Any]) -> None:
    """Run each probe against a real health server (shared.health), then against nothing."""
    from shared.health import serve_health

    port = _free_port()
    server = serve_health(port, {}, host="127.0.0.1")
    try:
        for name in DEARMP_LONG_RUNNING:
            argv, port_var = _probe(services[name])
            ok = subprocess.run(argv, env={port_var: str(port)}, capture_output=True, timeout=20)
            assert ok.returncode == 0, f"{name}: probe failed: {ok.stderr.decode()[-300:]}"
    finally:
        server.shutdown()
        server.server_close()
    closed = _free_port()
    argv, port_var = _probe(services["mailer"])
    down = subprocess.run(argv, env={port_var: str(closed)}, capture_output=True, timeout=20)
    assert down.returncode != 0, "the probe must fail when nothing answers"


def test_every_dependency_waits_on_the_right_condition(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: depends_on needs conditions, not a list"
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            want = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
            assert (spec or {}).get("condition") == want, (
                f"{name} → {dep}: condition must be {want}"
            )
            if want == "service_healthy":
                assert services[dep].get("healthcheck"), f"{dep} has no healthcheck to wait for"


def test_dearmp_services_start_after_infrastructure_and_migration(services: dict[str, Any]) -> None:
    for name in DEARMP_LONG_RUNNING:
        deps = set(services[name].get("depends_on") or {})
        assert {"postgres", "rabbitmq", "migrate"} <= deps, f"{name} depends only on {deps}"
    assert "postgres" in (services["migrate"].get("depends_on") or {})
    assert "mailpit" in (services["mailer"].get("depends_on") or {})


def test_migrate_runs_once(services: dict[str, Any]) -> None:
    assert services["migrate"].get("restart", "no") in ("no", "on-failure")
    assert "healthcheck" not in services["migrate"]


# -- commands ---------------------------------------------------------------------------------
def test_every_dearmp_command_is_a_real_subcommand(services: dict[str, Any]) -> None:
    for name in DEARMP:
        lines = command_lines(services[name].get("command"))
        assert lines, f"{name}: no command"
        for argv in lines:
            check_cli(argv)


def test_each_long_running_service_serves_itself(services: dict[str, Any]) -> None:
    for name in DEARMP_LONG_RUNNING:
        assert command_lines(services[name]["command"]) == [["dearmp", "serve", name]]


def test_migrate_prepares_the_database_in_order(services: dict[str, Any]) -> None:
    lines = command_lines(services["migrate"]["command"])
    assert [argv[1:3] for argv in lines] == MIGRATE_STEPS
    instructions = dockerfile_instructions()
    copied = {
        rest.split()[-1].rstrip("/").removeprefix("./")
        for k, rest in instructions
        if k == "COPY" and "--from" not in rest
    }
    for argv in lines[1:]:
        path = argv[3]
        assert (ROOT / path).exists(), f"{path} does not exist in the repository"
        assert path.split("/")[0] in copied, f"the Dockerfile does not COPY {path.split('/')[0]}/"


# -- scaling, ports, images -------------------------------------------------------------------
def test_only_intake_and_the_mail_ui_publish_ports(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        ports = published_ports(svc)
        if name in PUBLISHED:
            assert ports == [PUBLISHED[name]], f"{name} publishes {ports}"
        else:
            assert not ports, f"{name} publishes host ports {ports}; it could not scale"


def test_workers_can_scale(services: dict[str, Any]) -> None:
    for name in WORKERS:
        svc = services[name]
        assert "container_name" not in svc, f"{name}: a container_name prevents --scale"
        assert svc.get("network_mode") != "host", f"{name}: host networking prevents --scale"


def test_images_are_pinned(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        image = svc.get("image")
        if "build" in svc:
            assert not image or not image.endswith(":latest"), f"{name}: {image}"
            continue
        assert image and is_pinned(image), f"{name}: image {image!r} is not pinned to a version"
    assert services["postgres"]["image"].startswith("postgres:16")
    assert (
        services["rabbitmq"]["image"].startswith("rabbitmq:")
        and "management" in services["rabbitmq"]["image"]
    )
    assert services["mailpit"]["image"].startswith("axllent/mailpit:")


def test_every_dearmp_service_runs_the_project_image(services: dict[str, Any]) -> None:
    for name in DEARMP:
        svc = services[name]
        assert "build" in svc, f"{name}: builds from the Dockerfile"
        build = svc["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        assert (ROOT / context / "Dockerfile").resolve() == DOCKERFILE


# -- the "scaled" profile: two of every worker and two relays ----------------------------------
SCALED = "scaled"


def active(services: dict[str, Any], profiles: set[str]) -> dict[str, Any]:
    """The services ``docker compose --profile P up`` starts: those without profiles, and those
    with one of the given profiles."""
    return {
        name: svc
        for name, svc in services.items()
        if not svc.get("profiles") or set(svc["profiles"]) & profiles
    }


def serving(services: dict[str, Any], kind: str) -> list[str]:
    """Names of the services that run ``dearmp serve <kind>``."""
    return sorted(
        name
        for name, svc in services.items()
        if command_lines(svc.get("command")) == [["dearmp", "serve", kind]]
    )


def test_plain_up_runs_one_of_each_and_needs_no_profile(services: dict[str, Any]) -> None:
    default = active(services, set())
    for name in INFRA | DEARMP:
        assert not services[name].get("profiles"), f"{name} must start without a profile"
    for kind in DEARMP_LONG_RUNNING:
        assert serving(default, kind) == [kind], f"plain `up` runs {serving(default, kind)}"


def test_scaled_profile_runs_two_of_every_worker_and_two_relays(services: dict[str, Any]) -> None:
    scaled = active(services, {SCALED})
    for kind in WORKERS:
        assert len(serving(scaled, kind)) == 2, f"--profile scaled runs {serving(scaled, kind)}"
    # A second intake would need the host's port 8000 too: behind a load balancer, not here.
    assert serving(scaled, "intake") == ["intake"]


def test_only_the_extra_replicas_belong_to_the_profile(services: dict[str, Any]) -> None:
    profiled = {name for name, svc in services.items() if svc.get("profiles")}
    replicas = {name for kind in WORKERS for name in serving(services, kind) if name != kind}
    assert profiled == replicas, f"profiled: {sorted(profiled)}, replicas: {sorted(replicas)}"
    for name in profiled:
        assert services[name]["profiles"] == [SCALED], f"{name}: profiles"


def test_extra_replicas_are_identical_to_the_first(services: dict[str, Any]) -> None:
    for kind in WORKERS:
        original = services[kind]
        for name in serving(services, kind):
            if name == kind:
                continue
            svc = services[name]
            for key in ("command", "environment", "healthcheck", "depends_on", "build", "image"):
                assert svc.get(key) == original.get(key), f"{name}: {key} differs from {kind}'s"
            assert env_of(svc) == env_of(original), f"{name}: environment differs"
            rest = (set(svc) | set(original)) - {"profiles"}
            assert {k: svc.get(k) for k in rest} == {k: original.get(k) for k in rest}, name
            assert not published_ports(svc), f"{name} publishes host ports"
            assert "container_name" not in svc and "hostname" not in svc, name


# -- environment ------------------------------------------------------------------------------
def test_shared_environment_is_one_anchor(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    shared_envs = [
        v
        for k, v in compose.items()
        if k.startswith("x-")
        and isinstance(v, dict)
        and any(str(key).startswith("DEARMP_") for key in v)
    ]
    assert len(shared_envs) == 1, "one x- extension holds the shared DEARMP_* environment"
    shared_env = {k: _interpolate(str(v)) for k, v in shared_envs[0].items()}
    for name in DEARMP:
        env = env_of(services[name])
        assert shared_env.items() <= env.items(), f"{name} does not use the shared environment"


def test_environment_names_are_real_settings(services: dict[str, Any]) -> None:
    fields = set(Settings.model_fields)
    for name in DEARMP:
        for key in env_of(services[name]):
            assert key.startswith("DEARMP_"), f"{name}: {key} is not a Dear MP setting"
            assert key.removeprefix("DEARMP_").lower() in fields, f"{name}: unknown setting {key}"


def test_environment_is_valid_and_points_at_the_compose_services(services: dict[str, Any]) -> None:
    env = env_of(services["mailer"])
    settings = Settings(**{k.removeprefix("DEARMP_").lower(): v for k, v in env.items()})
    assert settings.delivery == "sandbox", "compose must never deliver to real MPs"
    smtp = urlparse(settings.smtp_url)
    assert (smtp.hostname, smtp.port) == ("mailpit", 1025)

    db = urlparse(settings.database_url.replace("+psycopg", ""))
    pg = services["postgres"]["environment"]
    assert db.hostname == "postgres"
    assert (db.username, db.password, db.path.lstrip("/")) == (
        pg["POSTGRES_USER"],
        pg["POSTGRES_PASSWORD"],
        pg["POSTGRES_DB"],
    )

    amqp = urlparse(settings.amqp_url)
    rabbit = services["rabbitmq"].get("environment") or {}
    assert amqp.hostname == "rabbitmq"
    assert (amqp.username, amqp.password) == (
        rabbit.get("RABBITMQ_DEFAULT_USER", "guest"),
        rabbit.get("RABBITMQ_DEFAULT_PASS", "guest"),
    )


def test_intake_listens_where_it_is_published(services: dict[str, Any]) -> None:
    env = env_of(services["intake"])
    assert env.get("DEARMP_HTTP_HOST") == "0.0.0.0", "127.0.0.1 is unreachable from the host"
    assert int(env["DEARMP_HTTP_PORT"]) == PUBLISHED["intake"]
    host_port = str(services["intake"]["ports"][0]).split(":")[-2]
    assert urlparse(env["DEARMP_BASE_URL"]).port == int(host_port), "links in emails must work"


# -- every queue has a consumer ---------------------------------------------------------------
def test_every_queue_has_a_consumer_in_compose(services: dict[str, Any]) -> None:
    served = {
        tuple(argv) for svc in services.values() for argv in command_lines(svc.get("command"))
    }
    for service in BINDINGS:
        assert ("dearmp", "serve", service) in served, f"nothing consumes dearmp.{service}"
    assert ("dearmp", "serve", "relay") in served, "nothing publishes the outbox"


def test_every_event_type_is_bound_to_a_queue() -> None:
    bound = {key for keys in BINDINGS.values() for key in keys}
    unbound = {event_type for event_type, _version in EVENT_TYPES} - bound
    assert not unbound, f"events no queue receives: {sorted(unbound)}"


def test_every_binding_has_a_handler() -> None:
    """A routing key bound to a queue whose service has no handler would be consumed and dropped."""
    for service, keys in BINDINGS.items():
        handlers = importlib.import_module(f"services.{service}.handlers").HANDLERS
        handled = {event.TYPE for event in handlers}
        assert set(keys) <= handled, (
            f"{service} is bound to {sorted(set(keys) - handled)} unhandled"
        )


# -- Dockerfile and .dockerignore -------------------------------------------------------------
def test_dockerfile_is_python_311_slim_and_pinned() -> None:
    assert DOCKERFILE.exists()
    stages: set[str] = set()
    froms = [rest for k, rest in dockerfile_instructions() if k == "FROM"]
    assert froms
    for rest in froms:
        parts = rest.split()
        image = [p for p in parts if not p.startswith("--")][0]
        if image in stages:
            continue
        assert image.startswith("python:3.11") and "slim" in image, image
        assert is_pinned(image), image
        if len(parts) >= 3 and parts[-2].upper() == "AS":
            stages.add(parts[-1])


def test_dockerfile_runs_dearmp_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    users = [rest for k, rest in instructions if k == "USER"]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    runs = " ".join(rest for k, rest in instructions if k == "RUN")
    assert "pip install" in runs
    assert "[test]" not in runs and " -e " not in runs, "no dev/test extras, no editable install"

    entry = [json.loads(rest) for k, rest in instructions if k == "ENTRYPOINT"]
    cmd = [json.loads(rest) for k, rest in instructions if k == "CMD"]
    assert cmd or entry, "the image needs a CMD or ENTRYPOINT"
    argv = [*(entry[-1] if entry else []), *(cmd[-1] if cmd else [])]  # exec form: JSON arrays
    check_cli(argv)


def test_dockerignore_keeps_the_context_small_but_complete() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "tests"} <= patterns
    needed = {
        "pyproject.toml",
        "README.md",
        "shared",
        "services",
        "migrations",
        "campaigns",
        "data",
    }
    assert not needed & patterns, f".dockerignore drops {sorted(needed & patterns)}"
    for path in needed:
        assert (ROOT / path).exists(), f"{path} is needed by the image build"
