"""``manage.py figures rebuild``: data changed where no write marks the kept figures stale (here a queryset update,
as the admin or SQL would) is in the pages once the figures are rebuilt, here or by the workers."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from labeling.models import TeacherSample
from labeling.services import figures
from tests.labeling.test_editor_override_figures import _editor, _from_scratch, _shown


@pytest.fixture
def no_inline(monkeypatch):
    """Pages never refresh inline: what the editor shows is the kept snapshot, as on a large installation."""
    monkeypatch.setattr(figures, "INLINE_REFRESH_BELOW", 0)


def _rebuild(*args) -> str:
    out = StringIO()
    call_command("figures", "rebuild", *args, stdout=out)
    return out.getvalue()


def test_figures_changed_behind_the_apps_back_are_right_again_after_a_rebuild(
    reviewed_runs, policy, owner, client_for, no_inline
):
    reviewed_runs(1, 4)
    client = client_for(owner)
    before = _shown(_editor(client, policy))
    assert before == _from_scratch(policy)
    TeacherSample.objects.update(cited_rules=["R1"])  # no service call: nothing marks the figures stale
    assert _shown(_editor(client, policy)) == before != _from_scratch(policy)

    assert "marked stale; the workers compute them" in _rebuild("--queue")
    page = _editor(client, policy)
    assert "updated figures are being computed" in page and _shown(page) == before

    assert "kept figures computed again" in _rebuild()
    page = _editor(client, policy)
    assert _shown(page) == _from_scratch(policy) == {"R1": (2, 4), "R2": (0, 0), "R3": (0, 0)}
    assert "being computed" not in page


def test_a_rebuild_of_runs_or_versions_that_do_not_exist_says_so(db):
    with pytest.raises(CommandError, match="No run 999"):
        _rebuild("--run", "999")
    with pytest.raises(CommandError, match="No policy version 998"):
        _rebuild("--version", "998")
