"""Attention-map figures (issue 16, item 5): the bright region of each word's row is where its attention mass is."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganblocks.evaluation.attention_figure import LABEL, attention_figure, main, overlay
from ganblocks.registry import build


def _cell(png, row: int, col: int = 0, cell: int = 128, top: int = 0) -> np.ndarray:
    arr = np.asarray(Image.open(png).convert("RGB")).astype(float)
    return arr[top + row * cell: top + (row + 1) * cell, LABEL + col * cell: LABEL + (col + 1) * cell]


def test_each_word_row_is_bright_where_its_attention_mass_is(tmp_path):
    image = torch.full((3, 64, 64), 100, dtype=torch.uint8)  # flat grey: any structure comes from the maps
    attention = torch.zeros(3, 8, 8)
    attention[0, 0, 0] = 1.0            # word 0 looks at the top-left region
    attention[1, 7, 7] = 1.0            # word 1 at the bottom-right
    attention[2, :, 4:] = 1.0 / 32      # word 2 spreads over the right half
    path = attention_figure(image, [attention, attention.flip(-1)], ["red", "wings", "tail"], tmp_path / "f.png")
    assert path == tmp_path / "f.png" and not list(tmp_path.glob(".*"))  # written atomically, nothing left over
    first = _cell(path, 0)
    assert np.allclose(first, 100)  # the first row is the image itself
    for col, flip in ((0, False), (1, True)):
        w0, w1, w2 = (_cell(path, r, col).mean(-1) for r in (1, 2, 3))
        tl, br = (slice(0, 8), slice(0, 8)), (slice(120, 128), slice(120, 128))
        if flip:  # the second column's maps are mirrored: top-right and bottom-left
            tl, br = (slice(0, 8), slice(120, 128)), (slice(120, 128), slice(0, 8))
        assert w0[tl].mean() > 180 > 50 > w0[br].mean()  # peak 0.4 * 100 + 0.6 * 255 = 193, dark 40
        assert w1[br].mean() > 180 > 50 > w1[tl].mean()
        right, left = (w2[:, 72:], w2[:, :56]) if not flip else (w2[:, :56], w2[:, 72:])
        assert right.mean() > 180 and left.mean() < 50  # a uniform spread is as bright as a peak: scaled to its max


def test_overlay_blends_a_grey_mask_over_the_image():
    image = torch.full((3, 4, 4), 200, dtype=torch.uint8)
    image[0] = 0
    out = overlay(image, torch.tensor([[0.0, 2.0], [0.0, 0.0]]))
    # where the map is 0 the image is darkened to 40 %; at the map's maximum it is 0.4 * image + 0.6 * 255
    assert out[1, 3, 0] == 80 and out[0, 3, 0] == 0
    assert out[1, 0, 3] == round(0.4 * 200 + 0.6 * 255) and out[0, 0, 3] == round(0.6 * 255)


def test_too_few_maps_for_the_words_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"attention map 0 has shape \(2, 4, 4\); expected \(T, h, w\) with T >= 3"):
        attention_figure(torch.zeros(3, 8, 8, dtype=torch.uint8), torch.zeros(2, 4, 4), ["a", "b", "c"], tmp_path / "x.png")


def _damsm_run(tmp_path):
    """A pretrain_damsm folder (random weights, 32 px) and a 40x50 grey bird.png beside it."""
    from ganblocks.text.rnn import Vocabulary

    torch.manual_seed(0)
    vocab = Vocabulary(["a", "bird", "red"])
    text = build("damsm", "rnn", vocab_size=len(vocab.words), word_dim=8, dim=16)
    image = build("damsm", "small_cnn", dim=16, width=4, image_size=32)
    config = {"dim": 16, "word_dim": 8, "image_encoder": "small_cnn", "width": 4, "imsize": 32, "dataset": "synthbirds"}
    torch.save({"config": config, "vocab": vocab.words[2:], "text": text.state_dict(), "image": image.state_dict()},
               tmp_path / "final.pt")
    Image.fromarray(np.full((40, 50, 3), 90, np.uint8)).save(tmp_path / "bird.png")
    return tmp_path


@pytest.mark.parametrize("change, message", [
    ({"--image": "{d}/nope.png"}, "--image {d}/nope.png: no such file"),
    ({"--image": "{d}/final.pt"}, "cannot identify image file '{d}/final.pt'"),
    ({"--damsm": "{d}/nope"}, "--damsm {d}/nope: no pretrain_damsm checkpoint"),
    ({"--damsm": "{d}/bird.png"}, "{d}/bird.png"),
    ({"--caption": ""}, "--caption '' has no words"),
    ({"--caption": "!!! ..."}, "--caption '!!! ...' has no words"),
    ({"--out": "{d}"}, "--out {d} is a folder; give the path of the .png file to write"),
])
def test_cli_bad_paths_and_captions_are_one_line_naming_them(tmp_path, capsys, change, message):
    """Each used to be a traceback (or, for a caption without words, a figure with no word rows)."""
    d = _damsm_run(tmp_path)
    args = {"--damsm": str(d), "--image": f"{d}/bird.png", "--caption": "a red bird", "--out": f"{d}/att.png"}
    args.update({k: v.format(d=d) for k, v in change.items()})
    code = main([x for kv in args.items() for x in kv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1, err
    assert err[0].startswith("python -m ganblocks.evaluation.attention_figure: error: ") and message.format(d=d) in err[0]
    assert not (d / "att.png").exists()


def test_cli_released_files_missing_are_one_line_naming_them(tmp_path, capsys):
    code = main(["--generator", str(tmp_path / "netG.pth"), "--text-encoder", str(tmp_path / "t.pth"),
                 "--captions-pickle", str(tmp_path / "captions.pickle"), "--caption", "a red bird",
                 "--out", str(tmp_path / "att.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and err == [f"python -m ganblocks.evaluation.attention_figure: error: --generator "
                                 f"{tmp_path / 'netG.pth'}: no such file"]


def test_cli_with_a_damsm_run_writes_the_png_and_names_it_last(tmp_path, capsys):
    _damsm_run(tmp_path)
    out = tmp_path / "figs" / "att.png"
    assert main(["--damsm", str(tmp_path), "--image", str(tmp_path / "bird.png"), "--caption", "a red bird",
                 "--out", str(out)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"wrote attention figure (3 words x 1 maps) -> {out}"
    assert Image.open(out).size == (LABEL + 128, 20 + 4 * 128)  # title strip, the image row and a row per word


def test_cli_with_released_attngan_files_draws_each_attention_stage(tmp_path, capsys):
    """Official-format netG and text encoder (random weights), AttnGAN's captions.pickle: one column per stage."""
    from ganblocks.compat_attngan import BIRDS
    from ganblocks.models.attngan import AttnGenerator
    from ganblocks.text.damsm import DAMSMTextEncoder
    from tests.data.test_attngan_layout import IXTOWORD, WORDTOIX, write_captions_pickle

    torch.manual_seed(0)
    torch.save(AttnGenerator(**BIRDS).state_dict(), tmp_path / "netG.pth")
    torch.save(DAMSMTextEncoder(vocab_size=len(WORDTOIX)).state_dict(), tmp_path / "text_encoder.pth")
    write_captions_pickle(tmp_path, [[[1]], [[1]], IXTOWORD, WORDTOIX])
    out = tmp_path / "att.png"
    assert main(["--generator", str(tmp_path / "netG.pth"), "--text-encoder", str(tmp_path / "text_encoder.pth"),
                 "--captions-pickle", str(tmp_path / "captions.pickle"), "--caption", "A red bird, with ZZZ wings!",
                 "--out", str(out)]) == 0
    # 'with' and 'zzz' are not in the vocabulary: dropped as AttnGAN drops them
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"wrote attention figure (4 words x 2 maps) -> {out}"
    assert Image.open(out).size == (LABEL + 2 * 256, 20 + 5 * 256)
