"""SAE architectures and the training loop: exact sparse gradients, recovery of a planted
dictionary (synthetic data), saved weights that encode like the trained module, determinism
and bit-identical resume."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sae_planted import planted

from interp_agent.core.sae.model import SaeShape, SparseAutoencoder
from interp_agent.core.sae.trainer import Optimisation, Trainer, fit_tensor, geometric_median


def _opt(**kw: object) -> Optimisation:
    base = dict(batch_size=256, steps=200, lr=3e-3, warmup_steps=10, decay_steps=40, sparsity_coefficient=0.0,
                aux_coefficient=1 / 32, dead_after_tokens=20_000, b_dec_init="median", seed=0, checkpoint_every=0)
    return Optimisation(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize("arch", ["topk", "batchtopk"])
def test_sparse_backward_equals_the_dense_reference(arch: str) -> None:
    torch.manual_seed(0)
    sae = SparseAutoencoder(SaeShape(arch, 16, 40, k=4))  # type: ignore[arg-type]
    with torch.no_grad():
        sae.b_enc.normal_()
        sae.b_dec.normal_()
    x = torch.randn(32, 16)
    fwd = sae(x)
    (fwd.recon - x).pow(2).sum().backward()
    ours = {n: p.grad.clone() for n, p in sae.named_parameters()}
    sae.zero_grad()
    pre = (x - sae.b_dec) @ sae.W_enc.T + sae.b_enc
    if arch == "topk":
        top = pre.topk(4, dim=1)
        z = torch.zeros_like(pre).scatter(1, top.indices, top.values.relu())
    else:
        keep = torch.zeros(pre.numel(), dtype=torch.bool)
        keep[pre.relu().flatten().topk(4 * 32).indices] = True
        z = pre.relu() * keep.reshape(pre.shape)
    recon = z @ sae.W_dec + sae.b_dec
    torch.testing.assert_close(fwd.recon, recon, rtol=1e-5, atol=1e-5)
    (recon - x).pow(2).sum().backward()
    for name, p in sae.named_parameters():
        torch.testing.assert_close(ours[name], p.grad, rtol=1e-4, atol=1e-3, msg=name)


def test_topk_recovers_a_planted_dictionary() -> None:
    x, atoms = planted()
    sae, stats = fit_tensor(x[:18_000], SaeShape("topk", 32, 256, k=4), _opt(steps=600))
    held = torch.tensor(x[18_000:])
    fvu = float((held - sae.reconstruct(held)).pow(2).sum() / (held - held.mean(0)).pow(2).sum())
    W = sae.W_dec.detach().numpy()
    cos = atoms @ (W / np.linalg.norm(W, axis=1, keepdims=True)).T
    assert fvu < 0.25
    assert cos.max(1).mean() > 0.9  # nearly every planted atom has a decoder row pointing its way
    assert stats["tokens_per_s"] > 0 and len(stats["history"]) > 10


@pytest.mark.parametrize(
    ("arch", "k", "coef"), [("topk", 4, 0.0), ("batchtopk", 4, 0.0), ("relu", None, 0.3), ("jumprelu", None, 0.3)]
)
def test_every_architecture_learns_and_saves_weights_that_encode_the_same(
    arch: str, k: int | None, coef: float
) -> None:
    x, _ = planted(n=8_000)
    sae, stats = fit_tensor(x[:7_000], SaeShape(arch, 32, 128, k=k), _opt(steps=300, sparsity_coefficient=coef))  # type: ignore[arg-type]
    held = torch.tensor(x[7_000:])
    fvu = float((held - sae.reconstruct(held)).pow(2).sum() / (held - held.mean(0)).pow(2).sum())
    assert fvu < 0.6, fvu
    weights = sae.to_weights("blocks.3.hook_resid_post")
    ours = sae.encode(held * sae.input_scale).double().numpy()
    saved = weights.encode(held.double().numpy())
    np.testing.assert_allclose(saved, ours, rtol=1e-4, atol=1e-4)
    recon = saved @ weights.W_dec + weights.b_dec
    np.testing.assert_allclose(recon, sae.reconstruct(held).double().numpy(), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(sae.W_dec.detach().numpy(), axis=1), 1.0, rtol=1e-5)
    assert weights.architecture == {"topk": "topk", "batchtopk": "jumprelu", "relu": "standard",
                                    "jumprelu": "jumprelu"}[arch]


def test_auxk_trains_only_dead_latents_on_the_residual() -> None:
    x, _ = planted(n=2_000)
    tr = Trainer(SaeShape("topk", 32, 64, k=4), _opt(steps=1, batch_size=256, dead_after_tokens=0))
    tr.initialise(x)
    dead = torch.zeros(64, dtype=torch.bool)
    dead[:10] = True
    tr.tokens_since_fired[:] = torch.where(dead, 10**6, 0)
    xs = torch.tensor(x[:256]) * tr.sae.input_scale
    fwd = tr.sae(xs)
    rows, cols = tr.sae.aux_select(fwd.pre, dead, 16)
    assert set(cols.tolist()) <= set(range(10)) and len(rows) == 256 * 10  # k_aux capped at the dead count
    aux = (tr.sae.aux_recon(xs, fwd.pre, rows, cols) - (xs - fwd.recon).detach()).pow(2).mean()
    aux.backward()
    touched = tr.sae.W_dec.grad.abs().sum(1) > 0
    assert touched[:10].any() and not touched[10:].any()
    assert tr.sae.W_enc.grad[10:].abs().sum() == 0


def test_geometric_median_resists_outliers() -> None:
    pts = torch.cat([torch.zeros(50, 3), torch.full((5, 3), 1000.0)])
    assert float(geometric_median(pts).norm()) < 1.0
    assert float(pts.mean(0).norm()) > 100


def _state(tr: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in tr.sae.state_dict().items()}


def _batches(x: np.ndarray, bs: int, start: int = 0):  # noqa: ANN202
    order = np.random.default_rng(0).permutation(len(x))
    stream = (x[order[(i * bs) % (len(x) - bs):(i * bs) % (len(x) - bs) + bs]] for i in itertools.count())
    return itertools.islice(stream, start, None)


def test_training_is_deterministic_and_resumes_bit_identically(tmp_path) -> None:  # noqa: ANN001
    x, _ = planted(n=4_000)
    shape, opt = SaeShape("topk", 32, 64, k=4), _opt(
        steps=40, batch_size=128, checkpoint_every=15, dead_after_tokens=500
    )

    def fresh() -> Trainer:
        tr = Trainer(shape, opt)
        tr.initialise(x[:2_000])
        return tr

    a, b = fresh(), fresh()
    a.fit(_batches(x, 128))
    b.fit(_batches(x, 128))
    for key, value in _state(a).items():
        assert torch.equal(value, _state(b)[key]), key

    killed = fresh()
    killed.fit(itertools.islice(_batches(x, 128), 20), checkpoint_dir=tmp_path)  # "killed" after step 20
    assert killed.step == 20 and sorted(p.name for p in tmp_path.glob("step-*.pt")) == ["step-00000015.pt"]
    resumed = Trainer(shape, opt)
    assert resumed.load_latest(tmp_path) is not None and resumed.step == 15
    resumed.fit(_batches(x, 128, start=15))
    assert resumed.step == 40
    for key, value in _state(a).items():
        assert torch.equal(value, _state(resumed)[key]), key


def test_a_checkpoint_of_other_settings_is_not_resumed(tmp_path) -> None:  # noqa: ANN001
    x, _ = planted(n=2_000)
    tr = Trainer(SaeShape("topk", 32, 64, k=4), _opt(steps=10, batch_size=64, checkpoint_every=5))
    tr.initialise(x)
    tr.fit(_batches(x, 64), checkpoint_dir=tmp_path)
    other = Trainer(SaeShape("topk", 32, 64, k=8), _opt(steps=10, batch_size=64, checkpoint_every=5))
    assert other.load_latest(tmp_path) is None and other.step == 0
