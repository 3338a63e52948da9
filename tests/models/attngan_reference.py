"""Independent references for AttnGAN compatibility: the official state-dict layouts (names and shapes) written
from the definitions in taoxugit/AttnGAN code/model.py and code/GlobalAttention.py, their analytic parameter
counts, and functional forwards written from the official equations with torch.nn.functional over the
state-dict tensors only (no ganblocks module is used here)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _bn_entries(key: str, n: int) -> dict:
    return {f"{key}.weight": (n,), f"{key}.bias": (n,), f"{key}.running_mean": (n,), f"{key}.running_var": (n,),
            f"{key}.num_batches_tracked": ()}


def generator_entries(ngf=32, nef=256, ncf=100, z=100, r_num=2, branches=3) -> dict:
    """G_NET's state dict {key: shape}."""
    e = {"ca_net.fc.weight": (4 * ncf, nef), "ca_net.fc.bias": (4 * ncf,),
         "h_net1.fc.0.weight": (16 * ngf * 16 * 2, ncf + z), **_bn_entries("h_net1.fc.1", 16 * ngf * 16 * 2)}
    for i in range(1, 5):  # upBlock(in, out): conv3x3(in, 2 out), BN(2 out), GLU
        c_in, c_out = 16 * ngf >> (i - 1), 16 * ngf >> i
        e[f"h_net1.upsample{i}.1.weight"] = (2 * c_out, c_in, 3, 3)
        e.update(_bn_entries(f"h_net1.upsample{i}.2", 2 * c_out))
    for k in range(1, branches + 1):
        e[f"img_net{k}.img.0.weight"] = (3, ngf, 3, 3)
        if k == 1:
            continue
        e[f"h_net{k}.att.conv_context.weight"] = (ngf, nef, 1, 1)
        for r in range(r_num):  # ResBlock(2 ngf)
            e[f"h_net{k}.residual.{r}.block.0.weight"] = (4 * ngf, 2 * ngf, 3, 3)
            e.update(_bn_entries(f"h_net{k}.residual.{r}.block.1", 4 * ngf))
            e[f"h_net{k}.residual.{r}.block.3.weight"] = (2 * ngf, 2 * ngf, 3, 3)
            e.update(_bn_entries(f"h_net{k}.residual.{r}.block.4", 2 * ngf))
        e[f"h_net{k}.upsample.1.weight"] = (2 * ngf, 2 * ngf, 3, 3)
        e.update(_bn_entries(f"h_net{k}.upsample.2", 2 * ngf))
    return e


def generator_params(ngf=32, nef=256, ncf=100, z=100, r_num=2, branches=3) -> int:
    """Analytic parameter count of G_NET (weights + BN affine; no running statistics)."""
    ca = nef * 4 * ncf + 4 * ncf
    init = (ncf + z) * 16 * ngf * 32 + 2 * 16 * ngf * 32
    init += sum((16 * ngf >> (i - 1)) * 2 * (16 * ngf >> i) * 9 + 2 * 2 * (16 * ngf >> i) for i in range(1, 5))
    res = (2 * ngf) * (4 * ngf) * 9 + 2 * 4 * ngf + (2 * ngf) ** 2 * 9 + 2 * 2 * ngf
    nxt = ngf * nef + r_num * res + (2 * ngf) ** 2 * 9 + 2 * 2 * ngf
    return ca + init + (branches - 1) * nxt + branches * 3 * ngf * 9


def text_encoder_entries(ntoken=5450, ninput=300, nhidden=256) -> dict:
    h = nhidden // 2
    e = {"encoder.weight": (ntoken, ninput)}
    for sfx in ("", "_reverse"):
        e.update({f"rnn.weight_ih_l0{sfx}": (4 * h, ninput), f"rnn.weight_hh_l0{sfx}": (4 * h, h),
                  f"rnn.bias_ih_l0{sfx}": (4 * h,), f"rnn.bias_hh_l0{sfx}": (4 * h,)})
    return e


def text_encoder_params(ntoken=5450, ninput=300, nhidden=256) -> int:
    h = nhidden // 2
    return ntoken * ninput + 2 * (4 * h * (ninput + h) + 2 * 4 * h)


# torchvision's documented inception_v3 count (aux classifier and 1000-way fc included), less the fc and the
# AuxLogits head (conv0 1x1 768->128 + BN, conv1 5x5 128->768 + BN, fc 768->1000), which CNN_ENCODER drops.
INCEPTION_V3_PARAMS = 27_161_264
INCEPTION_TRUNK_PARAMS = INCEPTION_V3_PARAMS - (2048 * 1000 + 1000) - (768 * 128 + 2 * 128 + 128 * 768 * 25 + 2 * 768
                                                                       + 768 * 1000 + 1000)


def image_encoder_params(nef=256) -> int:
    return INCEPTION_TRUNK_PARAMS + 768 * nef + 2048 * nef + nef


# ---------------------------------------------------------------- functional forwards
def _bn(x, sd, key, eps=1e-5):
    return F.batch_norm(x, sd[f"{key}.running_mean"], sd[f"{key}.running_var"], sd[f"{key}.weight"],
                        sd[f"{key}.bias"], training=False, eps=eps)


def _glu(x):
    n = x.shape[1] // 2
    return x[:, :n] * torch.sigmoid(x[:, n:])


def _up(h, sd, key):  # upBlock
    h = F.interpolate(h, scale_factor=2, mode="nearest")
    return _glu(_bn(F.conv2d(h, sd[f"{key}.1.weight"], padding=1), sd, f"{key}.2"))


def _attention(h, words, mask, w):
    """GlobalAttentionGeneral: returns context (B, C, H, W) and maps (B, T, H, W)."""
    b, c, ih, iw = h.shape
    source = torch.einsum("cd,bdt->bct", w[:, :, 0, 0], words)
    target = h.reshape(b, c, ih * iw)
    attn = torch.einsum("bcq,bct->bqt", target, source)
    attn = attn.masked_fill(mask[:, None, :], float("-inf")).softmax(dim=2)  # Eq. 2, over the words
    context = torch.einsum("bct,bqt->bcq", source, attn)
    return context.reshape(b, c, ih, iw), attn.transpose(1, 2).reshape(b, -1, ih, iw)


def reference_generator(sd, sent, noise, words, mask, ngf=32, r_num=2, branches=3):
    """G_NET with the CA code set to mu: -> list of images, list of attention maps."""
    x = _glu(F.linear(sent, sd["ca_net.fc.weight"], sd["ca_net.fc.bias"]))
    mu = x[:, : x.shape[1] // 2]
    h = _glu(_bn(F.linear(torch.cat([mu, noise], 1), sd["h_net1.fc.0.weight"]), sd, "h_net1.fc.1"))
    h = h.view(-1, 16 * ngf, 4, 4)
    for i in range(1, 5):
        h = _up(h, sd, f"h_net1.upsample{i}")
    images, maps = [torch.tanh(F.conv2d(h, sd["img_net1.img.0.weight"], padding=1))], []
    for k in range(2, branches + 1):
        p = f"h_net{k}"
        context, attn = _attention(h, words, mask, sd[f"{p}.att.conv_context.weight"])
        h = torch.cat([h, context], 1)
        for r in range(r_num):
            q = f"{p}.residual.{r}.block"
            out = _glu(_bn(F.conv2d(h, sd[f"{q}.0.weight"], padding=1), sd, f"{q}.1"))
            h = _bn(F.conv2d(out, sd[f"{q}.3.weight"], padding=1), sd, f"{q}.4") + h
        h = _up(h, sd, f"{p}.upsample")
        images.append(torch.tanh(F.conv2d(h, sd[f"img_net{k}.img.0.weight"], padding=1)))
        maps.append(attn)
    return images, maps


def reference_rnn(sd, ids, lengths):
    """RNN_ENCODER (bi-LSTM, one layer) step by step: -> words (B, D, max(lengths)), sentence (B, D)."""
    emb = sd["encoder.weight"][ids]
    t_max, hid = int(lengths.max()), sd["rnn.weight_hh_l0"].shape[1]
    words = torch.zeros(len(ids), 2 * hid, t_max)
    sentence = torch.zeros(len(ids), 2 * hid)
    for b, n in enumerate(lengths.tolist()):
        for sfx, steps, half in (("", range(n), slice(0, hid)), ("_reverse", range(n - 1, -1, -1), slice(hid, 2 * hid))):
            h, c = torch.zeros(hid), torch.zeros(hid)
            for t in steps:
                g = (sd[f"rnn.weight_ih_l0{sfx}"] @ emb[b, t] + sd[f"rnn.bias_ih_l0{sfx}"]
                     + sd[f"rnn.weight_hh_l0{sfx}"] @ h + sd[f"rnn.bias_hh_l0{sfx}"])
                i, f, gg, o = g.split(hid)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
                h = torch.sigmoid(o) * torch.tanh(c)
                words[b, half, t] = h
            sentence[b, half] = h  # forward: after the last word; backward: after the first
    return words, sentence


def _conv(x, sd, key, stride=1, padding=None):
    """torchvision BasicConv2d: conv (no bias), BN (eps 0.001), ReLU; 'same' padding unless given."""
    w = sd[f"{key}.conv.weight"]
    padding = (w.shape[2] // 2, w.shape[3] // 2) if padding is None else padding
    return F.relu(_bn(F.conv2d(x, w, stride=stride, padding=padding), sd, f"{key}.bn", eps=1e-3))


def _pool_branch(x, sd, key):
    return _conv(F.avg_pool2d(x, 3, stride=1, padding=1), sd, key)


def _chain(x, sd, keys):
    for k in keys:
        x = _conv(x, sd, k)
    return x


def reference_image_encoder(sd, images):
    """CNN_ENCODER on torchvision's Inception-v3 definitions: -> regions (B, D, 17, 17), code (B, D)."""
    x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=True)
    x = _conv(x, sd, "Conv2d_1a_3x3", stride=2, padding=0)
    x = _conv(_conv(x, sd, "Conv2d_2a_3x3", padding=0), sd, "Conv2d_2b_3x3", padding=1)
    x = _conv(F.max_pool2d(x, 3, 2), sd, "Conv2d_3b_1x1")
    x = F.max_pool2d(_conv(x, sd, "Conv2d_4a_3x3", padding=0), 3, 2)
    for m in ("Mixed_5b", "Mixed_5c", "Mixed_5d"):  # InceptionA
        x = torch.cat([_conv(x, sd, f"{m}.branch1x1"), _chain(x, sd, [f"{m}.branch5x5_1", f"{m}.branch5x5_2"]),
                       _chain(x, sd, [f"{m}.branch3x3dbl_{i}" for i in (1, 2, 3)]),
                       _pool_branch(x, sd, f"{m}.branch_pool")], 1)
    m = "Mixed_6a"  # InceptionB
    x = torch.cat([_conv(x, sd, f"{m}.branch3x3", stride=2, padding=0),
                   _conv(_chain(x, sd, [f"{m}.branch3x3dbl_1", f"{m}.branch3x3dbl_2"]), sd, f"{m}.branch3x3dbl_3",
                         stride=2, padding=0), F.max_pool2d(x, 3, 2)], 1)
    for m in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):  # InceptionC
        x = torch.cat([_conv(x, sd, f"{m}.branch1x1"), _chain(x, sd, [f"{m}.branch7x7_{i}" for i in (1, 2, 3)]),
                       _chain(x, sd, [f"{m}.branch7x7dbl_{i}" for i in (1, 2, 3, 4, 5)]),
                       _pool_branch(x, sd, f"{m}.branch_pool")], 1)
    regions = F.conv2d(x, sd["emb_features.weight"])
    m = "Mixed_7a"  # InceptionD
    x = torch.cat([_conv(_conv(x, sd, f"{m}.branch3x3_1"), sd, f"{m}.branch3x3_2", stride=2, padding=0),
                   _conv(_chain(x, sd, [f"{m}.branch7x7x3_{i}" for i in (1, 2, 3)]), sd, f"{m}.branch7x7x3_4",
                         stride=2, padding=0), F.max_pool2d(x, 3, 2)], 1)
    for m in ("Mixed_7b", "Mixed_7c"):  # InceptionE
        b3 = _conv(x, sd, f"{m}.branch3x3_1")
        bd = _chain(x, sd, [f"{m}.branch3x3dbl_1", f"{m}.branch3x3dbl_2"])
        x = torch.cat([_conv(x, sd, f"{m}.branch1x1"),
                       _conv(b3, sd, f"{m}.branch3x3_2a"), _conv(b3, sd, f"{m}.branch3x3_2b"),
                       _conv(bd, sd, f"{m}.branch3x3dbl_3a"), _conv(bd, sd, f"{m}.branch3x3dbl_3b"),
                       _pool_branch(x, sd, f"{m}.branch_pool")], 1)
    code = F.linear(F.avg_pool2d(x, 8).flatten(1), sd["emb_cnn_code.weight"], sd["emb_cnn_code.bias"])
    return regions, code


def _d_block(key: str, c_in: int, c_out: int, k: int, bn: bool = True) -> dict:
    return {f"{key}.0.weight": (c_out, c_in, k, k), **(_bn_entries(f"{key}.1", c_out) if bn else {})}


def discriminator_entries(size=256, ndf=64, nef=256) -> dict:
    """D_NET64 / D_NET128 / D_NET256 (b_jcu=True) state dict {key: shape}."""
    e = {"img_code_s16.0.weight": (ndf, 3, 4, 4)}  # encode_image_by_16times: conv, LReLU, then conv/BN/LReLU x3
    for i, (c_in, c_out) in enumerate([(ndf, 2 * ndf), (2 * ndf, 4 * ndf), (4 * ndf, 8 * ndf)]):
        e[f"img_code_s16.{2 + 3 * i}.weight"] = (c_out, c_in, 4, 4)
        e.update(_bn_entries(f"img_code_s16.{3 + 3 * i}", c_out))
    if size >= 128:
        e.update(_d_block("img_code_s32", 8 * ndf, 16 * ndf, 4))
    if size == 128:
        e.update(_d_block("img_code_s32_1", 16 * ndf, 8 * ndf, 3))
    if size == 256:
        e.update(_d_block("img_code_s64", 16 * ndf, 32 * ndf, 4))
        e.update(_d_block("img_code_s64_1", 32 * ndf, 16 * ndf, 3))
        e.update(_d_block("img_code_s64_2", 16 * ndf, 8 * ndf, 3))
    e.update({"UNCOND_DNET.outlogits.0.weight": (1, 8 * ndf, 4, 4), "UNCOND_DNET.outlogits.0.bias": (1,),
              "COND_DNET.outlogits.0.weight": (1, 8 * ndf, 4, 4), "COND_DNET.outlogits.0.bias": (1,)})
    e.update(_d_block("COND_DNET.jointConv", 8 * ndf + nef, 8 * ndf, 3))
    return e


def discriminator_params(size=256, ndf=64, nef=256) -> int:
    """Analytic parameter count of D_NET{size}."""
    n = 3 * ndf * 16 + sum(c * 2 * c * 16 + 2 * 2 * c for c in (ndf, 2 * ndf, 4 * ndf))
    if size >= 128:
        n += 8 * ndf * 16 * ndf * 16 + 2 * 16 * ndf
    if size == 128:
        n += 16 * ndf * 8 * ndf * 9 + 2 * 8 * ndf
    if size == 256:
        n += 16 * ndf * 32 * ndf * 16 + 2 * 32 * ndf + 32 * ndf * 16 * ndf * 9 + 2 * 16 * ndf
        n += 16 * ndf * 8 * ndf * 9 + 2 * 8 * ndf
    logits = 2 * (8 * ndf * 16 + 1)
    return n + logits + (8 * ndf + nef) * 8 * ndf * 9 + 2 * 8 * ndf


def reference_discriminator(sd, images, sentence, size=256):
    """D_NET{size} features, then COND_DNET(features, sentence) and UNCOND_DNET(features), as probabilities."""
    lrelu = lambda x: F.leaky_relu(x, 0.2)  # noqa: E731
    h = lrelu(F.conv2d(images, sd["img_code_s16.0.weight"], stride=2, padding=1))
    for i in (2, 5, 8):
        h = lrelu(_bn(F.conv2d(h, sd[f"img_code_s16.{i}.weight"], stride=2, padding=1), sd, f"img_code_s16.{i + 1}"))
    downs = {64: [], 128: ["img_code_s32"], 256: ["img_code_s32", "img_code_s64"]}[size]
    convs = {64: [], 128: ["img_code_s32_1"], 256: ["img_code_s64_1", "img_code_s64_2"]}[size]
    for k in downs:
        h = lrelu(_bn(F.conv2d(h, sd[f"{k}.0.weight"], stride=2, padding=1), sd, f"{k}.1"))
    for k in convs:
        h = lrelu(_bn(F.conv2d(h, sd[f"{k}.0.weight"], padding=1), sd, f"{k}.1"))
    c = sentence.view(-1, sentence.shape[1], 1, 1).repeat(1, 1, 4, 4)
    j = lrelu(_bn(F.conv2d(torch.cat([h, c], 1), sd["COND_DNET.jointConv.0.weight"], padding=1), sd,
                  "COND_DNET.jointConv.1"))
    cond = torch.sigmoid(F.conv2d(j, sd["COND_DNET.outlogits.0.weight"], sd["COND_DNET.outlogits.0.bias"], stride=4))
    uncond = torch.sigmoid(F.conv2d(h, sd["UNCOND_DNET.outlogits.0.weight"], sd["UNCOND_DNET.outlogits.0.bias"],
                                    stride=4))
    return cond.view(-1), uncond.view(-1)
