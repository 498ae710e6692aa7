"""``{% load feedback %}``: ``{% flag_item candidate_id version %}`` renders a policy owner's "Flag a policy problem"
form for one item (``labeling/_flag_item.html``, posting to ``item_flag``); nothing for anyone else. ``version`` is
the item's policy version (its rule IDs are listed; pass it so that a table of items costs no query per row)."""

from django import template
from django.template.loader import render_to_string

from policyhub import roles

from ..views.feedback import item_flag_context

register = template.Library()


@register.simple_tag(takes_context=True)
def flag_item(context, candidate_id: int, version) -> str:
    request = context.get("request")
    if request is None or not candidate_id or not roles.has_role(request.user, roles.POLICY_OWNER):
        return ""
    here = request.headers.get("HX-Current-URL") if request.headers.get("HX-Request") else request.get_full_path()
    flag = item_flag_context(candidate_id=candidate_id, version=version, next_url=here or "")
    return render_to_string("labeling/_flag_item.html", flag, request=request)
