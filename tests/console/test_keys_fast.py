"""static/console/keys.js, the US-keyboard map of "Paste as keys…", run in Node (fast): every printable ASCII
character is one key noVNC knows (a scancode for QEMU's extended key events), with Shift exactly where a US keyboard
needs it; new lines and tabs are Enter and Tab; anything else is skipped and named."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.live import ROOT

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed (npm installs the front end with it)")

SCRIPT = """
import { planKeys } from "%(keys)s";
import XtScancode from "%(xt)s";
const text = process.env.KVMWEB_KEYS_TEXT;
const plan = planKeys(text);
console.log(JSON.stringify({
  strokes: plan.strokes.map((s) => [s.ch, s.code, s.shift, s.keysym, s.code in XtScancode]),
  skipped: plan.skipped.map((s) => [s.ch, s.count, s.label]),
}));
"""


def plan(text: str) -> dict:  # type: ignore[type-arg]
    script = SCRIPT % {"keys": (ROOT / "static/console/keys.js").as_uri(),
                       "xt": (ROOT / "node_modules/@novnc/novnc/core/input/xtscancodes.js").as_uri()}
    out = subprocess.run([NODE, "--no-warnings", "--input-type=module", "-e", script],  # type: ignore[list-item]
                         env={**os.environ, "KVMWEB_KEYS_TEXT": text}, capture_output=True, text=True, timeout=30,
                         check=True).stdout
    return dict(json.loads(out))


def test_every_printable_ascii_character_is_one_known_key() -> None:
    printable = "".join(chr(c) for c in range(0x20, 0x7F))
    result = plan(printable)
    assert result["skipped"] == []
    strokes = result["strokes"]
    assert [s[0] for s in strokes] == list(printable)
    assert all(s[4] for s in strokes), [s for s in strokes if not s[4]]  # noVNC has a scancode for each code
    assert all(s[3] == ord(s[0]) for s in strokes)  # the keysym of a printable ASCII character is its code point
    shifted = {s[0] for s in strokes if s[2]}
    assert shifted == set('ABCDEFGHIJKLMNOPQRSTUVWXYZ~!@#$%^&*()_+{}|:"<>?')
    # a character and its shifted partner are the same key
    for plain, shift in zip("`1234567890-=[]\\;',./", '~!@#$%^&*()_+{}|:"<>?', strict=True):
        assert plan(plain + shift)["strokes"][0][1] == plan(plain + shift)["strokes"][1][1]


def test_new_lines_tabs_and_what_cannot_be_typed() -> None:
    result = plan("a\r\nb\rc\nd\te é😀\x07é\x7f")
    assert [s[1] for s in result["strokes"]] == ["KeyA", "Enter", "KeyB", "Enter", "KeyC", "Enter", "KeyD", "Tab",
                                                 "KeyE", "Space"]
    assert result["skipped"] == [["é", 2, "é (U+00E9)"], ["😀", 1, "😀 (U+1F600)"], ["\x07", 1, "U+0007"],
                                 ["\x7f", 1, "U+007F"]]
