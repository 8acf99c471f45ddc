"""``{% uuid_url %}``, the list's cheap ``{% url %}``: the same URLs as ``reverse``, under a script prefix too."""
from __future__ import annotations

import uuid

from django.template import Context, Template
from django.urls import reverse, set_script_prefix

from kvmweb.core.templatetags.kvmweb import uuid_url


def test_uuid_url_is_what_reverse_gives() -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    for name in ("machines:detail", "machines:start", "console:screenshot"):
        assert uuid_url(name, first) == reverse(name, kwargs={"uuid": first})
        assert uuid_url(name, second) == reverse(name, kwargs={"uuid": second})
    html = Template("{% load kvmweb %}{% uuid_url 'machines:detail' id %}").render(Context({"id": first}))
    assert html == f"/vms/{first}/"
    try:
        set_script_prefix("/portal/")
        assert uuid_url("machines:detail", first) == reverse("machines:detail", kwargs={"uuid": first})
        assert uuid_url("machines:detail", first).startswith("/portal/")
    finally:
        set_script_prefix("/")
