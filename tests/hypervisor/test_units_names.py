"""Fast: sizes as people type and read them, and volume-name validation, before anything reaches libvirt."""
from __future__ import annotations

import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvmweb import hypervisor as hv

G = 1024**3
SizeRequest, human, parse_size, valid_volume_name = hv.SizeRequest, hv.human, hv.parse_size, hv.validate_volume_name


@pytest.mark.parametrize(("text", "expected"), [
    ("20G", SizeRequest(20 * G, False)),
    ("512M", SizeRequest(512 * 1024**2, False)),
    ("1.5T", SizeRequest(3 * 1024**4 // 2, False)),
    ("+10G", SizeRequest(10 * G, True)),
    ("64m", SizeRequest(64 * 1024**2, False)),
    ("2GiB", SizeRequest(2 * G, False)),
    ("1048576", SizeRequest(1048576, False)),
    ("1000", SizeRequest(1024, False)),  # rounded up to whole 512-byte sectors, like qemu-img
    (" 3 G ", SizeRequest(3 * G, False)),
])
def test_sizes_parse(text: str, expected: SizeRequest) -> None:
    assert parse_size(text, allow_relative=True) == expected


@pytest.mark.parametrize(("text", "words"), [
    ("-5G", "Shrinking is refused"),
    ("10X", "not a size"),
    ("0", "zero"),
    ("0G", "zero"),
    ("", "Give a size"),
    ("G", "not a size"),
    ("1e9", "not a size"),
    ("NaN", "not a size"),
    ("10 G B", "not a size"),
    ("9999999P", "larger than any disk"),
])
def test_bad_sizes_refused(text: str, words: str) -> None:
    with pytest.raises(hv.SizeInvalid) as err:
        parse_size(text, allow_relative=True)
    assert words in err.value.detail and err.value.fields == {"size": [err.value.fields["size"][0]]}


def test_relative_only_where_allowed() -> None:
    with pytest.raises(hv.InvalidRequest, match="absolute"):
        parse_size("+10G")


def test_resize_target() -> None:
    assert parse_size("+1G", allow_relative=True).target(G) == 2 * G
    assert parse_size("3G", allow_relative=True).target(G) == 3 * G


def test_human() -> None:
    assert human(2 * G) == "2 GiB"
    assert human(1536 * 1024**2) == "1.5 GiB"
    assert human(int(4.85 * 1024**2)) == "4.85 MiB"
    assert human(512) == "512 B"


@given(st.integers(min_value=1, max_value=2**40), st.sampled_from(["", "K", "M", "G", "T"]))
def test_any_positive_size_parses_to_at_least_its_value(n: int, unit: str) -> None:
    factor = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}[unit]
    if n * factor > 2**62:
        return
    size = parse_size(f"{n}{unit}").amount
    assert size >= n * factor and size % 512 == 0 and size - n * factor < 512


@given(st.text(max_size=20))
def test_negative_anything_never_passes(rest: str) -> None:
    with pytest.raises(hv.InvalidRequest):
        parse_size("-" + rest, allow_relative=True)


# ------------------------------------------------------------------------------------------------ names
BAD = ["a/b", "../etc", "..", ".", "a..b", "a b", "a'b", 'a"b', "a<b", "a>b", "a&b", "", "-a", "a.", "/abs",
       "x" * 65, "a\nb", "a\x00b", "a;b", "a$b", "é"]


@pytest.mark.parametrize("name", BAD)
def test_bad_volume_names_refused(name: str) -> None:
    with pytest.raises(hv.InvalidRequest):
        valid_volume_name(name)


@pytest.mark.parametrize("name", ["disk.qcow2", "web-1_data.raw", "A", "9lives.iso"])
def test_good_volume_names(name: str) -> None:
    assert valid_volume_name(name) == name


@given(st.text(max_size=80))
def test_any_accepted_name_stays_inside_its_pool(name: str) -> None:
    try:
        valid_volume_name(name)
    except hv.InvalidRequest:
        return
    assert not set(name) & set("/ '\"<>&\\\n\t\0") and ".." not in name
    path = hv.path_inside("/var/lib/pool", name)
    assert posixpath.dirname(path) == "/var/lib/pool"


@given(st.text(alphabet=st.sampled_from(list("ab./ '\"<>&")), min_size=1, max_size=12))
def test_names_with_dangerous_characters_refused(name: str) -> None:
    if set(name) <= set("ab.") and ".." not in name and not name.startswith(".") and not name.endswith("."):
        return  # a legitimately safe name such as "a.b"
    with pytest.raises(hv.InvalidRequest):
        valid_volume_name(name)


def test_path_inside_refuses_escapes() -> None:
    with pytest.raises(hv.InvalidRequest):
        hv.path_inside("/pool", "../etc/passwd")
    with pytest.raises(hv.InvalidRequest):
        hv.path_inside("/pool", "a/b")
