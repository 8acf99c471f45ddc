"""The person's own account, fast: API tokens (hashed, shown once, expiry, revoke, last used, 401s), SSH keys
(checked with ssh-keygen's own fingerprints), the profile page and the password change."""
from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from kvmweb.accounts.models import ApiToken, SshKey
from kvmweb.accounts.selectors import ssh_keys_of
from kvmweb.accounts.sshkeys import ssh_key_add, ssh_key_parse
from kvmweb.accounts.tokens import token_create, token_revoke
from kvmweb.audit.models import AuditEntry
from kvmweb.core.errors import ServiceError

pytestmark = pytest.mark.django_db

ED25519 = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINOI4aipa+MwE33ggIRKh3k0AhJWxO/Afhy+HqSfj00+ alice@laptop")
ED25519_FP = "SHA256:eYopJAAy2e+DKrue8pEDlLV0RsT2laHPzag99lbFqEo"  # ssh-keygen -lf


def session(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def token_client(secret: str, scheme: str = "Token") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {secret}")
    return client


# ------------------------------------------------------------------------------------------------ tokens
def test_token_is_stored_hashed_and_works_with_token_and_bearer(owner) -> None:  # type: ignore[no-untyped-def]
    made = token_create(actor=owner, name="ci")
    assert made.secret.startswith("kvw_") and len(made.secret) == 4 + 43  # 32 random bytes, URL-safe base64
    row = ApiToken.objects.get(pk=made.token.pk)
    assert row.digest == hashlib.sha256(made.secret.encode()).hexdigest()
    assert row.prefix == made.secret[:12]
    assert all(made.secret not in str(getattr(row, f.attname)) for f in ApiToken._meta.concrete_fields)
    assert "shown only this once" in made.message
    for scheme in ("Token", "Bearer", "token"):
        response = token_client(made.secret, scheme).get("/api/v1/vms/")
        assert response.status_code == 200, (scheme, response.content)
    assert token_client(made.secret + "x").get("/api/v1/vms/").status_code == 401


def test_refusals_are_401_json_that_say_why(owner) -> None:  # type: ignore[no-untyped-def]
    anon = APIClient().get("/api/v1/vms/")
    assert anon.status_code == 401 and anon["WWW-Authenticate"] == "Token"
    assert anon.json()["error"] == "not_authenticated"

    unknown = token_client("kvw_" + "A" * 43).get("/api/v1/vms/")
    assert unknown.status_code == 401 and unknown.json() == {"error": "invalid_token", "detail": "Invalid token."}
    assert token_client("two words").get("/api/v1/vms/").status_code == 401

    expired = token_create(actor=owner, name="old")
    ApiToken.objects.filter(pk=expired.token.pk).update(expires=timezone.now() - dt.timedelta(seconds=1))
    body = token_client(expired.secret).get("/api/v1/vms/").json()
    assert body["error"] == "token_expired" and "expired on" in body["detail"]

    revoked = token_create(actor=owner, name="gone")
    token_revoke(actor=owner, token_id=revoked.token.pk)
    response = token_client(revoked.secret).get("/api/v1/vms/")
    assert response.status_code == 401 and response.json()["error"] == "token_revoked"

    live = token_create(actor=owner, name="live")
    owner.is_active = False
    owner.save()
    assert token_client(live.secret).get("/api/v1/vms/").json()["error"] == "user_inactive"


def test_last_used_is_written_at_most_once_a_minute(owner) -> None:  # type: ignore[no-untyped-def]
    made = token_create(actor=owner, name="poller")
    client = token_client(made.secret)
    assert ApiToken.objects.get(pk=made.token.pk).last_used is None
    client.get("/api/v1/quota/")
    first = ApiToken.objects.get(pk=made.token.pk).last_used
    assert first is not None
    with CaptureQueriesContext(connection) as queries:
        client.get("/api/v1/quota/")
    assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert ApiToken.objects.get(pk=made.token.pk).last_used == first
    ApiToken.objects.filter(pk=made.token.pk).update(last_used=first - dt.timedelta(seconds=61))
    client.get("/api/v1/quota/")
    assert ApiToken.objects.get(pk=made.token.pk).last_used > first - dt.timedelta(seconds=1)


def test_token_api_create_list_revoke_only_ones_own(owner, other_user) -> None:  # type: ignore[no-untyped-def]
    alice = APIClient()
    alice.force_login(owner)
    made = alice.post("/api/v1/tokens/", {"name": "deploy", "expires": "2099-12-31"}, format="json")
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["token"].startswith("kvw_") and body["prefix"] == body["token"][:12] and "detail" in body
    end_of_day = dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)  # the portal's time zone is UTC
    assert dt.datetime.fromisoformat(body["expires"].replace("Z", "+00:00")) == end_of_day

    listed = alice.get("/api/v1/tokens/").json()
    assert [t["name"] for t in listed] == ["deploy"]
    assert "token" not in listed[0] and "digest" not in listed[0] and listed[0]["expired"] is False

    # the new token itself may use the endpoints (token auth), and sees the same list
    assert token_client(body["token"]).get("/api/v1/tokens/").json()[0]["id"] == body["id"]

    bob = APIClient()
    bob.force_login(other_user)
    assert bob.get("/api/v1/tokens/").json() == []
    refused = bob.delete(f"/api/v1/tokens/{body['id']}/")
    assert refused.status_code == 404 and refused.json()["error"] == "not_found"
    assert ApiToken.objects.get(pk=body["id"]).revoked is None

    gone = alice.delete(f"/api/v1/tokens/{body['id']}/")
    assert gone.status_code == 200 and "revoked" in gone.json()["detail"]
    assert alice.get("/api/v1/tokens/").json() == []
    assert alice.delete(f"/api/v1/tokens/{body['id']}/").status_code == 404  # already revoked
    actions = list(AuditEntry.objects.filter(actor=owner).values_list("action", flat=True))
    assert "token.create" in actions and "token.revoke" in actions


@pytest.mark.parametrize("body, field", [
    ({"name": ""}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": "ok", "expires": "2001-01-01"}, "expires"),
    ({"name": "ok", "expires": "2026-13-45"}, "expires"),
    ({"name": "ok", "expires": "soon"}, "expires"),
])
def test_bad_token_requests_are_400_and_make_nothing(owner, body, field) -> None:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_login(owner)
    response = client.post("/api/v1/tokens/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert not ApiToken.objects.exists()


def test_profile_shows_a_new_token_once(owner) -> None:  # type: ignore[no-untyped-def]
    client = session(owner)
    page = client.get("/accounts/profile/")
    assert page.status_code == 200 and b"no API tokens" in page.content
    response = client.post("/accounts/profile/tokens/", {"token-name": "laptop", "token-expires": ""})
    assert response.status_code == 302 and response["Location"].endswith("/accounts/profile/#tokens")
    token = ApiToken.objects.get(user=owner)
    first = client.get("/accounts/profile/").content.decode()
    secret = first.split('id="new-token" type="text" readonly value="')[1].split('"')[0]
    assert hashlib.sha256(secret.encode()).hexdigest() == token.digest
    again = client.get("/accounts/profile/").content.decode()
    assert secret not in again and token.prefix in again  # the table still names it by its prefix

    bad = client.post("/accounts/profile/tokens/", {"token-name": "", "token-expires": ""})
    html = bad.content.decode()
    assert bad.status_code == 200 and 'id="id_token-name_error"' in html
    assert 'aria-describedby="id_token-name_helptext id_token-name_error"' in html
    past = client.post("/accounts/profile/tokens/", {"token-name": "old", "token-expires": "2001-01-01"})
    html = past.content.decode()
    assert 'id="id_token-expires_error"' in html and "in the future" in html and ApiToken.objects.count() == 1

    revoke = client.post(f"/accounts/profile/tokens/{token.pk}/revoke/")
    assert revoke.status_code == 302
    assert ApiToken.objects.get(pk=token.pk).revoked is not None


def test_revoke_form_asks_first(owner) -> None:  # type: ignore[no-untyped-def]
    token_create(actor=owner, name="laptop")
    html = session(owner).get("/accounts/profile/").content.decode()
    assert 'data-confirm="Revoke the token “laptop”?' in html
    assert "<script>" not in html and " onclick=" not in html and " onsubmit=" not in html


# ------------------------------------------------------------------------------------------------ migration
def test_old_plain_text_tokens_are_moved_hashed_and_deleted(owner) -> None:  # type: ignore[no-untyped-def]
    """Migration 0003 on a database that had DRF's authtoken table (created here as DRF made it)."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("kvmweb.accounts.migrations.0003_move_authtoken_tokens")
    key = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"
    created_type = "datetime" if connection.vendor == "sqlite" else "timestamp with time zone"
    with connection.cursor() as cursor:
        cursor.execute('CREATE TABLE "authtoken_token" ("key" varchar(40) NOT NULL PRIMARY KEY, '
                       f'"created" {created_type} NOT NULL, "user_id" integer NOT NULL UNIQUE)')
        cursor.execute('INSERT INTO "authtoken_token" VALUES (%s, %s, %s)', [key, "2024-05-01 10:00:00", owner.pk])
    migration.move_tokens(apps, SimpleNamespace(connection=connection))  # it uses the editor's connection only
    with connection.cursor() as cursor:
        cursor.execute('SELECT COUNT(*) FROM "authtoken_token"')
        assert cursor.fetchone()[0] == 0  # the plain text is gone
    moved = ApiToken.objects.get(user=owner)
    assert moved.digest == hashlib.sha256(key.encode()).hexdigest() and moved.prefix == key[:8]
    assert moved.created == dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.timezone.utc)
    assert token_client(key).get("/api/v1/vms/").status_code == 200  # the client keeps its key


def test_drf_token_authentication_is_gone() -> None:
    from django.conf import settings

    classes = settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]
    assert "rest_framework.authentication.TokenAuthentication" not in classes
    assert "rest_framework.authtoken" not in settings.INSTALLED_APPS


# ------------------------------------------------------------------------------------------------ SSH keys
def _keygen(tmp_path: Path, kind: str, bits: int | None = None, comment: str = "me@host") -> Path:
    path = tmp_path / f"key-{kind}-{bits}"
    args = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", comment, "-f", str(path)]
    if bits:
        args[4:4] = ["-b", str(bits)]
    subprocess.run(args, check=True, capture_output=True)
    return path


@pytest.mark.parametrize("kind, bits, name", [
    ("ed25519", None, "ssh-ed25519"), ("ecdsa", 256, "ecdsa-sha2-nistp256"), ("ecdsa", 384, "ecdsa-sha2-nistp384"),
    ("ecdsa", 521, "ecdsa-sha2-nistp521"), ("rsa", 2048, "ssh-rsa"), ("rsa", 3072, "ssh-rsa"),
])
def test_fingerprint_and_bits_are_what_ssh_keygen_says(tmp_path, kind, bits, name) -> None:  # type: ignore[no-untyped-def]
    path = _keygen(tmp_path, kind, bits)
    line = path.with_suffix(".pub").read_text() if path.with_suffix(".pub").exists() else \
        Path(f"{path}.pub").read_text()
    parsed = ssh_key_parse(line)
    # ssh-keygen -lf: "256 SHA256:<base64 without padding> me@host (ED25519)"
    their_bits, their_fp, *_ = subprocess.run(["ssh-keygen", "-lf", f"{path}.pub"], check=True, capture_output=True,
                                              text=True).stdout.split()
    assert (parsed.fingerprint, parsed.bits) == (their_fp, int(their_bits))
    assert parsed.key_type == name and parsed.comment == "me@host"
    assert parsed.public_key == " ".join(line.split()[:2])


def test_private_key_is_refused_and_never_stored(tmp_path, owner) -> None:  # type: ignore[no-untyped-def]
    private = _keygen(tmp_path, "ed25519").read_text()
    client = APIClient()
    client.force_login(owner)
    response = client.post("/api/v1/ssh-keys/", {"public_key": private}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "private_key" and "PRIVATE key" in body["fields"]["public_key"][0]
    secret_part = private.splitlines()[2]
    assert secret_part not in response.content.decode()
    assert not SshKey.objects.exists()
    page = session(owner).post("/accounts/profile/ssh-keys/", {"key-public_key": private, "key-name": ""})
    assert page.status_code == 200 and secret_part not in page.content.decode()  # not echoed into the form
    assert "This is a PRIVATE key: it was not stored." in page.content.decode()
    assert not SshKey.objects.exists()


@pytest.mark.parametrize("text, words", [
    ("", "Paste a public key"),
    ("hello world", "must start with its type"),
    ("ssh-ed25519", "data is missing"),
    ("ssh-ed25519 AAAA!!!notbase64", "not a valid ssh-ed25519"),
    (ED25519.rsplit(" ", 1)[0][:-10], "not a valid ssh-ed25519"),  # cut short
    ("ssh-rsa " + ED25519.split()[1], "not a valid ssh-rsa"),  # the type does not match the data
    ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "DSA keys"),
    (ED25519 + "\n" + ED25519, "one line"),
    ("---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n---- END SSH2 PUBLIC KEY ----", "another format"),
    ('command="ls" ' + ED25519, "must start with its type"),
])
def test_garbage_is_refused_in_words(text, words) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ServiceError) as caught:
        ssh_key_parse(text)
    assert words in caught.value.detail and caught.value.fields["public_key"]


def test_short_rsa_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = _keygen(tmp_path, "rsa", 1024)
    with pytest.raises(ServiceError) as caught:
        ssh_key_parse(Path(f"{path}.pub").read_text())
    assert caught.value.code == "key_too_short" and "1024 bits" in caught.value.detail


def test_ssh_key_api_add_list_delete_duplicates(owner, other_user) -> None:  # type: ignore[no-untyped-def]
    alice = APIClient()
    alice.force_login(owner)
    added = alice.post("/api/v1/ssh-keys/", {"public_key": ED25519}, format="json")
    assert added.status_code == 201, added.content
    body = added.json()
    assert body["fingerprint"] == ED25519_FP and body["name"] == "alice@laptop" and body["bits"] == 256
    duplicate = alice.post("/api/v1/ssh-keys/", {"public_key": ED25519, "name": "again"}, format="json")
    assert duplicate.status_code == 409 and duplicate.json()["error"] == "duplicate"
    assert "already" in duplicate.json()["fields"]["public_key"][0]
    assert [k["fingerprint"] for k in alice.get("/api/v1/ssh-keys/").json()] == [ED25519_FP]

    bob = APIClient()
    bob.force_login(other_user)
    assert bob.get("/api/v1/ssh-keys/").json() == []
    assert bob.delete(f"/api/v1/ssh-keys/{body['id']}/").status_code == 404
    assert bob.post("/api/v1/ssh-keys/", {"public_key": ED25519}, format="json").status_code == 201  # his own copy
    assert [k.user_id for k in ssh_keys_of(owner)] == [owner.pk]

    assert alice.delete(f"/api/v1/ssh-keys/{body['id']}/").status_code == 200
    assert ssh_keys_of(owner) == [] and len(ssh_keys_of(other_user)) == 1
    actions = set(AuditEntry.objects.filter(actor=owner).values_list("action", flat=True))
    assert {"sshkey.add", "sshkey.delete"} <= actions


def test_ssh_keys_of_gives_what_cloud_init_needs(owner) -> None:  # type: ignore[no-untyped-def]
    ssh_key_add(actor=owner, public_key=ED25519, name="laptop")
    (key,) = ssh_keys_of(owner)
    assert key.public_key == " ".join(ED25519.split()[:2]) and key.name == "laptop"


def test_profile_ssh_key_errors_sit_on_the_field(owner) -> None:  # type: ignore[no-untyped-def]
    client = session(owner)
    response = client.post("/accounts/profile/ssh-keys/", {"key-public_key": "nonsense", "key-name": ""})
    html = response.content.decode()
    assert response.status_code == 200 and 'id="id_key-public_key_error"' in html
    assert 'aria-describedby="id_key-public_key_helptext id_key-public_key_error"' in html
    ok = client.post("/accounts/profile/ssh-keys/", {"key-public_key": ED25519, "key-name": "work"})
    assert ok.status_code == 302
    html = client.get("/accounts/profile/").content.decode()
    assert ED25519_FP in html and "work" in html
    key = SshKey.objects.get(user=owner)
    assert client.post(f"/accounts/profile/ssh-keys/{key.pk}/delete/").status_code == 302
    assert not SshKey.objects.exists()


# ------------------------------------------------------------------------------------------------ profile, password
def test_profile_is_linked_from_the_top_bar_and_needs_a_login(owner) -> None:  # type: ignore[no-untyped-def]
    anonymous = Client().get("/accounts/profile/")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    html = session(owner).get("/vms/").content.decode()
    assert 'href="/accounts/profile/" id="profile-link"' in html


def test_password_change_with_djangos_view(owner) -> None:  # type: ignore[no-untyped-def]
    client = session(owner)
    page = client.get("/accounts/password_change/")
    assert page.status_code == 200 and page.content.decode().count("<h1") == 1
    wrong = client.post("/accounts/password_change/", {
        "old_password": "nope", "new_password1": "a-new-secret-42", "new_password2": "a-new-secret-42"})
    html = wrong.content.decode()
    assert wrong.status_code == 200 and 'id="id_old_password_error"' in html and 'aria-invalid="true"' in html
    done = client.post("/accounts/password_change/", {
        "old_password": "alice-pass-123", "new_password1": "a-new-secret-42", "new_password2": "a-new-secret-42"})
    assert done.status_code == 302 and done["Location"] == "/accounts/password_change/done/"
    assert client.get("/accounts/profile/").status_code == 200  # this session goes on
    fresh = Client()
    assert fresh.post("/accounts/login/", {"username": "alice", "password": "alice-pass-123"}).status_code == 200
    assert fresh.post("/accounts/login/", {"username": "alice", "password": "a-new-secret-42"}).status_code == 302
    assert AuditEntry.objects.filter(actor=owner, action="account.password_change", ok=True).exists()


def test_session_lifetime_setting() -> None:
    from django.conf import settings

    assert settings.SESSION_COOKIE_AGE == int(settings.KVMWEB_SESSION_HOURS * 3600) == 12 * 3600


def test_admin_login_is_the_portals_login(owner, staff) -> None:  # type: ignore[no-untyped-def]
    anonymous = Client().get("/admin/")
    assert anonymous.status_code == 302
    follow = Client().get(anonymous["Location"])
    assert follow.status_code == 302 and follow["Location"].startswith("/accounts/login/?next=/admin/")
    assert session(owner).get("/admin/login/?next=/admin/").status_code == 403  # told, not sent round
    assert session(staff).get("/admin/").status_code == 200
