"""Fast tests of cloud-init for new VMs: every refusal in words under its field, the rendered seed read back as
cloud-init reads it (YAML), the password only as a hash, and the seed CD-ROM read back with pycdlib."""
from __future__ import annotations

import io

import pycdlib
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from django.test import override_settings
from passlib.hash import sha512_crypt

from kvmweb.core.errors import ValidationError
from kvmweb.provisioning.cloudinit import CloudInit, cloud_init_validate, render, seed_iso

PASSWORD = "correct horse battery"


def _public(key) -> str:  # type: ignore[no-untyped-def]
    return key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode("ascii")


ED25519_KEY = ed25519.Ed25519PrivateKey.generate()
ED25519 = _public(ED25519_KEY) + " alice@laptop"
ECDSA = _public(ec.generate_private_key(ec.SECP384R1())) + " alice@desk"
RSA = _public(rsa.generate_private_key(public_exponent=65537, key_size=2048))
PRIVATE = ED25519_KEY.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()).decode("ascii")


def validate(**given: object) -> CloudInit:
    fields: dict[str, object] = dict(hostname="web1", user="alice", ssh_keys=[ED25519], password=None,
                                     user_data="")
    fields.update(given)
    return cloud_init_validate(**fields)


def refusal(**given: object) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        validate(**given)
    return caught.value.fields


def user_data_of(ci: CloudInit) -> dict:  # type: ignore[type-arg]
    seed = render(ci)
    assert seed.user_data.startswith("#cloud-config\n")
    data = yaml.safe_load(seed.user_data)
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("hostname", [
    "", "   ", "-web", "web-", "web_1", "web 1", "wéb", "a..b", ".web", "web.", "a" * 64, ".".join(["a" * 63] * 4) + "x",
    "web1;reboot", 42,
])
def test_bad_host_names_are_refused(hostname: object) -> None:
    assert list(refusal(hostname=hostname)) == ["cloud_init.hostname"]


def test_host_names_are_lower_cased_and_may_be_dotted() -> None:
    assert validate(hostname=" Web-1.Example.ORG ").hostname == "web-1.example.org"
    longest = ".".join(["a" * 63] * 3 + ["b" * 61])  # 253 characters
    assert validate(hostname=longest).hostname == longest


@pytest.mark.parametrize("user", ["", "Alice", "1alice", "al ice", "alice$", "a" * 33, "root", "nobody", "daemon",
                                  "bin", "sys", None, ["alice"]])
def test_bad_user_names_are_refused(user: object) -> None:
    assert list(refusal(user=user)) == ["cloud_init.user"]


@pytest.mark.parametrize("user", ["alice", "_svc", "a", "deploy-bot_2", "a" * 32])
def test_portable_user_names_are_accepted(user: str) -> None:
    assert validate(user=user).user == user


@pytest.mark.parametrize("garbage, words", [
    ("hello", "does not look like an SSH public key"),
    ("ssh-ed25519", "data is missing"),
    ("ssh-ed25519 AAAA!!!notbase64", "not a valid ssh-ed25519"),
    ("ssh-rsa " + ED25519.split()[1], "not a valid ssh-rsa"),
    ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "DSA keys"),
    (_public(rsa.generate_private_key(public_exponent=65537, key_size=1024)), "at least 2048"),
    ("-----BEGIN PUBLIC KEY-----", "another format"),
    (PRIVATE, "PRIVATE key"),
    ("ssh-ed25519 AAAA comment with ünïcode", "plain ASCII"),
    (7, "must be text"),
])
def test_each_kind_of_bad_key_is_refused_with_its_position(garbage: object, words: str) -> None:
    fields = refusal(ssh_keys=[ED25519, garbage])
    assert list(fields) == ["cloud_init.ssh_keys"]
    (message,) = fields["cloud_init.ssh_keys"]
    assert message.startswith("key 2: ") and words in message


def test_a_private_key_is_never_echoed_back() -> None:
    fields = refusal(ssh_keys=[PRIVATE])
    secret_line = PRIVATE.splitlines()[1]
    assert secret_line not in repr(fields)


def test_keys_are_kept_in_order_once_each_from_a_list_or_lines() -> None:
    assert validate(ssh_keys=[ED25519, ECDSA, RSA, ED25519]).ssh_keys == (ED25519, ECDSA, RSA)
    assert validate(ssh_keys=f"{ECDSA}\n\n{ED25519}\n").ssh_keys == (ECDSA, ED25519)
    assert validate(ssh_keys=[]).ssh_keys == ()
    assert list(refusal(ssh_keys={"a": ED25519})) == ["cloud_init.ssh_keys"]


@pytest.mark.parametrize("password", ["short", "1234567", 12345678, "a\x00bcdefghi", "x" * 257])
def test_bad_passwords_are_refused(password: object) -> None:
    assert list(refusal(password=password)) == ["cloud_init.password"]


@pytest.mark.parametrize("user_data, words", [
    ("packages: [htop]\n", "#cloud-config"),
    ("#!/bin/sh\necho hi\n", "#cloud-config"),
    (" #cloud-config\npackages: [htop]\n", "#cloud-config"),
    ("#cloud-config\npackages: [htop\nruncmd: []\n", "line 3: not valid YAML"),
    ("#cloud-config\npackages:\n\t- htop\n", "line 3: not valid YAML"),
    ("#cloud-config\n- packages\n- runcmd\n", "not a list"),
    ("#cloud-config\njust words\n", "not a single value"),
    ("#cloud-config\n1: one\n", "top-level key"),
    ("#cloud-config\nusers: alice\n", "users must be a list"),
    (b"#cloud-config\n", "must be text"),
])
def test_bad_user_data_is_refused_in_words(user_data: object, words: str) -> None:
    fields = refusal(user_data=user_data)
    assert list(fields) == ["cloud_init.user_data"]
    assert words in fields["cloud_init.user_data"][0]


def test_user_data_over_the_limit_is_refused_counting_utf8_bytes() -> None:
    text = "#cloud-config\nwrite_files: [{path: /etc/motd, content: '" + "é" * 60 + "'}]\n"
    size = len(text.encode("utf-8"))
    assert len(text) < size
    with override_settings(KVMWEB_USER_DATA_MAX=size):
        assert validate(user_data=text).user_data == text
    with override_settings(KVMWEB_USER_DATA_MAX=size - 1):
        (message,) = refusal(user_data=text)["cloud_init.user_data"]
        assert f"at most {size - 1} bytes" in message


def test_every_problem_is_reported_at_once_and_nothing_is_hashed() -> None:
    with pytest.raises(ValidationError) as caught:
        cloud_init_validate(hostname="-", user="root", ssh_keys=["nope"], password="short",
                            user_data="#cloud-config\n[", instance_id="has space")
    assert set(caught.value.fields) == {f"cloud_init.{name}" for name in
                                        ("hostname", "user", "ssh_keys", "password", "user_data", "instance_id")}
    assert "short" not in repr(caught.value.fields)


def test_the_rendered_user_data_has_exactly_the_chosen_user_and_keys() -> None:
    ci = validate(hostname="web1", ssh_keys=[ED25519, ECDSA])
    assert ci.password_hash is None
    data = user_data_of(ci)
    assert data == {
        "hostname": "web1", "preserve_hostname": False, "ssh_pwauth": False,
        "users": [{"name": "alice", "shell": "/bin/bash", "sudo": "ALL=(ALL) NOPASSWD:ALL", "lock_passwd": True,
                   "ssh_authorized_keys": [ED25519, ECDSA]}],
    }
    meta = yaml.safe_load(render(ci).meta_data)
    assert meta == {"instance-id": ci.instance_id, "local-hostname": "web1"}
    assert render(ci).network_config is None


def test_the_password_is_only_ever_a_hash_that_verifies() -> None:
    ci = validate(hostname="db.example.org", password=PASSWORD)
    seed = render(ci)
    assert ci.password_hash is not None and sha512_crypt.verify(PASSWORD, ci.password_hash)
    assert all(PASSWORD not in text for text in (repr(ci), seed.user_data, seed.meta_data))
    assert PASSWORD.encode() not in seed_iso(seed)
    data = user_data_of(ci)
    (account,) = data["users"]
    assert account["passwd"] == ci.password_hash and account["lock_passwd"] is False
    assert data["ssh_pwauth"] is True
    assert (data["hostname"], data["fqdn"]) == ("db", "db.example.org")
    assert yaml.safe_load(seed.meta_data)["local-hostname"] == "db.example.org"


def test_user_values_stay_data_in_the_yaml() -> None:
    sneaky = ED25519.rsplit(" ", 1)[0] + " me: {sudo: true} # x"
    ci = validate(ssh_keys=[sneaky])
    assert user_data_of(ci)["users"][0]["ssh_authorized_keys"] == [sneaky]


def test_extra_user_data_wins_except_users_which_are_appended() -> None:
    extra = ("#cloud-config\npackages: [htop]\nssh_pwauth: true\nhostname: other\n"
             "users:\n  - default\n  - {name: bob, shell: /bin/sh}\nruncmd:\n  - [touch, /tmp/made]\n")
    data = user_data_of(validate(user_data=extra))
    assert data["packages"] == ["htop"] and data["runcmd"] == [["touch", "/tmp/made"]]
    assert data["ssh_pwauth"] is True and data["hostname"] == "other"
    assert [u if isinstance(u, str) else u["name"] for u in data["users"]] == ["alice", "default", "bob"]
    assert user_data_of(validate(user_data="#cloud-config\n"))["users"][0]["name"] == "alice"


def test_each_call_gets_a_fresh_instance_id_unless_one_is_given() -> None:
    first, second = validate(), validate()
    assert first.instance_id != second.instance_id
    assert first.instance_id.startswith("iid-") and len(first.instance_id) == 4 + 32
    assert validate(instance_id="iid-kept").instance_id == "iid-kept"


def test_network_config_only_when_asked() -> None:
    network = {"version": 2, "ethernets": {"eth0": {"dhcp4": True}}}
    seed = render(validate(), network_config=network)
    assert seed.network_config is not None and yaml.safe_load(seed.network_config) == network


def _read(iso: pycdlib.PyCdlib, rr_path: str) -> bytes:
    out = io.BytesIO()
    iso.get_file_from_iso_fp(out, rr_path=rr_path)
    return out.getvalue()


@pytest.mark.parametrize("with_network", [False, True])
def test_the_seed_iso_reads_back_as_cidata_with_its_files(with_network: bool) -> None:
    network = {"version": 2, "ethernets": {"eth0": {"dhcp4": True}}} if with_network else None
    seed = render(validate(password=PASSWORD), network_config=network)
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(seed_iso(seed)))
    try:
        assert iso.pvd.volume_identifier.decode().strip() == "cidata"
        names = {child.rock_ridge.name().decode() for child in iso.list_children(rr_path="/")
                 if child.rock_ridge is not None and not child.is_dot() and not child.is_dotdot()}
        expected = {"user-data": seed.user_data, "meta-data": seed.meta_data}
        if with_network:
            expected["network-config"] = seed.network_config  # type: ignore[assignment]
        assert names == set(expected)
        for name, text in expected.items():
            assert _read(iso, f"/{name}").decode() == text
        joliet = {child.file_identifier().decode("utf-16-be") for child in iso.list_children(joliet_path="/")
                  if not child.is_dot() and not child.is_dotdot()}
        assert joliet == set(expected)
    finally:
        iso.close()

