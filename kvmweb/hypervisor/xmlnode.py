"""Typed views over libvirt XML that never lose what they do not model.

An :class:`XmlNode` wraps one lxml element. Its typed properties (:class:`Attr`, :class:`IntAttr`, :class:`Text`,
:class:`IntText`, :class:`Flag`) read and write that element's own attributes, children and text in place; every
other element, attribute, namespace and comment stays exactly as it was parsed. Serialising a node that was parsed
and not edited gives back the same elements and attributes.

Paths are ElementTree paths of plain steps, each optionally with one or more ``[@attr='value']`` tests
(``os/type``, ``sysinfo[@type='smbios']/system/entry[@name='uuid']``); writing through a path creates the missing
steps with the tested attributes set. User strings only ever become attribute values or text, never markup.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar, overload

from lxml import etree

from .errors import InvalidRequest

Element = Any  # lxml.etree._Element (lxml ships no type information)
T = TypeVar("T")
N = TypeVar("N", bound="XmlNode")

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=False, huge_tree=False)
_STEP = re.compile(r"^(?P<tag>[A-Za-z_][\w.-]*)(?P<tests>(?:\[@[\w:-]+='[^']*'\])*)$")
_TEST = re.compile(r"\[@(?P<name>[\w:-]+)='(?P<value>[^']*)'\]")


def parse_element(xml: str | bytes) -> Element:
    """Parse XML text into an lxml element (entities are not expanded, nothing is fetched from the network)."""
    data = xml.encode() if isinstance(xml, str) else xml
    try:
        return etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise InvalidRequest(f"Not well-formed XML: {exc}") from None


def serialize(element: Element) -> str:
    """The element (and everything inside it) as indented XML text, without touching the element itself."""
    out = copy.deepcopy(element)
    out.tail = None
    etree.indent(out, space="  ")
    return str(etree.tostring(out, encoding="unicode"))


def _steps(path: str) -> list[tuple[str, dict[str, str]]]:
    steps = []
    for raw in path.split("/"):
        match = _STEP.fullmatch(raw)
        if match is None:
            raise ValueError(f"unsupported path step {raw!r} in {path!r}")  # a programming error, not user input
        steps.append((match["tag"], {m["name"]: m["value"] for m in _TEST.finditer(match["tests"])}))
    return steps


def find(element: Element, path: str) -> Element | None:
    """The first element at ``path`` under ``element`` (``''``: the element itself)."""
    return element if not path else element.find(path)


def ensure(element: Element, path: str) -> Element:
    """The first element at ``path``, creating the missing steps (with their tested attributes) at the end."""
    here = element
    for tag, tests in _steps(path) if path else []:
        selector = tag + "".join(f"[@{k}='{v}']" for k, v in tests.items())
        found = here.find(selector)
        if found is None:
            found = etree.SubElement(here, tag, tests)
        here = found
    return here


def remove(element: Element, path: str) -> None:
    """Remove the first element at ``path`` (nothing when it is missing)."""
    found = find(element, path)
    if found is not None and found is not element:
        found.getparent().remove(found)


def prune(element: Element, stop: Element) -> None:
    """Remove ``element`` and then each parent up to (not including) ``stop`` that is left empty."""
    here = element
    while here is not None and here is not stop and not len(here) and not here.attrib and not (here.text or "").strip():
        parent = here.getparent()
        parent.remove(here)
        here = parent


class _Property(Generic[T]):
    """A typed property of an :class:`XmlNode`, stored in its element."""

    def __init__(self, path: str = "") -> None:
        self.path = path
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, node: None, owner: type) -> _Property[T]: ...

    @overload
    def __get__(self, node: XmlNode, owner: type) -> T: ...

    def __get__(self, node: XmlNode | None, owner: type) -> _Property[T] | T:
        if node is None:
            return self
        return self.read(node.element)

    def __set__(self, node: XmlNode, value: T) -> None:
        self.write(node.element, value)

    def read(self, element: Element) -> T:
        raise NotImplementedError

    def write(self, element: Element, value: T) -> None:
        raise NotImplementedError


class Attr(_Property[str | None]):
    """An attribute of the element at ``path``; None when missing. Writing None removes the attribute (and a
    child left empty by that)."""

    def __init__(self, path: str, attr: str) -> None:
        super().__init__(path)
        self.attr = attr

    def read(self, element: Element) -> str | None:
        found = find(element, self.path)
        return None if found is None else found.get(self.attr)

    def write(self, element: Element, value: str | None) -> None:
        if value is None:
            found = find(element, self.path)
            if found is not None:
                found.attrib.pop(self.attr, None)
                prune(found, element)
            return
        ensure(element, self.path).set(self.attr, str(value))


class IntAttr(_Property[int | None]):
    """An integer attribute; a value that is not a whole number reads as None."""

    def __init__(self, path: str, attr: str) -> None:
        super().__init__(path)
        self._raw = Attr(path, attr)

    def read(self, element: Element) -> int | None:
        return _int(self._raw.read(element))

    def write(self, element: Element, value: int | None) -> None:
        self._raw.write(element, None if value is None else str(int(value)))


class Text(_Property[str | None]):
    """The text of the element at ``path`` (stripped); None when the element is missing. Writing None removes
    the element."""

    def read(self, element: Element) -> str | None:
        found = find(element, self.path)
        return None if found is None else (found.text or "").strip()

    def write(self, element: Element, value: str | None) -> None:
        if value is None:
            remove(element, self.path)
            return
        ensure(element, self.path).text = str(value)


class IntText(_Property[int | None]):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self._raw = Text(path)

    def read(self, element: Element) -> int | None:
        return _int(self._raw.read(element))

    def write(self, element: Element, value: int | None) -> None:
        self._raw.write(element, None if value is None else str(int(value)))


class Flag(_Property[bool]):
    """Whether an (empty) child element such as ``<readonly/>`` is present."""

    def read(self, element: Element) -> bool:
        return find(element, self.path) is not None

    def write(self, element: Element, value: bool) -> None:
        if value:
            ensure(element, self.path)
        else:
            remove(element, self.path)


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip(), 0) if text.strip().lower().startswith("0x") else int(text.strip())
    except ValueError:
        return None


class XmlNode:
    """A typed view over one element. ``TAG`` is the element's name; '' accepts any element."""

    TAG: ClassVar[str] = ""

    def __init__(self, element: Element | None = None) -> None:
        if element is None:
            if not self.TAG:
                raise TypeError(f"{type(self).__name__} needs an element")
            element = etree.Element(self.TAG)
        elif self.TAG and element.tag != self.TAG:
            raise InvalidRequest(f"Expected a <{self.TAG}> element, got <{element.tag}>.")
        self.element = element

    @classmethod
    def from_xml(cls: type[N], xml: str | bytes) -> N:
        return cls(parse_element(xml))

    def to_xml(self) -> str:
        return serialize(self.element)

    def copy(self: N) -> N:
        """A detached deep copy: edits to it leave this node as it is."""
        return type(self)(copy.deepcopy(self.element))

    @property
    def tag(self) -> str:
        return str(self.element.tag)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.to_xml()[:80]!r}>"


def children(element: Element | None, tag: str, make: Callable[[Element], N]) -> list[N]:
    """Typed views over the direct children ``tag`` of ``element`` (none when ``element`` is None)."""
    if element is None:
        return []
    return [make(el) for el in element.findall(tag)]
