"""Teacher configs over the JSON API (ML engineers): list, create, update, and each config's audit log.

The same form as the page (``labeling.forms.TeacherConfigForm``) validates the fields, the model checks the
endpoint allow-list (``labeling/teacher/endpoints.py``), and the same service saves and audits every base URL and
API key change (``TeacherConfigChange``). An API key is only ever named (one of ``TEACHER_API_KEYS``): no field
takes or returns a key's value, and a body with any field not listed here is refused.
"""

from decimal import Decimal

from django.forms.models import model_to_dict
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import ConfigDict, StrictBool, StrictInt, StrictStr

from policyhub.api_root import IDEMPOTENT, ErrorOut, FieldErrorsOut, TextIn, form_invalid, require_role
from policyhub.roles import ML_ENGINEER

from .. import selectors, services
from ..forms import TeacherConfigForm
from ..models import TeacherConfig

router = Router(tags=["teachers"])
ERRORS = {400: FieldErrorsOut, 403: ErrorOut, 404: ErrorOut}


class TeacherConfigChangeIn(TextIn):
    """Fields of a teacher config; what is left out keeps its value (on create: the page's default)."""

    model_config = ConfigDict(extra="forbid")

    provider: StrictStr | None = Field(None, description="``openai`` (any OpenAI-compatible API) or ``heuristic``.")
    model: StrictStr | None = None
    base_url: StrictStr | None = Field(None, description="Empty: OPENAI_BASE_URL, or OpenAI itself.")
    api_key_name: StrictStr | None = Field(
        None, description="The name of a key in TEACHER_API_KEYS (GET /api/teachers/keys); never the key itself."
    )
    temperature: float | None = None
    samples_per_pair: StrictInt | None = None
    logprobs: StrictBool | None = None
    top_logprobs: StrictInt | None = None
    price_input_per_mtok: Decimal | None = None
    price_cached_input_per_mtok: Decimal | None = Field(None, description="Null: the input price.")
    price_output_per_mtok: Decimal | None = None
    batch_price_factor: Decimal | None = None
    concurrency: StrictInt | None = None
    request_timeout: float | None = None
    max_attempts: StrictInt | None = None


class TeacherConfigUpdateIn(TeacherConfigChangeIn):
    name: StrictStr | None = None


class TeacherConfigCreateIn(TeacherConfigChangeIn):
    name: StrictStr


class TeacherConfigOut(Schema):
    id: int
    name: str
    provider: str
    model: str
    base_url: str
    api_key_name: str = Field(description="The key's name in TEACHER_API_KEYS; its value never leaves the workers.")
    temperature: float
    samples_per_pair: int
    logprobs: bool
    top_logprobs: int
    price_input_per_mtok: str
    price_cached_input_per_mtok: str | None
    price_output_per_mtok: str
    batch_price_factor: str
    concurrency: int
    request_timeout: float
    max_attempts: int
    created_by: str | None
    created_at: str


class TeacherConfigChangeOut(Schema):
    field: str
    old_value: str
    new_value: str
    changed_by: str | None
    changed_at: str


def _out(config: TeacherConfig) -> dict:
    data = model_to_dict(config, fields=TeacherConfigOut.model_fields)
    for price in ("price_input_per_mtok", "price_cached_input_per_mtok", "price_output_per_mtok", "batch_price_factor"):
        data[price] = None if data[price] is None else str(data[price])
    return {
        **data,
        "id": config.pk,
        "created_by": config.created_by.get_username() if config.created_by else None,
        "created_at": config.created_at.isoformat(),
    }


def _form(fields: dict, instance: TeacherConfig | None) -> TeacherConfigForm:
    """The page's form, bound to the config's current values (a new config's defaults) overlaid with ``fields``."""
    current = model_to_dict(instance or TeacherConfig(), fields=TeacherConfigForm.Meta.fields)
    data = {name: "" if value is None else value for name, value in {**current, **fields}.items()}
    return TeacherConfigForm(data, instance=instance)


def _config_or_404(config_id: int) -> TeacherConfig:
    config = TeacherConfig.objects.select_related("created_by").filter(pk=config_id).first()
    if config is None:
        raise HttpError(404, f"No teacher config #{config_id}.")
    return config


@router.get("/teachers", response={200: list[TeacherConfigOut], 403: ErrorOut})
def list_teachers(request):
    require_role(request, ML_ENGINEER)
    return [_out(config) for config in selectors.teacher_config_list().select_related("created_by")]


@router.get("/teachers/keys", response={200: list[str], 403: ErrorOut})
def list_teacher_keys(request):
    """The names of the API keys the operator configured (TEACHER_API_KEYS), for ``api_key_name``."""
    require_role(request, ML_ENGINEER)
    return selectors.teacher_key_names()


@router.post(
    "/teachers",
    response={200: TeacherConfigOut, 201: TeacherConfigOut, 400: FieldErrorsOut, 403: ErrorOut},
    openapi_extra=IDEMPOTENT,
)
def create_teacher(request, payload: TeacherConfigCreateIn):
    """Add a teacher config (201). A field the form refuses is a 400 naming it, and nothing is saved. Send an
    ``Idempotency-Key`` header: the same key from the same user returns the config it made (200)."""
    require_role(request, ML_ENGINEER)
    key = request.headers.get("Idempotency-Key", "")[:200]
    if existing := selectors.teacher_config_for_key(user=request.auth, key=key):
        return Status(200, _out(existing))
    form = _form(payload.model_dump(exclude_unset=True), None)
    if not form.is_valid():
        if existing := selectors.teacher_config_for_key(user=request.auth, key=key):  # a concurrent retry won
            return Status(200, _out(existing))
        return form_invalid(form)
    config = services.teacher_config_save(config=form.save(commit=False), user=request.auth, idempotency_key=key)
    return Status(201, _out(_config_or_404(config.pk)))


@router.patch("/teachers/{config_id}", response={200: TeacherConfigOut, **ERRORS})
def update_teacher(request, config_id: int, payload: TeacherConfigUpdateIn):
    """Change the fields sent; the others keep their values. Runs keep their own snapshot of the config, so a
    change never alters a run already made. Base URL and API key changes are recorded (``/changes``)."""
    require_role(request, ML_ENGINEER)
    config = _config_or_404(config_id)
    form = _form(payload.model_dump(exclude_unset=True), config)
    if not form.is_valid():
        return form_invalid(form)
    services.teacher_config_save(config=form.save(commit=False), user=request.auth)
    return _out(_config_or_404(config_id))


@router.get("/teachers/{config_id}/changes", response={200: list[TeacherConfigChangeOut], 403: ErrorOut, 404: ErrorOut})
def list_teacher_changes(request, config_id: int):
    """Every change of the config's base URL and API key name: who, when, old → new (newest first)."""
    require_role(request, ML_ENGINEER)
    return [
        {
            "field": change.field,
            "old_value": change.old_value,
            "new_value": change.new_value,
            "changed_by": change.changed_by.get_username() if change.changed_by else None,
            "changed_at": change.changed_at.isoformat(),
        }
        for change in selectors.teacher_config_changes(_config_or_404(config_id))
    ]
