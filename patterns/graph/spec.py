"""The graph.yml format, as pydantic models that reject unknown keys.

Keys of the original format that mean nothing here (``tags``, ``version``, ``icon``,
``icon_url``) load silently. Any other unknown key of the top level, a function or a store
is what the original ignored: when the caller passes an ``ignored`` list it is reported
there as a warning (with the closest valid key) and dropped; ``settings:`` (ours) stay strict.

Each part (the top level, each function, each store, each settings block) is validated on
its own so that one bad entry does not hide the problems of the others; a key with a bad
value is reported and dropped, and the rest of the entry is still checked.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, field_validator

from patterns.errors import Problem
from patterns.graph.yaml_lines import KeyPath, LineMap

_CONFIG = ConfigDict(extra="forbid", coerce_numbers_to_str=True, populate_by_name=True)

PositiveFloat = Annotated[float, Strict(), Field(gt=0)]
NonNegativeFloat = Annotated[float, Strict(), Field(ge=0)]
NonNegativeInt = Annotated[int, Strict(), Field(ge=0)]
PositiveInt = Annotated[int, Strict(), Field(ge=1)]


class GraphSpec(BaseModel):
    model_config = _CONFIG

    title: str | None = None
    slug: str | None = None
    description_file: str | None = None
    requirements_file: str | None = None
    functions: list[Any] | None = None
    stores: list[Any] | None = None
    docs: list[Any] | None = None
    dashboards: list[Any] | None = None
    exposes: Any = None
    schemas: Any = None
    settings: dict[str, Any] | None = None
    storages: list[Any] | None = None
    tags: Any = None
    version: Any = None
    icon: Any = None
    icon_url: Any = None


class StorageSpec(BaseModel):
    model_config = _CONFIG

    name: str
    connection: str | None = None
    description: str | None = None


class FunctionSpec(BaseModel):
    model_config = _CONFIG

    node_file: str | None = None
    webhook: str | None = None
    uses: str | None = None
    id: str | None = None
    title: str | None = None
    description_file: str | None = None
    description: str | None = None
    trigger: str | None = None
    inputs: dict[str, str] | None = None
    outputs: dict[str, str] | None = None
    parameter_values: dict[str, Any] | None = None
    display: Any = None
    icon_url: str | None = None
    chart_input: str | None = None
    settings: dict[str, Any] | None = None
    respond: Annotated[bool, Strict()] | None = None
    tags: Any = None
    version: Any = None
    icon: Any = None


class StoreSpec(BaseModel):
    model_config = _CONFIG

    table: str | None = None
    stream: str | None = None
    id: str | None = None
    schema_: Any = Field(default=None, alias="schema")
    display: Any = None
    description: str | None = None
    contract: Literal["refuse", "variant", "discard_value", "discard_row"] | None = None
    storage: str | None = None
    storage_table: str | None = None
    tags: Any = None


class RetriesSpec(BaseModel):
    model_config = _CONFIG

    count: NonNegativeInt = 0
    backoff_seconds: NonNegativeFloat = 10


class AlertsSpec(BaseModel):
    """``settings.alerts`` (see docs/graph-yml.md, "Alerts" and :mod:`patterns.engine.alerts`)."""

    model_config = _CONFIG

    webhook: str | None = None
    command: str | list[str] | None = None
    when: list[Literal["failed", "timed_out", "recovered"]] = ["failed", "timed_out", "recovered"]
    quiet_minutes: NonNegativeFloat = 15

    @field_validator("webhook")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        from urllib.parse import urlsplit

        from patterns.graph.parameters import is_reference

        if value is None or is_reference(value):  # ${{ secret }}: checked when it is sent
            return value
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL: give the webhook's full "
                             f"address (https://hooks.slack.com/services/..., a Discord "
                             f"webhook URL...) or a secret holding it, ${{{{ slack_url }}}}")
        return value.strip()

    @field_validator("command")
    @classmethod
    def _some_command(cls, value: str | list[str] | None) -> str | list[str] | None:
        if value is not None and not (value.strip() if isinstance(value, str) else value):
            raise ValueError("is empty: give a shell command, or a list of program and "
                             "arguments")
        return value


class SettingsSpec(BaseModel):
    model_config = _CONFIG

    time_limit_seconds: PositiveFloat | None = None
    checkpoint_seconds: PositiveFloat | None = None
    retries: RetriesSpec | None = None
    sql_dialect: Literal["postgres", "duckdb"] | None = None
    keep_versions: PositiveInt | None = None
    max_columns: PositiveInt | None = None
    timezone: str | None = None
    webhook_headers: Any = None
    webhook_query: Any = None
    response_timeout_seconds: PositiveFloat | None = None
    max_body_bytes: PositiveInt | None = None
    max_records_per_request: PositiveInt | None = None
    max_fields_per_record: PositiveInt | None = None
    #: ``false`` (or null) on a node: no alerts for it, whatever the app's settings say.
    alerts: AlertsSpec | None = None

    @field_validator("alerts", mode="before")
    @classmethod
    def _false_is_none(cls, value: Any) -> Any:
        return None if value is False else value

    @field_validator("alerts")
    @classmethod
    def _somewhere_to_send(cls, value: AlertsSpec | None) -> AlertsSpec | None:
        if value is not None and value.webhook is None and value.command is None:
            raise ValueError("says neither where to send alerts nor what to run: add "
                             "`webhook: URL` and/or `command: ...`")
        return value

    @field_validator("retries", mode="before")
    @classmethod
    def _count_only(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return {"count": value}
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {value!r}: use an IANA name such as UTC or Europe/Paris"
            ) from None
        return value


EXTRA_SETTINGS = ("webhook_headers", "webhook_query", "response_timeout_seconds", "max_body_bytes",
                  "max_records_per_request", "max_fields_per_record")

M = TypeVar("M", bound=BaseModel)

_TYPE_WORDS = {
    "dict_type": "must be a mapping (`key: value` lines)",
    "list_type": "must be a list (`- item` lines)",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "model_type": "must be a mapping (`key: value` lines)",
    "model_attributes_type": "must be a mapping (`key: value` lines)",
}


def validate_part(
    model: type[M], data: Any, path: KeyPath, where: str, lines: LineMap, rel: str, node: str | None,
    ignored: list[Problem] | None = None,
) -> tuple[M | None, list[Problem]]:
    """Validate ``data`` (found at ``path``) against ``model``; report, drop bad keys, retry.
    With ``ignored``, an unknown key is a warning appended there, not a problem."""
    if not isinstance(data, dict):
        line = lines.line(path)
        message = f"{where} must be a mapping (`key: value` lines), got {_shown(data)}"
        return None, [Problem(rel, line, message, None, node)]
    problems: list[Problem] = []
    data = dict(data)
    for _ in range(3):
        try:
            return model.model_validate(data), problems
        except ValidationError as error:
            for detail in error.errors():
                loc = tuple(detail["loc"])
                found = _problem(model, detail, loc, path, where, lines, rel, node)
                if ignored is not None and detail["type"] == "extra_forbidden" and len(loc) == 1:
                    ignored.append(_as_ignored(found))
                else:
                    problems.append(found)
                data.pop(loc[0] if loc else None, None)
    return None, problems


def _problem(
    model: type[BaseModel],
    detail: Any,
    loc: tuple[Any, ...],
    path: KeyPath,
    where: str,
    lines: LineMap,
    rel: str,
    node: str | None,
) -> Problem:
    line = lines.line((*path, *loc))
    key = ".".join(str(part) for part in loc)
    kind = detail["type"]
    if kind == "extra_forbidden":
        valid = _keys(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        fix = f"did you mean '{close[0]}'?" if close else f"valid keys are {', '.join(valid)}"
        return Problem(rel, line, f"unknown key '{key}' in {where}", fix, node)
    if kind in _TYPE_WORDS:
        message = f"'{key}' in {where} {_TYPE_WORDS[kind]}, got {_shown(detail['input'])}"
        return Problem(rel, line, message, None, node)
    if kind in ("greater_than", "greater_than_equal"):
        ctx = detail.get("ctx", {})
        bound = f"greater than {ctx['gt']}" if "gt" in ctx else f"at least {ctx.get('ge')}"
        message = f"'{key}' in {where} must be {bound}, got {_shown(detail['input'])}"
        return Problem(rel, line, message, None, node)
    if kind == "literal_error":
        expected = detail.get("ctx", {}).get("expected", "")
        message = f"'{key}' in {where} must be one of {expected}, got {_shown(detail['input'])}"
        return Problem(rel, line, message, None, node)
    if kind == "value_error":
        return Problem(rel, line, f"'{key}' in {where}: {detail['ctx']['error']}", None, node)
    text = str(detail["msg"])
    text = text[:1].lower() + text[1:]
    message = f"'{key}' in {where}: {text}, got {_shown(detail['input'])}"
    return Problem(rel, line, message, None, node)


def _as_ignored(problem: Problem) -> Problem:
    fix = problem.fix or ""
    if fix.startswith("valid keys"):
        fix = "remove it (the original format ignored it too)"
    else:
        fix = f"{fix} (remove it if it is not a typo)"
    return Problem(problem.file, problem.line, f"{problem.message} is ignored", fix, problem.node)


def _keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys accepted at ``loc`` inside ``model`` (following nested models)."""
    for part in loc:
        info = model.model_fields.get(str(part))
        nested = _nested_model(info.annotation) if info is not None else None
        if nested is None:
            return []
        model = nested
    return [info.alias or name for name, info in model.model_fields.items()]


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)
