"""Changes of a teacher config's base URL or API key are recorded (who, when, old → new) and shown on its page and
in the admin; only ML engineers (and staff, in the admin) see or make them."""

import pytest
from django.utils import timezone

from labeling.models import TeacherConfig, TeacherConfigChange

FORM = {
    "name": "gpt", "provider": "openai", "model": "gpt-4o-mini", "base_url": "", "api_key_name": "openai",
    "temperature": "0.7", "samples_per_pair": "1", "top_logprobs": "5", "price_input_per_mtok": "0",
    "price_output_per_mtok": "0", "concurrency": "4", "request_timeout": "30", "max_attempts": "3",
}  # fmt: skip
FAKE = "http://127.0.0.1:8001/v1"


def changes(config) -> list[tuple]:
    return list(config.changes.order_by("id").values_list("field", "old_value", "new_value", "changed_by__username"))


def test_changing_the_base_url_or_key_is_recorded_and_shown(engineer, make_user, client_for, settings):
    settings.TEACHER_API_KEYS = {**settings.TEACHER_API_KEYS, "local": {"env": "LOCAL_KEY", "base_urls": []}}
    client = client_for(engineer)
    before = timezone.now()
    assert client.post("/teachers/", FORM).status_code == 302
    config = TeacherConfig.objects.get(name="gpt")
    assert client.post(f"/teachers/{config.pk}/", {**FORM, "base_url": FAKE}).status_code == 302
    assert client.post(f"/teachers/{config.pk}/", {**FORM, "base_url": FAKE, "model": "other"}).status_code == 302
    colleague = make_user("cole", "ml_engineer")
    client.force_login(colleague)
    assert (
        client.post(f"/teachers/{config.pk}/", {**FORM, "base_url": FAKE, "api_key_name": "local"}).status_code == 302
    )

    assert changes(config) == [  # on creation, a field that is set counts as changed from nothing
        ("api_key_name", "", "openai", "emma"),
        ("base_url", "", FAKE, "emma"),  # the model's change alone records nothing
        ("api_key_name", "openai", "local", "cole"),
    ]
    assert all(before <= change.changed_at <= timezone.now() for change in config.changes.all())
    page = client.get(f"/teachers/{config.pk}/").content.decode()
    history = page[page.index('id="teacher-changes"') :]
    assert history.index("cole") < history.index(FAKE)  # newest first
    assert '<td class="mono">openai</td><td class="mono">local</td>' in history
    assert '<td class="mono">—</td><td class="mono">http://127.0.0.1:8001/v1</td>' in history
    assert "LOCAL_KEY" not in page and "OPENAI_API_KEY" not in page


def test_a_refused_change_records_nothing_and_changes_nothing(engineer, client_for):
    client = client_for(engineer)
    client.post("/teachers/", FORM)
    config = TeacherConfig.objects.get(name="gpt")
    refused = client.post(f"/teachers/{config.pk}/", {**FORM, "base_url": "https://elsewhere.example/v1"})
    assert refused.status_code == 400 and "may not be sent to https://elsewhere.example/v1" in refused.content.decode()
    config.refresh_from_db()
    assert config.base_url == "" and changes(config) == [("api_key_name", "", "openai", "emma")]


def test_a_change_record_is_never_edited(engineer, client_for):
    client_for(engineer).post("/teachers/", FORM)
    change = TeacherConfigChange.objects.get()
    change.new_value = "something else"
    with pytest.raises(ValueError, match="never edited"):
        change.save()


def test_the_admin_refuses_the_same_and_records_its_changes(make_user, client_for, settings):
    admin = make_user("root", is_staff=True, is_superuser=True)
    client = client_for(admin)
    form = {**FORM, "batch_price_factor": "0.5", "changes-TOTAL_FORMS": "0", "changes-INITIAL_FORMS": "0"}
    added = client.post("/admin/labeling/teacherconfig/add/", form)
    assert added.status_code == 302, added.content.decode()[:3000]
    config = TeacherConfig.objects.get(name="gpt")

    leak = client.post(f"/admin/labeling/teacherconfig/{config.pk}/change/", {**form, "api_key_name": "SECRET_KEY"})
    settings.TEACHER_ALLOWED_PRIVATE_HOSTS = []
    metadata = client.post(f"/admin/labeling/teacherconfig/{config.pk}/change/", {**form, "base_url": FAKE})
    assert leak.status_code == metadata.status_code == 200  # the admin shows the form again with the errors
    assert "Not one of the API keys the operator configured" in leak.content.decode()
    assert "is a private, loopback or link-local address" in metadata.content.decode()
    settings.TEACHER_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    assert (
        client.post(f"/admin/labeling/teacherconfig/{config.pk}/change/", {**form, "base_url": FAKE}).status_code == 302
    )

    assert changes(config) == [("api_key_name", "", "openai", "root"), ("base_url", "", FAKE, "root")]
    page = client.get(f"/admin/labeling/teacherconfig/{config.pk}/change/").content.decode()
    assert FAKE in page and "root" in page
    records = client.get("/admin/labeling/teacherconfigchange/").content.decode()
    assert "gpt" in records and FAKE in records
    change = TeacherConfigChange.objects.get(field="base_url")
    assert client.post(f"/admin/labeling/teacherconfigchange/{change.pk}/delete/", {"post": "yes"}).status_code == 403
    assert TeacherConfigChange.objects.count() == 2


# --- roles -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("who", "expected"), [("annotator", 403), ("owner", 403), ("nobody", 403), ("engineer", 200)])
def test_only_ml_engineers_see_or_edit_a_config_and_its_history(request, client_for, make_config, who, expected):
    config = make_config("gpt", base_url=FAKE)
    client = client_for(request.getfixturevalue(who))
    assert client.get(f"/teachers/{config.pk}/").status_code == expected
    edited = client.post(f"/teachers/{config.pk}/", {**FORM, "base_url": "https://api.openai.com/v1"})
    assert edited.status_code == (302 if who == "engineer" else 403)
    config.refresh_from_db()
    assert (config.base_url == FAKE) is (who != "engineer")
    assert config.changes.exists() is (who == "engineer")


def test_anonymous_visitors_are_sent_to_log_in(client, make_config):
    config = make_config("gpt")
    for response in (client.get(f"/teachers/{config.pk}/"), client.post(f"/teachers/{config.pk}/", FORM)):
        assert response.status_code == 302 and response.url.startswith("/login/")
    assert not config.changes.exists()


@pytest.mark.parametrize("who", ["annotator", "owner", "engineer"])
def test_the_change_records_in_the_admin_are_for_staff_only(request, client_for, who):
    response = client_for(request.getfixturevalue(who)).get("/admin/labeling/teacherconfigchange/")
    assert response.status_code == 302 and "/admin/login/" in response.url


def test_a_config_without_a_configured_key_says_so_in_the_list(engineer, client_for, make_config):
    make_config("migrated", api_key_name="")  # as the migration leaves a config whose variable no key reads
    make_config("fine", base_url=FAKE)
    make_config("baseline", provider="heuristic", api_key_name="")
    rows = {
        row.split("</td>", 1)[0]: row
        for row in client_for(engineer).get("/teachers/").content.decode().split("<tr><td>")[1:]
    }
    assert "needs a configured key" in rows["migrated"]
    assert "needs a configured key" not in rows["fine"] and "needs a configured key" not in rows["baseline"]
