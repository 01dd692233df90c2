"""Organisers' letter templates run on a budget (issue 25, "an editor's template can stall
everyone"): a template that fails or goes past the budget is refused at its field when the
campaign is saved, and one that still fails when it runs stops that render within the budget,
with a TemplateProblem, wherever it runs: the campaign page, the staff preview, the mailer.

The property test writes random templates of nested loops and large expressions and renders each
the three ways production does; none may take longer than the budget (CPU time of this thread,
with room for the work between two checks), write more than the output limit or hold more than
a few MB."""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.intake.admin.preview import preview_letters
from services.intake.content import default_letter, letter_preview
from services.intake.forms import COMMENT_MAX, LETTER_MAX
from shared import templates
from shared.campaigns import Campaign, CampaignError, read_campaign_yaml
from shared.letters import render_letter
from shared.messages import Supporter, Target
from shared.templates import CPU_SECONDS, LOOP_ITERATIONS, OUTPUT_CHARS, TemplateProblem


def campaign(body: str, *, subject: str = "About {{ campaign.title }}", **extra: Any) -> Campaign:
    data = {
        "slug": "budget",
        "title": "Budget",
        "target": {"kind": "fixed", "name": "Home Secretary", "email": "hs@example.org"},
        "letter": {"subject": subject, "body": body, **extra},
    }
    # As a definition stored before templates were tried at save: it reaches the renderers.
    return Campaign.model_validate(data, context={"stored": True})


SUPPORTER = Supporter(
    first_name="Jo",
    last_name="Bloggs",
    email="jo@example.org",
    postcode="GU11 1AA",
    address_lines=["1 High Street"],
    comment="Please act.",
)
MP = Target(name="Alex Demo", email="alex.demo.mp@parliament.uk", party="Independent")


def test_the_sample_limits_are_the_forms_limits() -> None:
    assert (templates.COMMENT_MAX, templates.LETTER_MAX) == (COMMENT_MAX, LETTER_MAX)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        # Valid Jinja and Liquid alike: saved before, though no supporter's letter can be written.
        ("Dear {{ target.nmae }},\nPlease act.\n", "line 1: target.nmae is undefined"),
        (
            "Dear {{ target.name }},\n\n{{ supporter.town }}\n",
            "line 3: supporter.town is undefined",
        ),
        ("{{ 1/0 }}", "template error"),
        (
            "{% for a in (1..1000) %}{% for b in (1..1000) %}x{% endfor %}{% endfor %}",
            f"more than {LOOP_ITERATIONS} times",
        ),
        ("{% include 'other' %}", "unexpected tag 'include'"),
        ("{{ supporter.comment | join: ', ' }}", "unknown filter 'join'"),
    ],
)
def test_a_letter_that_cannot_be_written_is_refused_at_its_field(body: str, says: str) -> None:
    text = (
        "slug: budget\ntitle: Budget\ntarget: {kind: mp}\nletter:\n  subject: s\n  body: |\n"
        + "".join(f"    {line}\n" for line in body.splitlines())
    )
    with pytest.raises(CampaignError, match="letter.body: ") as refused:
        read_campaign_yaml(text, "budget.yaml")
    assert says in str(refused.value)


def test_a_loop_that_doubles_a_value_is_stopped_by_the_value_limit() -> None:
    body = (
        "{% assign s = 'ab' %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}"
        "{{ s }}"
    )
    with pytest.raises(TemplateProblem, match="too long|more than a letter may use"):
        render_letter(campaign(body), SUPPORTER, MP)


def test_the_ordinary_letters_are_unchanged() -> None:
    body = (
        "Dear {{ target.name }},\n\n{% if supporter.comment %}{{ supporter.comment }}\n\n{% endif %}"
        "Yours,\n{{ supporter.full_name }}\n{{ supporter.address }}\n"
    )
    with_comment = render_letter(campaign(body), SUPPORTER, MP)
    assert with_comment.text == (
        "Dear Alex Demo,\n\nPlease act.\n\nYours,\nJo Bloggs\n1 High Street\nGU11 1AA\n"
    )
    without = render_letter(campaign(body), SUPPORTER.model_copy(update={"comment": ""}), MP)
    assert "Please act" not in without.text and without.text.startswith("Dear Alex Demo,\n\nYours")
    assert with_comment.subject == "About Budget"


def test_a_stored_letter_that_fails_leaves_the_page_without_it_never_template_code() -> None:
    broken = campaign(
        "Dear {{ target.nmae }},\n{% block message %}Act.{% endblock %}", editable=True
    )
    assert letter_preview(broken) is None
    assert default_letter(broken) == "Act."  # the block alone can be written
    with pytest.raises(TemplateProblem, match="target.nmae is undefined"):
        render_letter(broken, SUPPORTER, MP)


# -- The property: random hostile templates never run a render past the budget ---------------

LOOP = st.sampled_from(
    [
        "{% for i in (1..N) %}X{% endfor %}",
        "{% for i in supporter.address_lines %}X{% endfor %}",
        "{% for i in (1..N) %}{% if i > 2 %}X{% endif %}{% endfor %}",
        "{% for i in (1..N) %}{% capture c %}X{{ c }}{% endcapture %}{% endfor %}",
    ]
)
EXPRESSION = st.sampled_from(
    [
        "{{ supporter.comment | append: supporter.comment | append: supporter.comment }}",
        "{% assign s = s | append: s %}",
        "{% assign s = s | append: supporter.comment %}{{ s }}",
        "{{ s | escape | escape | newline_to_br | url_encode | upcase }}",
        "{{ supporter.full_name | truncate: 100000 | prepend: target.name }}",
        "{{ 99999999 | times: 99999999 | times: 99999999 }}",
        "{% assign n = n | times: n %}",
        "x",
    ]
)


@st.composite
def hostile_templates(draw: st.DrawFn) -> str:
    inner = draw(EXPRESSION)
    for _ in range(draw(st.integers(1, 4))):
        loop = draw(LOOP).replace("N", str(draw(st.integers(1, 1024))))
        inner = loop.replace("X", inner * draw(st.integers(1, 3)))
    head = "{% assign s = 'abcdefghij' %}{% assign n = 12345 %}"
    return head + inner * draw(st.integers(1, 3))


def within_budget(render: Any, renders: int = 3) -> None:
    """Run ``renders`` renders (a letter's subject, text and HTML: 3): they finish or raise
    TemplateProblem, within the budget of each."""
    tracemalloc.start()
    started = time.thread_time()
    try:
        written = render()
    except TemplateProblem:
        written = None
    used = time.thread_time() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # The budget per part (subject, text, HTML), with room for the work between two checks
    # (bounded by the template's length) and for tracemalloc's own cost.
    assert used < 3 * renders * CPU_SECONDS + 0.5, f"{used:.3f} s"
    assert peak < 40_000_000, f"{peak} bytes"
    if isinstance(written, str):
        assert len(written) <= OUTPUT_CHARS


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(body=hostile_templates())
def test_random_nested_loops_and_large_expressions_stay_within_the_budget(body: str) -> None:
    hostile = campaign(body, subject=body[:500], html=body)
    within_budget(lambda: render_letter(hostile, SUPPORTER, MP).text)  # the mailer
    within_budget(lambda: letter_preview(hostile))  # the campaign page
    # The staff preview of a fixed-target campaign reads no reference data (no connection).
    within_budget(lambda: preview_letters(None, hostile, "GU11 1AA", "dearmp.example"))  # type: ignore[arg-type]
    # And at save: refused, or written for every sample supporter within the budget.
    try:
        templates.template_problem.cache_clear()
        within_budget(lambda: templates.template_problem(body) or "", len(templates._samples()))
    finally:
        templates.template_problem.cache_clear()
