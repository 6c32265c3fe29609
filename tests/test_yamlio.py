"""Renders are read by rapidyaml where it gives exactly what PyYAML gives,
and by PyYAML wherever the two could differ (YAML 1.1 against 1.2)."""

from __future__ import annotations

import pytest

from scripts.core import yamlio

# Every plain-scalar form whose meaning differs between YAML 1.1 and 1.2, and
# neighbours that do not: for all of them load_render must equal PyYAML.
TOKENS = [
    "0", "1", "9", "00", "07", "08", "1_0", "0x1F", "0b1", "0o7", "1e3", "1E3", "1e+3", "1e-3", "1.5e3", "1.5E+3",
    ".5", ".5e3", "5.", "5.0", "-5", "+5", "-0", "+0", "-.5", "+.5", ".inf", "-.inf", ".nan", ".NaN", "1:20",
    "1:20.5", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "2001-1-1",
    "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "y", "n", "Y", "N",
    "true", "True", "TRUE", "false", "False", "FALSE", "null", "Null", "NULL", "~", "", "=", "1.5.0", "500m",
    "2Gi", "1.5", "1.50", "10", "123456789012345678901", "0.1", "-1.5", "v1", "1a", "0x", "1e", "1e+", "12:30",
    "1-2", "1.0e3", "0e0", "0.0", "-0.0", "00.5", "*.example.com", "'quoted'", '"yes"', "héllo", "a # comment",
]


@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize("shape", ["value: {}\n", "{}: value\n", "list:\n  - {}\n", "flow: [{}, x]\n",
                                   "a: 1\n---\nb: {}\n"])
def test_every_form_reads_as_pyyaml_reads_it(shape, token):
    text = shape.format(token)
    try:
        expected = yamlio.load_all_text(text, "t.yaml")
    except Exception as exc:  # noqa: BLE001 - then load_render must fail the same way
        with pytest.raises(type(exc)):
            yamlio.load_render(text, "t.yaml")
        return
    assert yamlio.load_render(text, "t.yaml") == expected


@pytest.mark.parametrize("text, documents", [
    ("", []), ("---\n", []), ("a: 1\n", [{"a": 1}]), ("- 1\n- a\n", [[1, "a"]]),
    ("a: 1\n---\nb: 2\n", [{"a": 1}, {"b": 2}]), ("---\na: 1\n", [{"a": 1}]),
    ("a: 1\n---\n", [{"a": 1}]), ("a: |\n  x\n  y\nb: >-\n  f\n  g\n", [{"a": "x\ny\n", "b": "f g"}]),
])
def test_documents(text, documents):
    assert yamlio.load_render(text, "t.yaml") == documents


def test_every_render_of_the_tree_reads_the_same(real_renders):
    slow = []
    for path, render in real_renders.items():
        assert render.ok, render.error
        assert yamlio.load_render(render.text, "r") == yamlio.load_all_text(render.text, "r"), path
        if yamlio.divergent(render.text):
            slow.append(path)
    # Only the cluster roots take PyYAML's path: their GitRepository's
    # `ignore` block holds lines such as `!/base/`, which outside a block
    # scalar would be a tag. Overlays and Flux builds, most of any tree, are fast.
    assert slow == ["clusters/dev", "clusters/prod", "clusters/staging"]


def test_broken_output_is_an_input_error_as_before():
    with pytest.raises(yamlio.InputError):
        yamlio.load_render("a: [1, 2\nb: 3\n", "r")
