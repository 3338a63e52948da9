"""The registry: registration, building, errors that list what is accepted, and the `list` command."""

import subprocess
import sys

import pytest

import ganblocks
from ganblocks.registry import KINDS, REGISTRIES, Registry, UnknownComponentError, build, registry


def test_every_kind_has_a_registry():
    assert set(REGISTRIES) == set(KINDS)


def test_register_and_build_passes_kwargs():
    reg = Registry("toy")

    @reg.register("double")
    class Double:
        """Doubles a number."""

        def __init__(self, x):
            self.y = 2 * x

    assert reg.build("double", x=3).y == 6
    assert reg.names() == ["double"]
    assert reg.summary("double") == "Doubles a number."
    assert "double" in reg


def test_duplicate_name_with_another_class_is_refused():
    reg = Registry("toy")
    reg.register("a")(int)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(float)


def test_unknown_name_lists_registered_names_and_origin():
    reg = Registry("upsample")
    reg.register("nearest")(int)
    reg.register("bilinear")(int)
    with pytest.raises(UnknownComponentError) as err:
        reg.get("bilinaer", where="model.upsample")
    msg = str(err.value)
    assert "'bilinaer'" in msg and "model.upsample" in msg
    assert "bilinear, nearest" in msg
    assert "did you mean 'bilinear'" in msg


def test_unknown_kind_lists_kinds():
    with pytest.raises(UnknownComponentError, match="upsample"):
        registry("upsampler")


def test_package_import_registers_components():
    # Every kind a config can name has at least one registered component once the package is imported.
    empty = [k for k in KINDS if len(REGISTRIES[k]) == 0]
    assert not empty, f"kinds with nothing registered: {empty}"


def test_build_unknown_block_from_package():
    with pytest.raises(UnknownComponentError, match="registered upsample names: .*nearest"):
        build("upsample", "trilinear")


def test_list_command_prints_every_kind_and_name():
    out = subprocess.run(
        [sys.executable, "-m", "ganblocks", "list"], capture_output=True, text=True, check=True
    ).stdout
    for kind, reg in REGISTRIES.items():
        assert f"{kind}:" in out
        for name in reg.names():
            assert name in out


def test_first_sentence_is_whole_and_joined_across_lines():
    from ganblocks.registry import first_sentence

    assert first_sentence("Doubles a number. Then more.") == "Doubles a number."
    assert first_sentence("How often the judge sees\n    the attributes; higher is better.\n\n    Args: x") == (
        "How often the judge sees the attributes; higher is better.")
    # An abbreviation before a number and a period inside a shape do not end the sentence.
    assert first_sentence("GAN-INT-CLS G (Reed et al. 2016): deconvs to (B, 3, 64, 64). Next.") == (
        "GAN-INT-CLS G (Reed et al. 2016): deconvs to (B, 3, 64, 64).")
    assert first_sentence("no full stop here\nat all\n\nsecond paragraph.") == "no full stop here at all"
    # Abbreviations followed by a capital (a name, a figure) do not end it either.
    assert first_sentence("Mixture CA (Zhang et al. ICCV 2017, cf. Sec. 3), e.g. StackGAN's. Next.") == (
        "Mixture CA (Zhang et al. ICCV 2017, cf. Sec. 3), e.g. StackGAN's.")
    assert first_sentence("As in Fig. 3 of the paper, i.e. Stage-I. Next.") == "As in Fig. 3 of the paper, i.e. Stage-I."
    assert first_sentence("") == ""


def test_list_command_prints_whole_first_sentences():
    # Each description is the start of its docstring (whitespace joined), ends at a sentence end (or is the
    # whole first paragraph), and never stops inside a word: the line the source wraps at is not the end.
    out = subprocess.run([sys.executable, "-m", "ganblocks", "list"], capture_output=True, text=True, check=True).stdout
    printed = {}
    kind = None
    for line in out.splitlines():
        if not line.startswith(" "):
            kind = line.rstrip(":")
            continue
        name, _, text = line.strip().partition(" ")
        printed[(kind, name)] = text.strip()
    assert set(printed) == {(k, n) for k, reg in REGISTRIES.items() for n in reg.names()}
    for (kind, name), text in printed.items():
        doc = " ".join((REGISTRIES[kind].get(name).__doc__ or "").split())
        paragraph = " ".join((REGISTRIES[kind].get(name).__doc__ or "").strip().split("\n\n")[0].split())
        assert doc.startswith(text), (kind, name, text)
        assert len(text) == len(doc) or doc[len(text)] == " ", f"{kind} {name}: cut mid-word: {text!r}"
        assert text.endswith((".", "!", "?")) or text == paragraph, f"{kind} {name}: cut mid-sentence: {text!r}"
    # The multi-line docstrings are where a first-line summary used to stop mid-sentence.
    assert printed[("metric", "attributes")].endswith("higher is better.")
