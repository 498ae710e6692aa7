"""Teacher providers behind one interface (:class:`base.Provider`)."""

from .base import LabelSpace, Provider, TeacherAnswer, TeacherRequest
from .endpoints import TeacherConfigError
from .heuristic import HeuristicProvider
from .openai_provider import OpenAIProvider
from .openai_provider import request_parameters as openai_request_parameters

PROVIDERS = {"openai": OpenAIProvider, "heuristic": HeuristicProvider}


def get_provider(snapshot: dict, space: LabelSpace, *, n_supported: bool | None = None) -> Provider:
    """``n_supported``: what is known of the endpoint's ``n`` (``TeacherConfig.n_supported``)."""
    try:
        provider_class = PROVIDERS[snapshot["provider"]]
    except KeyError:
        raise TeacherConfigError(f"Unknown teacher provider {snapshot.get('provider')!r}.") from None
    return provider_class(snapshot=snapshot, space=space, n_supported=n_supported)


def request_parameters(snapshot: dict, space: LabelSpace) -> dict:
    """The cache-relevant parameters of a config, computable without credentials."""
    if snapshot["provider"] == "heuristic":
        return {"model": "heuristic-v1"}
    return openai_request_parameters(snapshot, space)


__all__ = [
    "request_parameters",
    "LabelSpace",
    "Provider",
    "TeacherAnswer",
    "TeacherRequest",
    "TeacherConfigError",
    "get_provider",
]
