"""Which API key a teacher config may use and where it may be sent, checked when the config is saved (service,
form, admin). The tests run with the ``openai`` key tied to OpenAI and 127.0.0.1, and 127.0.0.1 allowed although
it is loopback (tests/conftest.py); tests that need other settings set them."""

import socket

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError

from labeling.models import TeacherConfig
from labeling.services import teacher_config_save
from labeling.teacher.endpoints import EndpointRefused, check_url
from policyhub.settings import env_teacher_keys

FORM = {
    "name": "gpt", "provider": "openai", "model": "gpt-4o-mini", "base_url": "", "api_key_name": "openai",
    "temperature": "0.7", "samples_per_pair": "1", "top_logprobs": "5", "price_input_per_mtok": "0",
    "price_output_per_mtok": "0", "concurrency": "4", "request_timeout": "30", "max_attempts": "3",
}  # fmt: skip


def save(user, **fields):
    config = TeacherConfig(**{"name": "gpt", "provider": "openai", "model": "gpt-4o-mini", **fields})
    return teacher_config_save(config=config, user=user)


def refusal(user, **fields) -> dict[str, list[str]]:
    """The errors saving a config with ``fields`` gives; nothing is saved."""
    count = TeacherConfig.objects.count()
    with pytest.raises(ValidationError) as caught:
        save(user, **fields)
    assert TeacherConfig.objects.count() == count
    return caught.value.message_dict


# --- keys -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variable", ["DATABASE_URL", "SECRET_KEY", "AWS_SECRET_ACCESS_KEY", "OPENAI_API_KEY"])
def test_an_environment_variable_is_not_a_key(engineer, variable, monkeypatch):
    monkeypatch.setenv(variable, "a value the workers hold")
    errors = refusal(engineer, api_key_name=variable)
    assert errors == {"api_key_name": [f"API key {variable} is not configured on the workers."]}


def test_the_form_offers_only_the_configured_key_names(engineer, client_for, settings):
    settings.TEACHER_API_KEYS = {
        "openai": {"env": "OPENAI_API_KEY", "base_urls": []},
        "vllm": {"env": "VLLM_TOKEN", "base_urls": []},
    }
    client = client_for(engineer)
    page = client.get("/teachers/").content.decode()
    refused = client.post("/teachers/", {**FORM, "api_key_name": "DATABASE_URL"})

    assert '<option value="openai" selected>openai</option>' in page and '<option value="vllm">vllm</option>' in page
    assert "OPENAI_API_KEY" not in page and "VLLM_TOKEN" not in page  # the variables behind them are not shown
    assert refused.status_code == 400 and not TeacherConfig.objects.exists()
    assert "Not one of the API keys the operator configured (openai, vllm)" in refused.content.decode()
    assert "DATABASE_URL" not in refused.content.decode()  # never echoed back
    assert "DATABASE_URL" not in page
    assert client.post("/teachers/", {**FORM, "api_key_name": "vllm"}).status_code == 302
    assert TeacherConfig.objects.get().api_key_name == "vllm"


def test_an_unset_variable_and_an_unknown_key_read_the_same(engineer, settings, monkeypatch, make_config):
    """The worker's error says nothing about which variables exist."""
    from labeling.teacher.endpoints import endpoint

    settings.TEACHER_API_KEYS = {"team": {"env": "TEAM_KEY", "base_urls": []}}
    monkeypatch.delenv("TEAM_KEY", raising=False)
    monkeypatch.setenv("SECRET_KEY", "set")
    for name in ("team", "SECRET_KEY", "nope"):
        with pytest.raises(EndpointRefused) as caught:
            endpoint({"provider": "openai", "api_key_name": name, "base_url": ""})
        assert str(caught.value) == f"API key {name} is not configured on the workers."
    monkeypatch.setenv("TEAM_KEY", "sk-team")
    assert endpoint({"provider": "openai", "api_key_name": "team", "base_url": ""}).api_key == "sk-team"


def test_a_key_tied_to_base_urls_is_refused_elsewhere(engineer):
    """The issue's case: the default ``openai`` key pointed at another server."""
    errors = refusal(engineer, base_url="https://elsewhere.example/v1")
    assert errors == {
        "base_url": [
            "API key openai may not be sent to https://elsewhere.example/v1: it is tied to "
            "https://api.openai.com/v1, 127.0.0.1."
        ]
    }
    for lookalike in (
        "https://api.openai.com.elsewhere.example/v1",
        "https://api.openai.com/v1x",
        "http://api.openai.com/v1",
    ):
        assert "may not be sent to" in refusal(engineer, base_url=lookalike)["base_url"][0]
    assert save(engineer, base_url="https://api.openai.com/v1/").api_key_name == "openai"


def test_a_key_tied_to_one_server_goes_to_that_server_only(engineer, settings):
    settings.TEACHER_API_KEYS = {"vllm": {"env": "VLLM_KEY", "base_urls": ["http://127.0.0.1:8001/v1"]}}
    assert (
        "may not be sent to"
        in refusal(engineer, api_key_name="vllm", base_url="http://127.0.0.1:8002/v1")["base_url"][0]
    )
    assert (
        "may not be sent to"
        in refusal(engineer, api_key_name="vllm", base_url="http://127.0.0.1:8001/v2")["base_url"][0]
    )
    assert save(engineer, api_key_name="vllm", base_url="http://127.0.0.1:8001/v1").pk


def test_the_heuristic_needs_no_key_and_an_llm_does(engineer):
    assert refusal(engineer, api_key_name="") == {"api_key_name": ["Choose the API key this provider is sent."]}
    assert save(engineer, provider="heuristic", api_key_name="").pk


# --- base URLs --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/v1",
        "http://169.254.169.254/latest",
        "http://localhost:8000/v1",  # a host name: what it resolves to is checked
        "http://[::1]:8000/v1",
        "http://[::ffff:169.254.169.254]/v1",
        "http://127.0.0.1:8000/v1",
        "http://0.0.0.0:8000/v1",
    ],
)
def test_base_urls_to_private_loopback_or_link_local_addresses_are_refused(engineer, settings, url):
    settings.TEACHER_API_KEYS = {"openai": {"env": "OPENAI_API_KEY", "base_urls": []}}
    settings.TEACHER_ALLOWED_PRIVATE_HOSTS = []
    [message] = refusal(engineer, base_url=url)["base_url"]
    assert "is a private, loopback or link-local address" in message
    assert "TEACHER_ALLOWED_PRIVATE_HOSTS" in message


@pytest.mark.parametrize(
    ("allowed", "url"),
    [
        (["10.0.0.0/8"], "http://10.0.0.5/v1"),
        (["localhost"], "http://localhost:8000/v1"),
        (["::1"], "http://[::1]:8000/v1"),
        (["127.0.0.1"], "http://127.0.0.1:8000/v1"),
    ],
)
def test_the_setting_allows_private_hosts_it_names(engineer, settings, allowed, url):
    settings.TEACHER_API_KEYS = {"openai": {"env": "OPENAI_API_KEY", "base_urls": []}}
    settings.TEACHER_ALLOWED_PRIVATE_HOSTS = allowed
    assert save(engineer, base_url=url).base_url == url


def test_allowing_one_address_does_not_allow_its_neighbours(engineer, settings):
    settings.TEACHER_API_KEYS = {"openai": {"env": "OPENAI_API_KEY", "base_urls": []}}
    settings.TEACHER_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    assert "private, loopback" in refusal(engineer, base_url="http://127.0.0.2:8000/v1")["base_url"][0]
    assert "private, loopback" in refusal(engineer, base_url="http://169.254.169.254/v1")["base_url"][0]


def test_every_address_a_host_resolves_to_is_checked(settings, monkeypatch):
    """A host name with one public and one private address is refused; with public ones only, it is not."""
    settings.TEACHER_ALLOWED_PRIVATE_HOSTS = []
    answers = {"teacher.example": ["93.184.215.14", "10.1.2.3"], "public.example": ["93.184.215.14", "2606:4700::1"]}

    def getaddrinfo(host, port, *args, **kwargs):
        family = {True: socket.AF_INET6, False: socket.AF_INET}
        return [(family[":" in a], socket.SOCK_STREAM, 6, "", (a, port or 0)) for a in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(EndpointRefused, match=r"teacher.example \(10.1.2.3\) is a private"):
        check_url("https://teacher.example/v1")
    check_url("https://public.example/v1")


def test_urls_that_are_not_http_or_carry_credentials_are_refused(engineer, settings):
    settings.TEACHER_API_KEYS = {"openai": {"env": "OPENAI_API_KEY", "base_urls": []}}
    assert "Enter a valid URL." in refusal(engineer, base_url="file:///etc/passwd")["base_url"]
    assert "not an http(s) URL" in refusal(engineer, base_url="ftp://93.184.215.14/v1")["base_url"][0]
    assert "may not carry credentials" in refusal(engineer, base_url="https://u:p@93.184.215.14/v1")["base_url"][0]


# --- the setting ------------------------------------------------------------------------------------------------
def test_teacher_api_keys_read_json_or_the_simple_syntax(monkeypatch):
    monkeypatch.setenv("K", "openai=OPENAI_API_KEY@https://api.openai.com/v1|10.0.0.5, local=LOCAL_KEY")
    assert env_teacher_keys("K", {}) == {
        "openai": {"env": "OPENAI_API_KEY", "base_urls": ["https://api.openai.com/v1", "10.0.0.5"]},
        "local": {"env": "LOCAL_KEY", "base_urls": []},
    }
    monkeypatch.setenv("K", '{"team": {"env": "TEAM_KEY", "base_urls": ["https://llm.example/v1"]}, "b": "B_KEY"}')
    assert env_teacher_keys("K", {}) == {
        "team": {"env": "TEAM_KEY", "base_urls": ["https://llm.example/v1"]},
        "b": {"env": "B_KEY", "base_urls": []},
    }
    monkeypatch.delenv("K")
    assert env_teacher_keys("K", {"openai": "OPENAI_API_KEY"}) == {"openai": {"env": "OPENAI_API_KEY", "base_urls": []}}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("leak=SECRET_KEY", "leak may not read 'SECRET_KEY'"),
        ("db=DATABASE_URL", "db may not read 'DATABASE_URL'"),
        ('{"x": {"env": "CELERY_BROKER_URL"}}', "x may not read 'CELERY_BROKER_URL'"),
        ("Bad Name=X", "'Bad Name' is not a key name"),
        ("openai", "is not NAME=VAR"),
        ("{not json", "is not valid JSON"),
        ('{"x": {"env": "X", "base_urls": "https://a"}}', "must be a list"),
    ],
)
def test_a_bad_teacher_api_keys_setting_stops_the_start(monkeypatch, value, message):
    monkeypatch.setenv("K", value)
    with pytest.raises(ImproperlyConfigured, match=message):
        env_teacher_keys("K", {})


def test_the_operators_own_base_url_may_be_private(engineer, settings, monkeypatch):
    """OPENAI_BASE_URL is set by the operator, not typed into a config: its host counts as allowed."""
    settings.TEACHER_API_KEYS = {"openai": {"env": "OPENAI_API_KEY", "base_urls": ["http://localhost:11434/v1"]}}
    settings.TEACHER_ALLOWED_PRIVATE_HOSTS = []
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:11434/v1")
    assert save(engineer, name="default", base_url="").pk  # requests go to OPENAI_BASE_URL
    assert save(engineer, name="explicit", base_url="http://localhost:11434/v1").pk
    monkeypatch.delenv("OPENAI_BASE_URL")
    errors = refusal(engineer, name="again", base_url="")
    assert errors == {
        "base_url": [
            "API key openai may not be sent to https://api.openai.com/v1: it is tied to http://localhost:11434/v1."
        ]
    }
