"""torch-fidelity's IS / FID / KID on the evaluator equal a direct computation on the same features."""

import math

import pytest
import torch

from ganblocks.evaluation.fidelity import fidelity_metrics, inception_kwargs, register_evaluator
from ganblocks.metrics.base import EvalSamples
from ganblocks.registry import build
from tests.evaluation.fixtures import noise_images


def direct_is(logits: torch.Tensor) -> float:
    p = logits.double().softmax(1)
    marginal = p.mean(0, keepdim=True)
    return math.exp(float((p * (p.log() - marginal.log())).sum(1).mean()))


def sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(m)
    return vecs @ torch.diag(vals.clamp(min=0).sqrt()) @ vecs.T


def direct_fid(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    root = sqrtm_psd(cov_a)
    cross = sqrtm_psd(root @ cov_b @ root)
    return float((mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross.trace())


def direct_kid(a: torch.Tensor, b: torch.Tensor) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel (x.y / d + 1)^3."""
    a, b = a.double(), b.double()
    d, m = a.shape[1], len(a)
    k = lambda x, y: (x @ y.T / d + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = k(a, a), k(b, b), k(a, b)
    return float((kxx.sum() - kxx.trace()) / (m * (m - 1)) + (kyy.sum() - kyy.trace()) / (m * (m - 1))
                 - 2 * kxy.mean())


def test_torch_fidelity_equals_direct_math(evaluator, real):
    fake, ref = real[0][0::2][:80], real[0][1::2][:80]
    extractor = {"feature_extractor": register_evaluator(evaluator)}
    out = fidelity_metrics(fake, ref, extractor=extractor, isc=True, fid=True, kid=True, isc_splits=1,
                           kid_subsets=1, kid_subset_size=len(fake))
    f_fake, f_ref = evaluator.outputs(fake), evaluator.outputs(ref)
    assert out["inception_score_mean"] == pytest.approx(direct_is(f_fake.class_logits), rel=1e-6)
    assert out["frechet_inception_distance"] == pytest.approx(direct_fid(f_fake.features, f_ref.features),
                                                              rel=1e-4, abs=1e-6)
    assert out["kernel_inception_distance_mean"] == pytest.approx(direct_kid(f_fake.features, f_ref.features),
                                                                  rel=1e-6, abs=1e-9)


def test_real_features_are_cached_under_the_protocol_key(evaluator, real, tmp_path, monkeypatch):
    monkeypatch.setenv("GANBLOCKS_CACHE", str(tmp_path))
    images = real[0]
    samples = EvalSamples(fake=noise_images(40), real=images, evaluator=evaluator, real_split="test",
                          real_cache_key="toy-real")
    first = build("metric", "fid")(samples)["fid"]
    cached = sorted(p.name for p in (tmp_path / "fidelity").iterdir())
    assert cached and all(name.startswith("real-") for name in cached)
    again = build("metric", "fid")(samples)["fid"]
    assert again["value"] == pytest.approx(first["value"])
    assert first["n_real"] == len(images) and first["real_split"] == "test"


def test_cached_real_features_honour_the_umask(evaluator, real, tmp_path, monkeypatch):
    """torch-fidelity writes its cache through tempfile (0600); a shared cache must stay readable."""
    import os
    import stat

    monkeypatch.setenv("GANBLOCKS_CACHE", str(tmp_path))
    old = os.umask(0o022)
    try:
        samples = EvalSamples(fake=noise_images(40), real=real[0], evaluator=evaluator, real_split="test",
                              real_cache_key="toy-real")
        build("metric", "fid")(samples)
    finally:
        os.umask(old)
    cached = sorted((tmp_path / "fidelity").iterdir())
    assert cached and {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in cached} == \
        {p.name: "0o644" for p in cached}


def test_inception_needs_a_local_file_and_never_downloads(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.inception_weights"):
        inception_kwargs(None)
    with pytest.raises(FileNotFoundError, match="no such file"):
        inception_kwargs(tmp_path / "missing.pth")
    weights = tmp_path / "inception.pth"
    weights.write_bytes(b"")
    assert inception_kwargs(weights)["feature_extractor_weights_path"] == str(weights)


def test_dataset_without_evaluator_and_no_weights_fails_clearly():
    samples = EvalSamples(fake=noise_images(20))
    with pytest.raises(FileNotFoundError, match="metrics.inception_weights"):
        build("metric", "is")(samples)
