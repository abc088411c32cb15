"""Action specs: the YAML a practice writes, checked into typed models.

Every problem is reported with the line and column of the YAML node it is about (1-based), so
``frontdesk actions validate FILE`` and the API point at the exact place to fix. Loading is
``yaml.compose`` (the node tree keeps positions) turned into plain data while remembering where
every value came from; pydantic then checks the structure, and ``_semantic_errors`` the
cross-references (fields an ``if`` names, step ids, templates that must compile).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import yaml
from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from frontdesk.domain.errors import FieldError, ValidationFailed

TRIGGER_EVENTS = (
    "reminder_unconfirmed",
    "appointment_missed",
    "appointment_cancelled",
    "intent",
    "keyword",
    "manual",
)
FIELD_KINDS = (
    "name",
    "email",
    "phone",
    "date_of_birth",
    "channel",
    "datetime_preference",
    "choice",
    "free_text",
)
STEP_TYPES = ("webhook", "send", "set_status", "handoff", "wait_for_reply", "if")
CHANNELS = ("email", "sms", "whatsapp")
INTENTS = ("confirm", "cancel", "reschedule", "question", "opt_in", "help", "other")
NAME = r"^[a-z][a-z0-9_]{0,59}$"
MAX_SPEC_BYTES = 64_000

TEMPLATE_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined)

Prompt = dict[Literal["en", "es"], str]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Trigger(_Strict):
    event: Literal[
        "reminder_unconfirmed",
        "appointment_missed",
        "appointment_cancelled",
        "intent",
        "keyword",
        "manual",
    ]
    # reminder_unconfirmed: the appointment starts within this many hours (and a reminder went
    # out); appointment_missed / appointment_cancelled: it happened within this many hours.
    window_hours: float | None = Field(default=None, gt=0, le=24 * 30)
    intent: (
        Literal["confirm", "cancel", "reschedule", "question", "opt_in", "help", "other"] | None
    ) = None
    keywords: list[Annotated[str, Field(min_length=1, max_length=40)]] | None = None


class FieldSpec(_Strict):
    name: str = Field(pattern=NAME)
    kind: Literal[
        "name",
        "email",
        "phone",
        "date_of_birth",
        "channel",
        "datetime_preference",
        "choice",
        "free_text",
    ]
    prompt: Prompt
    invalid: Prompt | None = None  # the re-ask; a helpful default per kind when absent
    choices: list[Annotated[str, Field(min_length=1, max_length=80)]] | None = None
    max_asks: int = Field(default=3, ge=1, le=10)
    max_length: int = Field(default=500, ge=1, le=2000)
    # A channel field whose prompt tells the patient that picking a channel agrees to messages
    # from the practice there: the answer is recorded as that channel's opt-in (WhatsApp needs
    # one). Only for kind "channel".
    opt_in: bool = False

    @model_validator(mode="after")
    def _opt_in_is_for_channels(self) -> FieldSpec:
        if self.opt_in and self.kind != "channel":
            raise ValueError("opt_in applies to channel fields only")
        return self


class WebhookStep(_Strict):
    type: Literal["webhook"]
    id: str = Field(pattern=NAME)
    # A literal http(s) URL, or a template such as "{{ practice.webhook_url }}/no-show"
    # (the practice's URL from its settings); checked again after rendering.
    url: str = Field(pattern=r"^(https?://|\{\{)", max_length=1000)
    body: dict[str, Any] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=10, gt=0, le=60)
    max_attempts: int = Field(default=4, ge=1, le=10)
    # Response JSON paths ("booking.id") stored as results.<id>.<name>.
    capture: dict[str, str] = Field(default_factory=dict)
    on_failure: Literal["handoff", "continue", "stop"] = "handoff"


class SendStep(_Strict):
    type: Literal["send"]
    text: Prompt | None = None  # inline wording per language (sandboxed Jinja2)
    purpose: str | None = None  # or a shipped/practice template purpose (reminder, …)
    channel: Literal["conversation", "email", "sms", "whatsapp"] = "conversation"
    channel_field: str | None = None  # take the channel from a collected field
    about_appointment: bool = True


class SetStatusStep(_Strict):
    type: Literal["set_status"]
    answer: Literal["confirm", "cancel", "reschedule"] | None = None
    answer_from: str | None = None  # a wait_for_reply step id: apply the patient's answer
    review: str | None = Field(default=None, pattern=NAME)  # open a front-desk review item


class HandoffStep(_Strict):
    type: Literal["handoff"]
    reason: Literal["action", "asked_for_person", "unanswered", "clinical_concern"] = "action"
    urgent: bool = False


class WaitStep(_Strict):
    type: Literal["wait_for_reply"]
    id: str = Field(pattern=NAME)
    timeout_minutes: float = Field(default=24 * 60, gt=0, le=60 * 24 * 30)
    on_timeout: list[Step] = Field(default_factory=list)


class Condition(_Strict):
    field: str | None = None  # a collected field
    result: str | None = None  # "<step id>.<key>"
    equals: str | None = None
    one_of: list[str] | None = None
    present: bool | None = None


class IfStep(_Strict):
    type: Literal["if"]
    when: Condition
    then: list[Step] = Field(default_factory=list)
    otherwise: list[Step] = Field(default_factory=list, alias="else")


Step = Annotated[
    WebhookStep | SendStep | SetStatusStep | HandoffStep | WaitStep | IfStep,
    Field(discriminator="type"),
]


class Identity(_Strict):
    required: bool = True
    identifier: str  # a collected field: name, email or phone
    date_of_birth: str  # a collected date_of_birth field


class ActionSpec(_Strict):
    name: str = Field(pattern=NAME)
    description: str = Field(default="", max_length=1000)
    trigger: Trigger
    identity: Identity | None = None
    fields: list[FieldSpec] = Field(default_factory=list, max_length=20)
    steps: list[Step] = Field(min_length=1, max_length=100)


WaitStep.model_rebuild()
IfStep.model_rebuild()


# --- loading with positions --------------------------------------------------------------------

Path = tuple[str | int, ...]


@dataclass
class _Located:
    data: Any
    marks: dict[Path, tuple[int, int]]


def _to_data(
    node: yaml.Node, path: Path, marks: dict[Path, tuple[int, int]], errors: list[FieldError]
) -> Any:
    marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                errors.append(_err(key_node, path, "keys must be plain strings"))
                continue
            if key in out:
                errors.append(_err(key_node, (*path, key), f"duplicate key {key!r}"))
                continue
            marks[("key", *path, key)] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
            out[key] = _to_data(value_node, (*path, key), marks, errors)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_data(v, (*path, i), marks, errors) for i, v in enumerate(node.value)]
    assert isinstance(node, yaml.ScalarNode)
    # Resolve scalars the way safe_load would (ints, bools, null), strings otherwise.
    constructor = yaml.SafeLoader("")
    try:
        return constructor.construct_object(node)
    except yaml.YAMLError:
        return node.value
    finally:
        constructor.dispose()


def _err(node: yaml.Node, path: Path, message: str) -> FieldError:
    return FieldError(
        f"line {node.start_mark.line + 1}, column {node.start_mark.column + 1}: {_dotted(path)}",
        message,
    )


def _dotted(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(document)"


def _where(located: _Located, path: Path, *, key: bool = False) -> str:
    # The nearest node that exists: a missing key is reported at its parent mapping; an unknown
    # key at the key itself.
    if key and ("key", *path) in located.marks:
        line, column = located.marks[("key", *path)]
        return f"line {line}, column {column}: {_dotted(path)}"
    for end in range(len(path), -1, -1):
        if path[:end] in located.marks:
            line, column = located.marks[path[:end]]
            return f"line {line}, column {column}: {_dotted(path)}"
    return f"line 1, column 1: {_dotted(path)}"


def _data_path(data: Any, loc: tuple[int | str, ...]) -> Path:
    """Pydantic's error location with the discriminator tags (``webhook``) taken out."""
    path: list[str | int] = []
    current = data
    for part in loc:
        if isinstance(current, dict) and isinstance(part, str) and part not in current:
            if current.get("type") == part:
                continue
            path.append(part)
            current = None
            continue
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and isinstance(part, int) and part < len(current):
            current = current[part]
        else:
            current = None
        path.append(part)
    return tuple(path)


def parse_spec(text: str) -> ActionSpec:
    """The spec in ``text``, or ``ValidationFailed`` listing every problem with its position."""
    if len(text.encode()) > MAX_SPEC_BYTES:
        raise ValidationFailed(
            [FieldError("line 1, column 1: (document)", "the spec is too large")]
        )
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "line 1, column 1"
        raise ValidationFailed(
            [FieldError(f"{where}: (document)", f"not valid YAML: {exc.problem or exc}")],
            "The action spec is not valid YAML.",
        ) from None
    except yaml.YAMLError as exc:
        raise ValidationFailed(
            [FieldError("line 1, column 1: (document)", f"not valid YAML: {exc}")]
        ) from None
    if node is None:
        raise ValidationFailed([FieldError("line 1, column 1: (document)", "the spec is empty")])
    errors: list[FieldError] = []
    located = _Located(None, {})
    located.data = _to_data(node, (), located.marks, errors)
    if not isinstance(located.data, dict):
        errors.append(FieldError(_where(located, ()), "the spec must be a mapping"))
        raise ValidationFailed(errors, "The action spec is not valid.")
    spec: ActionSpec | None = None
    try:
        spec = ActionSpec.model_validate(located.data)
    except ValidationError as exc:
        for error in exc.errors():
            path = _data_path(located.data, tuple(error["loc"]))
            at_key = error["type"] == "extra_forbidden"
            errors.append(FieldError(_where(located, path, key=at_key), _message(error)))
    if spec is not None:
        errors.extend(
            FieldError(_where(located, path), message) for path, message in _semantic_errors(spec)
        )
    if errors:
        raise ValidationFailed(_unique(errors), "The action spec is not valid.")
    assert spec is not None
    return spec


def _message(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "union_tag_invalid":
        return f"unknown step type; one of {', '.join(STEP_TYPES)}"
    if error["type"] == "union_tag_not_found":
        return f"a step needs a type: one of {', '.join(STEP_TYPES)}"
    return message


def _unique(errors: list[FieldError]) -> list[FieldError]:
    seen: set[tuple[str, str]] = set()
    out = []
    for e in errors:
        if (e.loc, e.message) not in seen:
            seen.add((e.loc, e.message))
            out.append(e)
    return out


# --- cross-references -------------------------------------------------------------------------


def walk_steps(steps: list[Any], path: Path) -> Iterator[tuple[Path, Any]]:
    for i, step in enumerate(steps):
        here = (*path, i)
        yield here, step
        if isinstance(step, IfStep):
            yield from walk_steps(step.then, (*here, "then"))
            yield from walk_steps(step.otherwise, (*here, "else"))
        elif isinstance(step, WaitStep):
            yield from walk_steps(step.on_timeout, (*here, "on_timeout"))


def _semantic_errors(spec: ActionSpec) -> Iterator[tuple[Path, str]]:
    fields = {f.name: f for f in spec.fields}
    seen_fields: set[str] = set()
    for i, f in enumerate(spec.fields):
        if f.name in seen_fields:
            yield ("fields", i, "name"), f"field {f.name!r} is defined twice"
        seen_fields.add(f.name)
        if "en" not in f.prompt:
            yield ("fields", i, "prompt"), "a prompt in English (en) is required"
        if f.kind == "choice" and not f.choices:
            yield ("fields", i, "choices"), "a choice field needs a list of choices"
        if f.kind != "choice" and f.choices:
            yield ("fields", i, "choices"), "choices apply to choice fields only"
    trigger = spec.trigger
    if trigger.event == "intent" and trigger.intent is None:
        yield ("trigger", "intent"), "an intent trigger needs an intent"
    if trigger.event == "keyword" and not trigger.keywords:
        yield ("trigger", "keywords"), "a keyword trigger needs keywords"
    if trigger.event == "reminder_unconfirmed" and trigger.window_hours is None:
        yield ("trigger", "window_hours"), "reminder_unconfirmed needs window_hours"
    if spec.identity is not None:
        ident = fields.get(spec.identity.identifier)
        if ident is None or ident.kind not in ("name", "email", "phone"):
            yield ("identity", "identifier"), "must name a collected name, email or phone field"
        dob = fields.get(spec.identity.date_of_birth)
        if dob is None or dob.kind != "date_of_birth":
            yield ("identity", "date_of_birth"), "must name a collected date_of_birth field"
    step_ids: set[str] = set()
    waits: set[str] = set()
    for path, step in walk_steps(spec.steps, ("steps",)):
        step_id = getattr(step, "id", None)
        if step_id is not None:
            if step_id in step_ids:
                yield (*path, "id"), f"step id {step_id!r} is used twice"
            step_ids.add(step_id)
        if isinstance(step, WaitStep):
            waits.add(step.id)
        if isinstance(step, SendStep):
            if (step.text is None) == (step.purpose is None):
                yield path, "a send step needs exactly one of text or purpose"
            if step.text is not None:
                if "en" not in step.text:
                    yield (*path, "text"), "wording in English (en) is required"
                for lang, source in step.text.items():
                    problem = _template_problem(source)
                    if problem:
                        yield (*path, "text", lang), problem
            if step.purpose is not None:
                from frontdesk.domain.templates import Purpose

                if step.purpose not in {p.value for p in Purpose}:
                    yield (*path, "purpose"), "unknown template purpose"
            if step.channel_field is not None and (
                step.channel_field not in fields or fields[step.channel_field].kind != "channel"
            ):
                yield (*path, "channel_field"), "must name a collected channel field"
        if isinstance(step, WebhookStep):
            for where, source in _strings(step.body, (*path, "body")):
                problem = _template_problem(source)
                if problem:
                    yield where, problem
        if isinstance(step, SetStatusStep):
            if step.answer is None and step.answer_from is None and step.review is None:
                yield path, "set_status needs answer, answer_from or review"
            if step.answer_from is not None and step.answer_from not in waits:
                yield (*path, "answer_from"), "must name an earlier wait_for_reply step"
        if isinstance(step, IfStep):
            cond = step.when
            if (cond.field is None) == (cond.result is None):
                yield (*path, "when"), "a condition names exactly one of field or result"
            if cond.field is not None and cond.field not in fields:
                yield (*path, "when", "field"), f"no field named {cond.field!r}"
            if cond.result is not None and not re.match(r"^[a-z][a-z0-9_]*\.[\w.]+$", cond.result):
                yield (*path, "when", "result"), "write results as <step id>.<key>"
            if sum(x is not None for x in (cond.equals, cond.one_of, cond.present)) != 1:
                yield (*path, "when"), "a condition needs exactly one of equals, one_of, present"


def _strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*path, i))


def _template_problem(source: str) -> str | None:
    try:
        TEMPLATE_ENV.parse(source)
    except TemplateSyntaxError as exc:
        return f"template error: {exc.message}"
    return None
