"""Templates written by organisers (a campaign letter's subject, text and HTML): Liquid, on a budget.

Any editor of any organisation writes these, and they are rendered on the public campaign page,
in the staff preview and by the mailer for every letter. So they are Liquid (python-liquid: no
Python objects are reachable from a template, unlike Jinja's sandbox) with a hard budget that one
template cannot exceed wherever it runs:

- ``LOOP_ITERATIONS``: loop iterations in one render of a letter, every loop counted, nested or
  not (python-liquid's own limit multiplies only the nested loops' lengths; ours adds up what
  every loop is about to do);
- ``CPU_SECONDS``: this thread's CPU time for one letter (subject, text and HTML together),
  checked at every loop iteration, assignment and filter;
- ``OUTPUT_CHARS`` per part, ``NAMESPACE_BYTES`` of variables a template assigns, 30 nested
  blocks (python-liquid's limits), ``MAX_VALUE`` characters from any one filter, and only the
  filters in ``FILTERS`` (none of them multiplies its input);
- no ``include``, ``render`` or ``tablerow``.

``template_problem`` renders a template for sample supporters (the longest comment and own words
a form accepts, each language, an MP and a named target): ``shared.campaigns`` refuses a letter
that cannot be written for all of them, so what fails is found when it is saved, not when
someone signs.

Past the budget, or on any other error (a name that is not defined, a filter given the wrong
kind of value), rendering raises ``TemplateProblem`` with one line an organiser can act on.
``shared.campaigns`` renders every letter against sample supporters when a campaign is saved or
opened, so a template that fails is refused at its field before anyone can sign.

The ``message`` block (``{% block message %}…{% endblock %}``) marks the words supporters may
rewrite; their wording replaces it as a value (``OWN_WORDS``), never as template source.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from liquid import BoundTemplate, Environment, RenderContext, StrictDefaultUndefined
from liquid.builtin.tags.for_tag import ForLoop
from liquid.exceptions import (
    LiquidError,
    LoopIterationLimitError,
    OutputStreamLimitError,
    ResourceLimitError,
    UndefinedError,
)
from liquid.extra.tags import BlockTag
from liquid.extra.tags.extends_tag import BlockNode
from liquid.output import LimitedStringIO
from markupsafe import Markup, escape

from shared.messages import Supporter, Target

MESSAGE_BLOCK = "message"
# Where a supporter's own words travel in a render's globals: not a name a template can write.
OWN_WORDS = "dearmp own words"

LOOP_ITERATIONS = 2_000
CPU_SECONDS = 0.1
OUTPUT_CHARS = 100_000
NAMESPACE_BYTES = 50_000
MAX_VALUE = 50_000

# The filters a letter may use: each gives at most a few times what it is given.
FILTERS = frozenset(
    [
        "abs",
        "append",
        "at_least",
        "at_most",
        "capitalize",
        "ceil",
        "date",
        "default",
        "divided_by",
        "downcase",
        "escape",
        "escape_once",
        "first",
        "floor",
        "last",
        "lstrip",
        "minus",
        "modulo",
        "newline_to_br",
        "plus",
        "prepend",
        "remove",
        "remove_first",
        "remove_last",
        "replace_first",
        "round",
        "rstrip",
        "size",
        "slice",
        "squish",
        "strip",
        "strip_html",
        "strip_newlines",
        "times",
        "truncate",
        "truncatewords",
        "upcase",
        "url_encode",
    ]
)
_NOT_ALLOWED_TAGS = ("include", "render", "tablerow")


class TemplateProblem(ValueError):
    """A template that cannot be parsed or rendered within the budget; one line for its author."""


@dataclass
class Meter:
    """What one render (a letter's subject, text or HTML part) has used so far; a render given
    no meter gets a new one, so each part has the whole budget."""

    cpu_seconds: float = CPU_SECONDS
    iterations: int = 0
    started: float = field(default_factory=time.thread_time)

    def check(self) -> None:
        if time.thread_time() - self.started > self.cpu_seconds:
            raise TemplateProblem(f"it takes too long to write (more than {self.cpu_seconds:g} s)")

    def charge(self, iterations: int) -> None:
        self.iterations += iterations
        if self.iterations > LOOP_ITERATIONS:
            raise TemplateProblem(f"its loops go round more than {LOOP_ITERATIONS} times")
        self.check()


class _BudgetContext(RenderContext):
    """A render context that charges every loop to the letter's ``Meter``."""

    __slots__ = ("meter",)

    def __init__(self, *args: Any, meter: Meter | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        parent = kwargs.get("parent_context")
        self.meter: Meter = meter or (
            parent.meter if isinstance(parent, _BudgetContext) else Meter()
        )

    @contextmanager
    def loop(self, namespace: Mapping[str, object], forloop: Any) -> Iterator[RenderContext]:
        self.meter.charge(forloop.length)
        if isinstance(forloop, ForLoop):
            forloop.it = _checked(forloop.it, self.meter)
        with super().loop(namespace, forloop) as context:
            yield context

    def assign(self, key: str, val: Any) -> None:
        self.meter.check()
        super().assign(key, val)


def _checked(items: Iterator[Any], meter: Meter) -> Iterator[Any]:
    for item in items:
        meter.check()
        yield item


class _MessageBlockNode(BlockNode):
    """``{% block message %}``: the template's words, or the supporter's own (a value, escaped
    by the HTML environment like any other)."""

    __slots__ = ()

    def render_to_output(self, context: RenderContext, buffer: Any) -> int:
        words = context.globals.get(OWN_WORDS) if self.name == MESSAGE_BLOCK else None
        if words is None:
            return int(super().render_to_output(context, buffer))
        text = str(escape(words)) if context.autoescape else str(words)
        return int(buffer.write(text))


class _MessageBlockTag(BlockTag):
    node_class = _MessageBlockNode


# The meter of the render running on this thread or task (filters are not given the context).
_METER: ContextVar[Meter | None] = ContextVar("dearmp_template_meter")


def _guarded(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """The filter, charged to the meter and refused a result longer than ``MAX_VALUE``."""

    def guarded(*args: Any, **kwargs: Any) -> Any:
        meter = _METER.get(None)
        if meter is not None:
            meter.check()
        result = func(*args, **kwargs)
        if isinstance(result, str | list) and len(result) > MAX_VALUE:
            raise TemplateProblem(f"the {name} filter makes a value too long to use")
        return result

    for attr in ("with_context", "with_environment"):
        if hasattr(func, attr):
            setattr(guarded, attr, getattr(func, attr))
    return guarded


class _LetterEnvironment(Environment):
    loop_iteration_limit = LOOP_ITERATIONS
    output_stream_limit = OUTPUT_CHARS
    local_namespace_limit = NAMESPACE_BYTES
    # As the Jinja templates before them: a block of only white space still writes it.
    suppress_blank_control_flow_blocks = False

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        super().setup_tags_and_filters(extra=extra)
        for tag in _NOT_ALLOWED_TAGS:
            self.tags.pop(tag, None)
        self.add_tag(_MessageBlockTag)
        self.filters = {n: _guarded(n, f) for n, f in self.filters.items() if n in FILTERS}


_TEXT = _LetterEnvironment(undefined=StrictDefaultUndefined)
_HTML = _LetterEnvironment(undefined=StrictDefaultUndefined, autoescape=True)


@lru_cache(maxsize=512)
def parse(source: str, html: bool = False) -> BoundTemplate:
    """The template, parsed once per source in each process; ``TemplateProblem`` if it is not
    one."""
    try:
        return (_HTML if html else _TEXT).from_string(source)
    except LiquidError as exc:
        raise TemplateProblem(describe(exc, source)) from None
    except RecursionError:
        raise TemplateProblem("it is nested too deeply") from None


def render(
    source: str,
    context: Mapping[str, object],
    *,
    html: bool = False,
    meter: Meter | None = None,
    own_words: object = None,
) -> str:
    """The template written out with ``context``, within ``meter``'s budget (a new one if None).
    ``own_words``: the supporter's wording, in place of the message block."""
    return render_nodes(parse(source, html), context, meter=meter, own_words=own_words)


def render_nodes(
    template: BoundTemplate,
    context: Mapping[str, object],
    *,
    meter: Meter | None = None,
    own_words: object = None,
) -> str:
    meter = meter or Meter()
    variables: dict[str, object] = dict(context)
    if own_words is not None:
        variables[OWN_WORDS] = own_words
    ctx = _BudgetContext(template, globals=template.make_globals(variables), meter=meter)
    buffer = LimitedStringIO(limit=OUTPUT_CHARS)
    token = _METER.set(meter)
    try:
        template.render_with_context(ctx, buffer)
    except TemplateProblem:
        raise
    except LiquidError as exc:
        raise TemplateProblem(describe(exc)) from None
    except (RecursionError, MemoryError, ArithmeticError, TypeError, ValueError) as exc:
        raise TemplateProblem(f"it cannot be written ({type(exc).__name__})") from None
    finally:
        _METER.reset(token)
    return buffer.getvalue()


def message_block(source: str) -> BoundTemplate | None:
    """The ``message`` block of a template, as a template of its own; None if it has none."""
    template = parse(source)
    for node in _walk(template.nodes):
        if isinstance(node, BlockNode) and node.name == MESSAGE_BLOCK:
            return BoundTemplate(template.env, [node.block])
    return None


def names_used(template: BoundTemplate) -> set[str]:
    """The top-level names a template reads that it did not assign itself."""
    return set(template.global_variables(include_partials=False))


def _walk(nodes: list[Any]) -> Iterator[Any]:
    for node in nodes:
        yield node
        children = getattr(node, "children", None)
        if children is None:
            continue
        for child in children(RenderContext(BoundTemplate(_TEXT, [])), include_partials=False):
            if hasattr(child, "node"):  # a MetaNode wraps the node it describes
                child = child.node
            if child is not None and hasattr(child, "render"):
                yield from _walk([child])


def describe(exc: Exception, source: str = "") -> str:
    """One line for the template's author: where (the line) and what. ``source``: the
    template's, for an error at its end (a block never closed)."""
    if isinstance(exc, LoopIterationLimitError):
        return f"its loops go round more than {LOOP_ITERATIONS} times"
    if isinstance(exc, OutputStreamLimitError):
        return f"it writes more than {OUTPUT_CHARS} characters"
    if isinstance(exc, ResourceLimitError):
        return f"it needs more than a letter may use ({exc.message})"
    where = exc.context() if isinstance(exc, LiquidError) else None
    at = where[0] if where else len(source.splitlines()) or 1  # at the end: a block not closed
    line = f"line {at}: " if where or source else ""
    message = exc.message if isinstance(exc, LiquidError) else str(exc)
    if isinstance(exc, UndefinedError):
        return f"{line}{message} (check the spelling of each name between {{{{ and }}}})"
    return f"{line}{message}"


# -- The names a letter is written with, and trying a letter before it is saved ---------------

# The longest a supporter may write (services/intake/forms.py COMMENT_MAX and LETTER_MAX; a unit
# test keeps them equal): the samples a template is tried with at save use the longest.
COMMENT_MAX = 1500
LETTER_MAX = 5000
LANGUAGES = ("en", "cy", "fr")


def own_words_html(text: str) -> Markup:
    """The supporter's words as HTML paragraphs: blank lines part paragraphs, a line break
    becomes ``<br>``; every piece of their text escaped."""
    paragraphs = [p.strip("\n") for p in re.split(r"\n[ \t]*\n", text) if p.strip()]
    return Markup("\n").join(
        Markup("<p>{}</p>").format(Markup("<br>\n").join(p.split("\n"))) for p in paragraphs
    )


def _nil_if_blank(values: Mapping[str, object]) -> dict[str, object]:
    """Empty text as nil: in Liquid only nil and false are false, and campaigns write
    ``{% if supporter.comment %}`` for "if they wrote one"."""
    return {k: (None if v == "" else v) for k, v in values.items()}


def letter_names(
    title: str, slug: str, supporter: Mapping[str, object], target: Mapping[str, object]
) -> dict[str, object]:
    """The names a letter's template is given: ``target``, ``supporter`` and ``campaign``."""
    return {
        "target": _nil_if_blank(target),
        "supporter": _nil_if_blank(supporter),
        "campaign": {"title": title, "slug": slug},
    }


def supporter_fields(supporter: Supporter) -> dict[str, object]:
    return {
        # Their own wording reaches the letter only through its message block.
        **supporter.model_dump(exclude={"email", "opt_in", "letter"}),
        "full_name": supporter.full_name,
        "address": "\n".join([*supporter.address_lines, supporter.postcode]),
    }


def _samples() -> list[tuple[dict[str, object], str]]:
    """(context, own words) for every kind of supporter and target a letter may be written for."""
    found = []
    targets = [
        Target(name="Alex Sample MP", email="alex.sample.mp@parliament.uk", party="Independent"),
        Target(name="The Home Secretary", email="home.secretary@example.org", kind="fixed"),
    ]
    for language in LANGUAGES:
        for comment, own_words in (("", ""), ("Ŵ" * COMMENT_MAX, "w " * (LETTER_MAX // 2))):
            supporter = Supporter(
                first_name="Sam",
                last_name="Sample-Ó'Brien",
                email="sam.sample@example.org",
                postcode="SW1A 1AA",
                address_lines=["Flat 2", "1 Sample Street", "Sampletown"],
                comment=comment,
                language=language,  # type: ignore[arg-type]
            )
            for target in targets:
                fields = supporter_fields(supporter)
                context = letter_names(
                    "A campaign: its title", "a-campaign", fields, target.model_dump()
                )
                found.append((context, own_words))
    return found


@lru_cache(maxsize=256)
def template_problem(source: str, html: bool = False) -> str | None:
    """Why the template cannot be written for one of the sample supporters (it fails, or it
    goes past the budget), in one line; None when it can be written for every one."""
    for context, own_words in _samples():
        words: object = (own_words_html(own_words) if html else own_words) if own_words else None
        try:
            render(source, context, html=html, own_words=words)
        except TemplateProblem as exc:
            return str(exc)
    return None
