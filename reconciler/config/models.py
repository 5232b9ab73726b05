# mypy: disable-error-code="assignment, arg-type"
# (Optional fields that must not be sent as null are typed `int`, not `int | None`, with a None
# default: pydantic never validates the default, so an explicit `null` in a file is rejected.)
"""Pydantic models of the complete Twin24 create payload (twin24-api.md sections 1 and 2).

The models are the single source of truth: `validate` checks merged campaigns with them, the
sandbox checks request bodies with them, and `schema` generates both JSON Schemas from them.
Field order is the API page's order; `fmt` sorts campaign keys by it.

Conditional requirements ("secondExecData is required when secondExec is ch") are declared
once per model in `CONDITIONALS`, enforced by a model validator and emitted as draft-07
`if`/`then` by `schema.py`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from reconciler.config import normalize
from reconciler.config.campaign import Campaign as Campaign  # re-exported
from reconciler.config.scalars import INT_MAX as INT_MAX  # re-exported
from reconciler.config.scalars import whole

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
URL_PATTERN = r"^https?://[^\s/?#@]+(@[^\s/?#]+)?(/[^\s]*)?$"
START_MOMENT_PATTERN = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]) ([01][0-9]|2[0-3]):[0-5][0-9]$"
)
SECONDS_OF_DAY_MAX = 86399


def _to_int(low: int, high: int) -> BeforeValidator:
    """JSON (and JSON Schema's "integer") treat 30.0 as the integer 30; so do we. A float too
    large to be the whole number written (1e30, 1e308) is refused by the bound it is beyond;
    inf, nan and 2.5 stay floats, so the error shows them as written ("expected an integer")."""

    def convert(value: Any) -> Any:
        number = whole(value)
        if number is not None:
            return number
        if isinstance(value, float) and value.is_integer():  # +-1e30 ... +-1e308
            kind, bound = ("less_than_equal", "le") if value > 0 else ("greater_than_equal", "ge")
            raise PydanticCustomError(kind, "out of bounds", {bound: high if value > 0 else low})
        return value

    return BeforeValidator(convert)


def _check_cps(value: float) -> float:
    if value not in normalize.CPS_VALUES:
        raise PydanticCustomError(
            "cps_range",
            "cps {value} cannot be encoded: expected 1.01..1.99 (N calls per second, "
            "1 + N/100) or 0.01..0.99 (1 call every N seconds, 1 - N/100), two decimals, "
            'or a rate text such as "3/s" or "1/60s"',
            {"value": value},
        )
    return value


def _check_start_moment(value: str) -> str:
    try:
        datetime.strptime(value, "%Y-%m-%d %H:%M")
    except ValueError:
        raise PydanticCustomError(
            "date_invalid", "{value} is not a real date and time", {"value": value}
        ) from None
    return value


Uuid = Annotated[str, Field(pattern=UUID_PATTERN, json_schema_extra={"format": "uuid"})]
Seconds = Annotated[int, Field(ge=0, le=INT_MAX), _to_int(0, INT_MAX)]
Count = Annotated[int, Field(ge=1, le=INT_MAX), _to_int(1, INT_MAX)]
TimeOfDay = Annotated[int, Field(ge=0, le=SECONDS_OF_DAY_MAX), _to_int(0, SECONDS_OF_DAY_MAX)]
Url = Annotated[str, Field(pattern=URL_PATTERN, json_schema_extra={"format": "uri"})]
Cps = Annotated[
    float,
    AfterValidator(_check_cps),
    Field(json_schema_extra={"enum": list(normalize.CPS_VALUES_SORTED)}),
]


@dataclass(frozen=True)
class Conditional:
    """`field` is required when `trigger` is one of `values`."""

    trigger: str
    values: tuple[Any, ...]
    field: str

    def applies(self, data: Any) -> bool:
        """True when `data` (a mapping) sets the trigger to a listed value but not the field."""
        if not isinstance(data, dict) or self.field in data:
            return False
        value = data.get(self.trigger)
        return any(type(value) is type(v) and value == v for v in self.values)

    def describe(self) -> str:
        shown = " or ".join(_show(v) for v in self.values)
        return f"{self.field} is required when {self.trigger} is {shown}"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ApiModel(BaseModel):
    """Strict JSON types, unknown fields forbidden, conditional requirements enforced."""

    model_config = ConfigDict(strict=True, extra="forbid")
    CONDITIONALS: ClassVar[tuple[Conditional, ...]] = ()

    @model_validator(mode="after")
    def _conditionals(self) -> ApiModel:
        data = {name: getattr(self, name) for name in self.model_fields_set}
        for rule in self.CONDITIONALS:
            if rule.applies(data):
                raise PydanticCustomError(
                    "missing_conditional",
                    "{message}",
                    {"message": rule.describe(), "field": rule.field, "trigger": rule.trigger},
                )
        return self


class RedialRule(ApiModel):
    """Redial rule for one call result."""

    CONDITIONALS = (Conditional("redial", (True,), "time"), Conditional("redial", (True,), "count"))
    redial: bool = Field(description="Redial in this case.")
    time: Seconds = Field(None, description="Delay before the redial, in seconds.")
    count: Count = Field(None, description="How many redials.")


class LimitRule(ApiModel):
    """A redial limit (newer API page)."""

    CONDITIONALS = (Conditional("redial", (True,), "count"),)
    redial: bool = Field(description="Whether the limit applies.")
    count: Seconds = Field(None, description="The limit.")


class AdditionalOptions(ApiModel):
    """Call handling options."""

    CONDITIONALS = (
        Conditional("useTr", (True,), "allowCallTimeFrom"),
        Conditional("useTr", (True,), "allowCallTimeTo"),
        Conditional("recordCall", (True,), "recTrimLeft"),
        Conditional("detectRobot", (True,), "detectRobotMode"),
    )
    fullListMethod: Literal["reject"] = Field(description="Always `reject`.")
    fullListTime: Seconds = Field(
        description="After how many seconds of conversation a call counts as effective."
    )
    useTr: bool = Field(None, description="Respect the callee's local time.")
    allowCallTimeFrom: TimeOfDay = Field(
        None,
        description="Start of the allowed calling window, seconds since midnight (0..86399); "
        'campaign files may write "HH:MM" or "HH:MM:SS". Required when useTr is true.',
    )
    allowCallTimeTo: TimeOfDay = Field(
        None,
        description="End of the allowed calling window, seconds since midnight (0..86399); "
        'campaign files may write "HH:MM" or "HH:MM:SS". Required when useTr is true.',
    )
    recordCall: bool = Field(description="Record the calls.")
    recTrimLeft: Seconds = Field(
        None,
        description="Seconds cut from the start of each recording. Required when recordCall "
        "is true.",
    )
    detectRobot: bool = Field(None, description="Answering-machine detection on/off.")
    detectRobotMode: Literal["back", "block"] = Field(
        None,
        description="`back`: the call ends when a machine answers; `block`: the bot stays "
        "silent until a human is heard. Required when detectRobot is true.",
    )
    providerId: Uuid | None = Field(None, description="Own trunk id; only with your own trunk.")
    detectRobotGreeting: Uuid | None = Field(
        None, description="Greeting used by answering-machine detection (newer API page)."
    )
    fz230: bool = Field(None, description="Apply the legal call-frequency limits (newer API page).")


class RedialStrategyOptions(ApiModel):
    """When and how often to call again."""

    redialStrategyEn: bool = Field(description="Master switch for redials.")
    busy: RedialRule = Field(description="Redial rule when the line is busy.")
    noAnswer: RedialRule = Field(description="Redial rule when nobody answers.")
    answerMash: RedialRule = Field(description="Redial rule when an answering machine answers.")
    congestion: RedialRule = Field(description="Redial rule on a call error.")
    answerNoList: RedialRule = Field(description="Redial rule when the call was not effective.")
    candidateLimit: LimitRule = Field(None, description="Limit per candidate (newer API page).")
    numberLimit: LimitRule = Field(None, description="Limit per number (newer API page).")


class WebhookEvent(ApiModel):
    """One webhook event switch."""

    name: str = Field(description="Event name.")
    value: bool = Field(description="Send this event.")


class WebhookEvents(ApiModel):
    """Which events a webhook receives."""

    CALL_ENDED: WebhookEvent = Field(None, description="A call ended.")
    CANDIDATE_CHANGED: WebhookEvent = Field(None, description="A callee changed.")
    CALL_REDIRECTED: WebhookEvent = Field(None, description="A call was transferred.")
    RECALL_SCHEDULED: WebhookEvent = Field(None, description="A redial was scheduled.")
    EFFICIENCY_REACHED: WebhookEvent = Field(None, description="A call became effective.")
    AUTOCALL_STATUS_CHANGED: WebhookEvent = Field(None, description="The task's status changed.")


class Webhook(ApiModel):
    """A webhook given as an object (newer API page)."""

    url: Url = Field(description="Where the platform sends the webhook (http or https).")
    partialResults: bool = Field(None, description="Send partial results.")
    delay: Seconds = Field(None, description="Delay before sending, in seconds.")
    events: WebhookEvents = Field(None, description="Which events to send.")


_URL_TAG, _OBJECT_TAG = "<url>", "<object>"
UNION_TAGS = frozenset({_URL_TAG, _OBJECT_TAG})


def _webhook_shape(value: Any) -> str:
    # Validation sees a dict, serialisation the Webhook instance: both are the object branch
    # (else model_dump warns "Expected `str`" for every webhook object).
    return _OBJECT_TAG if isinstance(value, dict | Webhook) else _URL_TAG


WebhookItem = Annotated[
    Annotated[Url, Tag(_URL_TAG)] | Annotated[Webhook, Tag(_OBJECT_TAG)],
    # Pick the branch by shape so an error names the right one (tags are stripped from paths).
    Discriminator(_webhook_shape),
]


class CallTask(ApiModel):
    """The complete body of `POST /telephony/autoCall`: one campaign."""

    CONDITIONALS = (
        Conditional("secondExec", ("ch",), "secondExecData"),
        Conditional("cidType", ("gornum", "pool"), "cidData"),
        Conditional("startType", ("time",), "startMoment"),
    )
    name: Annotated[str, Field(min_length=1)] = Field(
        description="Campaign (task) name; unique across all campaigns."
    )
    defaultExec: Literal["robot"] = Field(description="Caller type; always `robot`.")
    defaultExecData: Uuid = Field(description="Id of the bot scenario that makes the calls.")
    secondExec: Literal["end", "ignore", "ch"] = Field(
        description="When the bot asks to transfer the call: `end`, `ignore`, or `ch` "
        "(transfer to the channel in secondExecData)."
    )
    secondExecData: Uuid = Field(
        None, description="Id of the channel to transfer to. Required when secondExec is ch."
    )
    cidType: Literal["default", "gornum", "pool"] = Field(
        description="Caller id shown to the callee: `default`, `gornum` (one number) or "
        "`pool` (a pool of numbers)."
    )
    cidData: Uuid = Field(
        None,
        description="Id of the number or pool. Required when cidType is gornum or pool.",
    )
    startType: Literal["manual", "time"] = Field(
        description="`manual` or `time` (start at startMoment)."
    )
    startMoment: Annotated[
        str, Field(pattern=START_MOMENT_PATTERN), AfterValidator(_check_start_moment)
    ] = Field(
        None,
        description='Start, "YYYY-MM-DD hh:mm" in the company\'s time zone. Required when '
        "startType is time.",
    )
    cps: Cps = Field(
        description="Dialing intensity, ENCODED (not calls per second): 1 + N/100 means N "
        "calls every second (1.03 = 3 calls/s); 1 - N/100 means 1 call every N seconds "
        '(0.4 = 1 call / 60 s); N from 1 to 99. Campaign files may write "3/s" or "1/60s".'
    )
    taskComment: str = Field(None, description="Free comment.")
    webhookUrls: list[WebhookItem] = Field(
        None, description="Where the platform sends webhooks: URLs or webhook objects."
    )
    # Not the class docstring word for word: pydantic drops a field description that equals
    # the referenced model's, and every property must carry one for editors.
    additionalOptions: AdditionalOptions = Field(
        description="Call handling options: effective-call time, calling window, recording, "
        "answering-machine detection."
    )
    redialStrategyOptions: RedialStrategyOptions = Field(description="Redial strategy.")
    scheduleId: Uuid | None = Field(None, description="Schedule id (newer API page).")
    callStrategy: Literal["STEP_2_STEP", "PARALLEL"] = Field(
        None, description="Call strategy (newer API page)."
    )
    checkPhone: bool = Field(None, description="Check phone numbers (newer API page).")
    sendReportAfterFinish: bool = Field(
        None, description="Send a report when the task finishes (newer API page)."
    )
    lifetime: Count = Field(None, description="Seconds until the task is halted (newer API page).")
    phoneNormalization: Literal["RU"] | None = Field(
        None, description='Phone number normalisation: null or "RU" (newer API page).'
    )


def payload_of(data: dict[str, Any]) -> dict[str, Any]:
    """Validate a normalised campaign; return the exact body to POST (unset fields omitted).

    Raises pydantic's ValidationError; `validate.py` maps its errors to lines.
    """
    task = CallTask.model_validate(data)
    return task.model_dump(mode="json", exclude_unset=True)


def error_path(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """A pydantic error location without the union branch tags (`<url>`, `<object>`).

    Pydantic puts a tag right after the list index of the item it chose a branch for; a key
    a user wrote (`<x`, `<<`, even `<url>` inside a webhook object) is kept.
    """
    return tuple(
        part
        for i, part in enumerate(loc)
        if not (part in UNION_TAGS and i > 0 and isinstance(loc[i - 1], int))
    )


def check_body(body: Any) -> list[tuple[str, str]]:
    """Validate a request body as the API would: `(path, message)` per problem, or []."""
    try:
        CallTask.model_validate(body)
    except ValidationError as exc:
        return [
            (".".join(str(p) for p in error_path(err["loc"])) or "(body)", err["msg"])
            for err in exc.errors(include_url=False)
        ]
    return []


def missing_conditionals(
    data: Any, model: type[ApiModel] = CallTask, path: tuple[str | int, ...] = ()
) -> list[tuple[tuple[str | int, ...], Conditional]]:
    """Every conditional requirement `data` misses, at any depth, even when other fields are
    invalid (pydantic skips model validators then). Returns `(path of the mapping, rule)`."""
    if not isinstance(data, dict):
        return []
    found = [(path, rule) for rule in model.CONDITIONALS if rule.applies(data)]
    for name, sub in submodels(model).items():
        if name in data:
            found += missing_conditionals(data[name], sub, (*path, name))
    return found


@functools.cache
def submodels(model: type[BaseModel]) -> dict[str, type[ApiModel]]:
    """Field name -> nested model, for the fields of `model` that hold one."""
    found = {}
    for name, info in model.model_fields.items():
        sub = _submodel(info.annotation)
        if sub is not None:
            found[name] = sub
    return found


def _submodel(annotation: Any) -> type[ApiModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, ApiModel):
        return annotation
    for arg in get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, ApiModel):
            return arg
    return None


def field_order(model: type[BaseModel] = CallTask) -> dict[str, int]:
    """Position of each field name in the API page's order (for `fmt`)."""
    return {name: i for i, name in enumerate(model.model_fields)}
