"""The JSON API's root (django-ninja): the one ``NinjaAPI``, how callers authenticate, the role check every
endpoint makes and the error answers shared by every router. The routers themselves (policies, labeling, exports)
are mounted on it in ``policyhub/urls.py``; OpenAPI schema at ``/api/openapi.json``, docs at ``/api/docs``.

Authentication: ``Authorization: Bearer <token>`` with a per-user API token (an expired one gets a 401 that
says so), or the browser session (with CSRF).
Every endpoint checks the caller's role, exactly like the pages.
"""

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import DataError
from django.http import Http404, HttpRequest
from ninja import NinjaAPI, Schema, Status
from ninja.errors import HttpError
from ninja.errors import ValidationError as RequestInvalid
from ninja.parser import Parser
from ninja.security import HttpBearer, django_auth
from pydantic import model_validator

from . import roles, services
from .models import ContentValidationError


class TokenAuth(HttpBearer):
    openapi_scheme = "bearer"

    def authenticate(self, request: HttpRequest, token: str):
        try:
            user = services.api_token_authenticate(raw=token)
        except services.ApiTokenExpired as expired:
            raise HttpError(401, str(expired)) from expired
        if user is not None:
            request.user = user
        return user


def _nul_at(value, path: list) -> list | None:
    """Where in parsed JSON or a query a NUL character is (a key or a string), or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return [*path, key]
        found = _nul_at(item, [*path, key])
        if found is not None:
            return found
    return None


class TextParser(Parser):
    """django-ninja's parser, refusing a query or form field with a NUL character (``\\u0000``) with a 422:
    PostgreSQL can neither store nor compare such text, so it would otherwise fail as a database error (500)."""

    def parse_querydict(self, data, list_fields, request):
        parsed = super().parse_querydict(data, list_fields, request)
        found = _nul_at(parsed, ["form" if data is request.POST else "query"])
        if found is not None:
            raise RequestInvalid(
                [{"type": "nul_character", "loc": found, "msg": "Text may not contain NUL (\\u0000)."}]
            )
        return parsed


class TextIn(Schema):
    """Base of the API's JSON bodies: text with a NUL character is refused with a 422, as ``TextParser`` does for
    queries and forms."""

    @model_validator(mode="wrap")
    @classmethod
    def _refuse_nul(cls, data, handler):
        found = _nul_at(getattr(data, "_obj", data), [])  # ninja may have wrapped the parsed JSON already
        if found is not None:
            raise ValueError(f"Text may not contain NUL (\\u0000), as at {'.'.join(map(str, found)) or 'the top'}.")
        return handler(data)


#: Answers every router shares but no endpoint declares: a 401 from the authentication above, and django-ninja's own
#: 422 for a request whose parameters or body do not fit the operation's schema (``detail`` lists each problem).
UNAUTHORIZED = {
    "description": "No valid API token (missing, unknown, revoked or expired) and no browser session.",
    "content": {"application/json": {"schema": {
        "type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"],
    }}},
}  # fmt: skip
UNPROCESSABLE = {
    "description": "A parameter or the body does not match the schema; each entry of ``detail`` names one.",
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["detail"],
        "properties": {"detail": {"type": "array", "items": {"type": "object"}}},
    }}},
}  # fmt: skip


#: ``openapi_extra`` of the endpoints that create something (runs, exports): the header that makes a retry safe.
IDEMPOTENT = {
    "parameters": [
        {"in": "header", "name": "Idempotency-Key", "required": False, "schema": {"type": "string"},
         "description": "Any string (the first 200 characters count): the same key from the same user returns the "
                        "object the first request made instead of making another."},
    ]
}  # fmt: skip


class PolicyHubAPI(NinjaAPI):
    """The API, with the shared 401 and 422 answers listed in the OpenAPI document of every operation they can
    come from, so generated clients (and the fuzz test, ``tests/policyhub/test_api_fuzz.py``) expect them."""

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for operations in schema["paths"].values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                if operation.get("security"):
                    responses.setdefault(401, UNAUTHORIZED)
                if operation.get("parameters") or operation.get("requestBody"):
                    responses.setdefault(422, UNPROCESSABLE)
        return schema


api = PolicyHubAPI(
    title="PolicyHub API",
    version="1",
    description="Policies, versions, diffs and prompts. Authenticate with `Authorization: Bearer <token>`.",
    auth=[TokenAuth(), django_auth],
    parser=TextParser(),
    urls_namespace="api",
)


class ErrorOut(Schema):
    detail: str


class FieldErrorsOut(Schema):
    """A 400 for input a form or model refused: ``detail`` says it in one line, each part naming its field;
    ``errors`` holds every message by field (``__all__``: not one field's); none when the body could not be read
    at all ("Cannot parse request body")."""

    detail: str
    errors: dict[str, list[str]] = {}


def field_messages(errors: dict[str, list[str]]) -> str:
    """``{"name": ["Required."], "__all__": ["No."]}`` as one line: ``name: Required. No.``."""
    return " ".join(
        message if field == NON_FIELD_ERRORS else f"{field}: {message}"
        for field, messages in errors.items()
        for message in messages
    )


def form_invalid(form) -> Status:
    """The 400 answer for a Django form that did not validate (the same form the page uses)."""
    errors = {field: [str(m) for m in messages] for field, messages in form.errors.items()}
    return Status(400, {"detail": field_messages(errors), "errors": errors})


def require_role(request: HttpRequest, *allowed: str) -> None:
    if not roles.has_role(request.auth, *allowed):
        raise HttpError(403, f"This endpoint needs the role {' or '.join(allowed)}.")


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    return api.create_response(request, {"detail": str(exc) or "Forbidden."}, status=403)


@api.exception_handler(ContentValidationError)
def _invalid_content(request, exc: ContentValidationError):
    errors = [
        {"section": e.section, "index": e.index, "field": e.field, "message": e.message} for e in exc.content_errors
    ]
    return api.create_response(request, {"detail": "The content is invalid.", "errors": errors}, status=400)


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    """A service or model refused the input: its messages, each prefixed by the field it names, if any."""
    detail = field_messages(exc.message_dict) if hasattr(exc, "error_dict") else " ".join(exc.messages)
    return api.create_response(request, {"detail": detail}, status=400)


@api.exception_handler(Http404)
def _not_found(request, exc: Http404):
    """A selector's 404 (``No policy 'x'.``) keeps its message."""
    return api.create_response(request, {"detail": str(exc) or "Not found."}, status=404)


@api.exception_handler(services.DraftConflict)
def _conflict(request, exc: services.DraftConflict):
    return api.create_response(request, {"detail": str(exc), "current_revision": exc.current.revision}, status=409)


@api.exception_handler(DataError)
def _nul_in_text(request, exc: DataError):
    """A path parameter (the parser and ``TextIn`` refuse NUL in queries, forms and bodies before any query runs)
    with a NUL character reaches PostgreSQL, which refuses it: the same 422 instead of a 500. Any other database
    error is not the caller's fault and stays a 500."""
    if "NUL" not in str(exc):
        raise exc
    detail = [{"type": "nul_character", "loc": ["path"], "msg": "Text may not contain NUL (\\u0000)."}]
    return api.create_response(request, {"detail": detail}, status=422)
