"""Static checks of the Prometheus alert rules (deploy/prometheus/alerts.yml) and their runbook.

Every rule is complete (alert, expr, for, severity, summary, description, runbook), its runbook
is a heading of docs/operations.md, every ``dearmp_*`` metric it reads is one shared/metrics.py
defines (with the suffix Prometheus gives its type), the label values it filters on are ones the
code writes, and any other metric is one whose exporter we checked. With ``promtool`` on PATH
(Debian package ``prometheus``; .ci/run installs it) the file passes ``promtool check rules`` and
a few alerts are run against made-up series (``promtool test rules``); without it those two
tests skip (a failure under CI=true) and a lighter syntax check still runs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

import shared.metrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RUNBOOK = ROOT / "docs" / "operations.md"
SOURCES = [*sorted((ROOT / "shared").rglob("*.py")), *sorted((ROOT / "services").rglob("*.py"))]

SEVERITIES = {"critical", "warning"}
# Metrics from other exporters, each checked in that exporter's source (docs/operations.md,
# "What to watch", says where): rabbitmq_prometheus in RabbitMQ 3.13.7
# (deps/rabbitmq_prometheus/metrics.md, prometheus_rabbitmq_alarm_metrics_collector.erl) and
# prometheus-community/postgres_exporter v0.20.1 (collector/pg_replication.go,
# exporter/postgres_exporter.go); ``up`` is Prometheus' own.
EXTERNAL_METRICS = {
    "up",
    "rabbitmq_queue_messages",
    "rabbitmq_queue_messages_ready",
    "rabbitmq_queue_consumers",
    "rabbitmq_alarms_memory_used_watermark",
    "rabbitmq_alarms_free_disk_space_watermark",
    "pg_up",
    "pg_replication_lag_seconds",
    "pg_replication_is_replica",
}
# Labels Prometheus adds to every scraped series, and the histogram bucket label.
TARGET_LABELS = {"job", "instance"}

FUNCTIONS = {
    "abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes", "clamp",
    "clamp_max", "clamp_min", "count_over_time", "delta", "deriv", "exp", "floor",
    "histogram_quantile", "idelta", "increase", "irate", "label_join", "label_replace",
    "last_over_time", "ln", "max_over_time", "min_over_time", "predict_linear",
    "present_over_time", "quantile_over_time", "rate", "resets", "round", "scalar", "sort",
    "sort_desc", "sqrt", "sum_over_time", "time", "timestamp", "vector",
}  # fmt: skip
AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile",
}  # fmt: skip
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "bool", "offset"}
IDENT = r"[a-zA-Z_:][a-zA-Z0-9_:]*"


# -- helpers ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    assert RULES.exists(), f"{RULES.relative_to(ROOT)} is missing"
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    assert isinstance(doc, dict) and set(doc) == {"groups"}, "a rule file holds only groups"
    out = []
    for group in doc["groups"]:
        assert set(group) <= {"name", "interval", "rules", "limit"}, group.keys()
        assert group.get("name") and group.get("rules"), f"group needs a name and rules: {group}"
        out.extend(group["rules"])
    return out


def defined_metrics() -> dict[str, set[str]]:
    """Every series name shared/metrics.py exposes, with the labels each may carry."""
    out: dict[str, set[str]] = {}
    for value in vars(shared.metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        labels = set(value._labelnames)  # prometheus_client keeps them here
        for family in value.describe():
            if family.type == "counter":
                out[family.name + "_total"] = labels
            elif family.type == "histogram":
                out[family.name + "_bucket"] = labels | {"le"}
                out[family.name + "_sum"] = labels
                out[family.name + "_count"] = labels
            else:
                out[family.name] = labels
    return out


def without_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def selectors(expr: str) -> list[tuple[str, dict[str, tuple[str, str]]]]:
    """(metric, {label: (operator, value)}) for each ``metric{...}`` in the expression."""
    out = []
    for match in re.finditer(rf"({IDENT})\s*\{{([^}}]*)\}}", expr):
        matchers = {
            m.group(1): (m.group(2), m.group(3))
            for m in re.finditer(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', match.group(2))
        }
        out.append((match.group(1), matchers))
    return out


def metric_names(expr: str) -> set[str]:
    """The series names an expression reads (not functions, keywords, labels or durations)."""
    text = without_strings(expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery durations
    text = re.sub(rf"\b({'|'.join(GROUPING)})\s*\([^)]*\)", " ", text)  # label lists
    names = set()
    for m in re.finditer(rf"(?<![\w.]){IDENT}", text):
        name, rest = m.group(0), text[m.end() :].lstrip()
        if rest.startswith("(") or name in KEYWORDS or name in GROUPING:
            continue
        names.add(name)
    return names


def check_syntax(expr: str) -> list[str]:
    """A light check for when promtool is missing: brackets and quotes balance, every call is a
    known function or aggregation, and no two binary operators or operands are left dangling."""
    problems = []
    text = without_strings(expr)
    if text.count('"') % 2:
        problems.append("unbalanced quotes")
    stack: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for ch in text:
        if ch in "([{":
            stack.append(ch)
        elif ch in pairs and (not stack or stack.pop() != pairs[ch]):
            problems.append(f"unbalanced {ch!r}")
            break
    if stack:
        problems.append(f"unclosed {stack[-1]!r}")
    for m in re.finditer(rf"({IDENT})\s*\(", text):
        name = m.group(1)
        if name not in FUNCTIONS | AGGREGATIONS | GROUPING | KEYWORDS:
            problems.append(f"unknown function {name}")
    stripped = text.strip()
    if re.search(r"(and|or|unless|[-+*/^%<>=])\s*$", stripped) or re.match(
        r"^(and|or|unless|[*/^%<>=])", stripped
    ):
        problems.append("dangling operator")
    return problems


def github_anchor(heading: str) -> str:
    """The anchor GitHub (and most Markdown renderers) give a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def doc_anchors() -> set[str]:
    anchors: set[str] = set()
    fenced = False
    for line in RUNBOOK.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"^#{1,6} (.+)$", line)):
            anchors.add(github_anchor(m.group(1)))
    return anchors


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    return path


# -- the checkers themselves can fail ---------------------------------------------------------
def test_metric_names_are_found_and_functions_are_not() -> None:
    expr = (
        'sum by (queue, le) (rate(dearmp_handler_seconds_bucket{queue=~"a|b"}[10m])) '
        "/ on(queue) group_left max(up) and absent(pg_up == 1) > bool 0.5"
    )
    assert metric_names(expr) == {"dearmp_handler_seconds_bucket", "up", "pg_up"}


@pytest.mark.parametrize(
    "expr",
    [
        "sum(rate(x[5m])",
        "rat(x[5m])",
        "x >",
        'x{a="b"]',
        "and x",
    ],
)
def test_syntax_check_rejects_broken_expressions(expr: str) -> None:
    assert check_syntax(expr)


def test_defined_metrics_have_their_type_suffixes() -> None:
    names = defined_metrics()
    assert "dearmp_messages_total" in names and "dearmp_messages" not in names
    assert {"dearmp_handler_seconds_bucket", "dearmp_handler_seconds_count"} <= set(names)
    assert "dearmp_smtp_paused" in names
    assert names["dearmp_emails_total"] == {"purpose", "outcome"}


def test_anchors_are_githubs() -> None:
    assert github_anchor("DearMPOutboxStalled") == "dearmpoutboxstalled"
    assert github_anchor("PostgreSQL: a primary, a standby and a pooler") == (
        "postgresql-a-primary-a-standby-and-a-pooler"
    )


# -- the rule file ----------------------------------------------------------------------------
def test_every_rule_is_a_complete_alert(rules: list[dict[str, Any]]) -> None:
    names = [rule.get("alert") for rule in rules]
    assert all(names), "recording rules belong in another file: every rule here is an alert"
    assert len(names) == len(set(names)), "alert names are unique"
    for rule in rules:
        name = rule["alert"]
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
        assert name.startswith("DearMP") and re.fullmatch(r"[A-Za-z]+", name), name
        assert str(rule.get("expr", "")).strip(), f"{name}: no expr"
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{name}: for: 1m, 5m..."
        assert (rule.get("labels") or {}).get("severity") in SEVERITIES, f"{name}: severity"
        notes = rule.get("annotations") or {}
        for key in ("summary", "description", "runbook"):
            assert str(notes.get(key, "")).strip(), f"{name}: no {key}"


def test_every_runbook_is_a_section_of_operations_md(rules: list[dict[str, Any]]) -> None:
    anchors = doc_anchors()
    for rule in rules:
        runbook = rule["annotations"]["runbook"]
        path, _, anchor = runbook.partition("#")
        assert path == "docs/operations.md", f"{rule['alert']}: runbook {runbook}"
        assert anchor in anchors, f"{rule['alert']}: docs/operations.md has no #{anchor}"


def test_every_alert_has_its_own_section(rules: list[dict[str, Any]]) -> None:
    """The runbook is the section named after the alert, and no section names an alert that
    does not exist (a renamed alert leaves no stale runbook behind)."""
    names = {rule["alert"] for rule in rules}
    for rule in rules:
        assert rule["annotations"]["runbook"].endswith("#" + rule["alert"].lower())
    text = RUNBOOK.read_text(encoding="utf-8")
    documented = set(re.findall(r"^#{2,6} (DearMP[A-Za-z]+)\s*$", text, flags=re.M))
    assert documented == names, (
        f"sections without an alert: {sorted(documented - names)}; "
        f"alerts without a section: {sorted(names - documented)}"
    )


def test_expressions_read_only_metrics_that_exist(rules: list[dict[str, Any]]) -> None:
    ours = defined_metrics()
    for rule in rules:
        for name in metric_names(rule["expr"]):
            if name.startswith("dearmp_"):
                assert name in ours, f"{rule['alert']}: {name} is not in shared/metrics.py"
            else:
                assert name in EXTERNAL_METRICS, f"{rule['alert']}: {name} is not a checked name"


def test_expressions_filter_on_labels_and_values_the_code_writes(
    rules: list[dict[str, Any]],
) -> None:
    ours = defined_metrics()
    source = "\n".join(path.read_text(encoding="utf-8") for path in SOURCES)
    for rule in rules:
        for metric, matchers in selectors(rule["expr"]):
            if not metric.startswith("dearmp_"):
                continue
            for label, (op, value) in matchers.items():
                assert label in ours[metric] | TARGET_LABELS, (
                    f"{rule['alert']}: {metric} has no label {label}"
                )
                if label in ("outcome", "purpose"):
                    values = value.split("|") if op in ("=~", "!~") else [value]
                    for v in values:
                        assert f'"{v}"' in source, (
                            f"{rule['alert']}: no code writes {label}={v!r} for {metric}"
                        )


def test_expressions_parse(rules: list[dict[str, Any]]) -> None:
    for rule in rules:
        assert not check_syntax(rule["expr"]), (rule["alert"], check_syntax(rule["expr"]))


def test_service_queue_matchers_leave_out_dead_letter_and_retry_queues(
    rules: list[dict[str, Any]],
) -> None:
    """PromQL anchors regular expressions: a service queue matcher must match "dearmp.mailer" and
    neither "dearmp.mailer.dlq" (which has no consumer by design) nor a retry queue."""
    for rule in rules:
        for _metric, matchers in selectors(rule["expr"]):
            op, value = matchers.get("queue", ("", ""))
            if op != "=~":
                continue
            pattern = re.compile(value.replace("\\\\", "\\"))
            if value.endswith("dlq"):
                assert pattern.fullmatch("dearmp.mailer.dlq")
                assert not pattern.fullmatch("dearmp.mailer")
            else:
                for service in ("intake", "resolver", "mailer", "updates"):
                    assert pattern.fullmatch(f"dearmp.{service}"), (rule["alert"], service)
                    assert pattern.fullmatch(f"test-1.{service}"), "any broker namespace"
                assert not pattern.fullmatch("dearmp.mailer.dlq"), rule["alert"]
                assert not pattern.fullmatch("dearmp.mailer.delay.1000ms"), rule["alert"]


# -- promtool ---------------------------------------------------------------------------------
def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _alert(name: str, at: str, *labels: dict[str, str]) -> dict[str, Any]:
    return {
        "eval_time": at,
        "alertname": name,
        "exp_alerts": [{"exp_labels": dict(lab)} for lab in labels],
    }


# Made-up series, one scenario per test group, and what the alerts must do with them.
SCENARIOS: list[dict[str, Any]] = [
    {  # signatures come in, the relay publishes nothing
        "interval": "1m",
        "input_series": [
            {"series": 'dearmp_signatures_total{job="dearmp-intake",instance="i1",campaign="c"}',
             "values": "0+20x40"},
            {"series": 'dearmp_outbox_published_total{job="dearmp-relay",instance="r1"}',
             "values": "0x40"},
            {"series": 'up{job="dearmp-relay",instance="r1"}', "values": "0x40"},
            {"series": 'up{job="dearmp-relay",instance="r2"}', "values": "0x40"},
        ],
        "alert_rule_test": [
            _alert("DearMPOutboxStalled", "25m", {"severity": "critical"}),
            _alert("DearMPNoRelay", "10m", {"severity": "critical"}),
            _alert(
                "DearMPProcessDown", "10m",
                {"severity": "warning", "job": "dearmp-relay", "instance": "r1"},
                {"severity": "warning", "job": "dearmp-relay", "instance": "r2"},
            ),
        ],
    },
    {  # the relay publishes: no stall; one relay of two up: no "no relay"
        "interval": "1m",
        "input_series": [
            {"series": 'dearmp_signatures_total{job="dearmp-intake",instance="i1",campaign="c"}',
             "values": "0+20x40"},
            {"series": 'dearmp_outbox_published_total{job="dearmp-relay",instance="r1"}',
             "values": "0+80x40"},
            {"series": 'up{job="dearmp-relay",instance="r1"}', "values": "1x40"},
            {"series": 'up{job="dearmp-relay",instance="r2"}', "values": "0x40"},
        ],
        "alert_rule_test": [
            _alert("DearMPOutboxStalled", "25m"),
            _alert("DearMPNoRelay", "10m"),
        ],
    },
    {  # queues as the rabbitmq_prometheus plugin reports them
        "interval": "1m",
        "input_series": [
            {"series": 'rabbitmq_queue_messages{vhost="/",queue="dearmp.mailer.dlq"}',
             "values": "3x10"},
            {"series": 'rabbitmq_queue_messages{vhost="/",queue="dearmp.mailer"}',
             "values": "50x10"},
            {"series": 'rabbitmq_queue_consumers{vhost="/",queue="dearmp.resolver"}',
             "values": "0x10"},
            {"series": 'rabbitmq_queue_consumers{vhost="/",queue="dearmp.mailer"}',
             "values": "2x10"},
            {"series": 'rabbitmq_queue_consumers{vhost="/",queue="dearmp.resolver.dlq"}',
             "values": "0x10"},
            {"series": 'rabbitmq_queue_consumers{vhost="/",queue="dearmp.resolver.delay.1000ms"}',
             "values": "0x10"},
        ],
        "alert_rule_test": [
            _alert("DearMPDeadLetters", "5m",
                   {"severity": "warning", "vhost": "/", "queue": "dearmp.mailer.dlq"}),
            _alert("DearMPNoConsumers", "8m",
                   {"severity": "critical", "vhost": "/", "queue": "dearmp.resolver"}),
        ],
    },
    {  # a growing queue; a stable long one does not alert
        "interval": "1m",
        "input_series": [
            {"series": 'rabbitmq_queue_messages_ready{vhost="/",queue="dearmp.mailer"}',
             "values": "1000+100x40"},
            {"series": 'rabbitmq_queue_messages_ready{vhost="/",queue="dearmp.resolver"}',
             "values": "5000x40"},
        ],
        "alert_rule_test": [
            _alert("DearMPQueueGrowing", "30m",
                   {"severity": "warning", "vhost": "/", "queue": "dearmp.mailer"}),
        ],
    },
    {  # the mailer refused by our mail server; letters failing; confirmations deferred
        "interval": "1m",
        "input_series": [
            {"series": 'dearmp_smtp_paused{job="dearmp-mailer",instance="m1"}',
             "values": "0 0 1x20"},
            {"series": 'dearmp_emails_total{job="dearmp-mailer",instance="m1",'
                       'purpose="letter",outcome="sent"}', "values": "0+90x60"},
            {"series": 'dearmp_emails_total{job="dearmp-mailer",instance="m1",'
                       'purpose="letter",outcome="failed"}', "values": "0+10x60"},
            {"series": 'dearmp_emails_total{job="dearmp-mailer",instance="m1",'
                       'purpose="confirmation",outcome="sent"}', "values": "0+50x60"},
            {"series": 'dearmp_emails_total{job="dearmp-mailer",instance="m1",'
                       'purpose="confirmation",outcome="temporary_failure"}',
             "values": "0+50x60"},
        ],
        "alert_rule_test": [
            _alert("DearMPSmtpPaused", "4m"),
            _alert("DearMPSmtpPaused", "10m",
                   {"severity": "critical", "job": "dearmp-mailer", "instance": "m1"}),
            _alert("DearMPLettersFailing", "50m", {"severity": "warning"}),
            _alert("DearMPEmailsDeferred", "40m",
                   {"severity": "warning", "purpose": "confirmation"}),
        ],
    },
    {  # handlers retrying a quarter of their messages, and one dead letter
        "interval": "1m",
        "input_series": [
            {"series": 'dearmp_messages_total{job="dearmp-resolver",instance="w1",'
                       'queue="dearmp.resolver",type="signature.confirmed",outcome="ok"}',
             "values": "0+30x40"},
            {"series": 'dearmp_messages_total{job="dearmp-resolver",instance="w1",'
                       'queue="dearmp.resolver",type="signature.confirmed",outcome="retried"}',
             "values": "0+10x40"},
            {"series": 'dearmp_messages_total{job="dearmp-resolver",instance="w1",'
                       'queue="dearmp.resolver",type="signature.confirmed",'
                       'outcome="dead_lettered"}', "values": "0x10 1x30"},
        ],
        "alert_rule_test": [
            _alert("DearMPHandlerRetries", "30m",
                   {"severity": "warning", "queue": "dearmp.resolver"}),
            _alert("DearMPDeadLettering", "14m",
                   {"severity": "warning", "queue": "dearmp.resolver",
                    "type": "signature.confirmed"}),
        ],
    },
    {  # one RabbitMQ node of three left
        "interval": "1m",
        "input_series": [
            {"series": 'up{job="rabbitmq",instance="rabbit1"}', "values": "1x10"},
            {"series": 'up{job="rabbitmq",instance="rabbit2"}', "values": "1 1 0x8"},
            {"series": 'up{job="rabbitmq",instance="rabbit3"}', "values": "1 1 1 1 0x6"},
        ],
        "alert_rule_test": [
            _alert("DearMPBrokerQuorumLost", "3m"),
            _alert("DearMPBrokerQuorumLost", "8m", {"severity": "critical"}),
        ],
    },
]  # fmt: skip


def test_alerts_fire_on_made_up_series(tmp_path: Path) -> None:
    """``promtool test rules`` compares annotations too; the annotations are templates, so the
    scenarios run on a copy of the rules without them (same expressions, same labels)."""
    tool = promtool()
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    rules_copy = tmp_path / "alerts.yml"
    rules_copy.write_text(yaml.safe_dump(doc), encoding="utf-8")
    tests = tmp_path / "alerts_test.yml"
    tests.write_text(
        yaml.safe_dump(
            {"rule_files": [str(rules_copy)], "evaluation_interval": "1m", "tests": SCENARIOS}
        ),
        encoding="utf-8",
    )
    result = subprocess.run(
        [tool, "test", "rules", str(tests)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
