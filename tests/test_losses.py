"""histolib.losses against hand computations, known values and gradient-flow invariants.

Every penalty here differentiates through a gradient; the tests prove it reaches the
parameters (``create_graph=True``) by comparing parameter gradients with and without the
penalty, and by matching closed forms for linear networks.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from histolib import losses as L


def softplus_f(x: float) -> float:
    """log(1 + e^x) by hand, stable for the small values used here."""
    return math.log1p(math.exp(x))


# --------------------------------------------------------------------------- adversarial losses

def test_d_logistic_loss_hand_values():
    real = torch.tensor([0.0, 2.0])
    fake = torch.tensor([-1.0, 1.0])
    expected = (softplus_f(-1) + softplus_f(1)) / 2 + (softplus_f(0) + softplus_f(-2)) / 2
    assert L.d_logistic_loss(real, fake).item() == pytest.approx(expected, rel=1e-6)
    # the same number from the GAN value function written with sigmoids (float64, moderate logits)
    r, f = real.double(), fake.double()
    value_fn = -(torch.log(torch.sigmoid(r)).mean() + torch.log(1 - torch.sigmoid(f)).mean())
    assert L.d_logistic_loss(r, f).item() == pytest.approx(value_fn.item(), rel=1e-12)
    # D outputting 0 everywhere costs 2 log 2
    assert L.d_logistic_loss(torch.zeros(3), torch.zeros(5)).item() == pytest.approx(2 * math.log(2), rel=1e-6)


def test_g_nonsaturating_loss_hand_values():
    fake = torch.tensor([-3.0, 0.0, 4.0])
    expected = (softplus_f(3) + softplus_f(0) + softplus_f(-4)) / 3
    assert L.g_nonsaturating_loss(fake).item() == pytest.approx(expected, rel=1e-6)
    f = fake.double()
    assert L.g_nonsaturating_loss(f).item() == pytest.approx(-torch.log(torch.sigmoid(f)).mean().item(), rel=1e-12)


def test_logistic_losses_finite_at_huge_logits_where_log_sigmoid_is_not():
    big = torch.tensor([1e4, -1e4], requires_grad=True)
    # the naive form overflows: the test below would fail with it
    naive = -torch.log(torch.sigmoid(-big)).mean()
    assert not torch.isfinite(naive)
    d = L.d_logistic_loss(big, big)
    g = L.g_nonsaturating_loss(big)
    # softplus(x) = x for x >> 0 and 0 for x << 0: by hand
    assert d.item() == pytest.approx((1e4 + 0) / 2 + (0 + 1e4) / 2, rel=1e-6)
    assert g.item() == pytest.approx((0 + 1e4) / 2, rel=1e-6)
    (grad,) = torch.autograd.grad(d + g, big)
    assert torch.isfinite(grad).all()
    # d/dx [softplus(x) + softplus(-x)]/2 + softplus(-x)/2 at +1e4: (1 - 0)/2 + (-0)/2 = 0.5 ; at -1e4: (0 - 1)/2 - 1/2 = -1
    torch.testing.assert_close(grad, torch.tensor([0.5, -1.0]))


def test_d_hinge_loss_hand_values():
    real = torch.tensor([0.5, 2.0, -1.0])
    fake = torch.tensor([-2.0, 0.0, 0.5])
    # relu(1 - real) = [0.5, 0, 2]; relu(1 + fake) = [0, 1, 1.5]
    assert L.d_hinge_loss(real, fake).item() == pytest.approx(2.5 / 3 + 2.5 / 3, rel=1e-6)
    assert L.g_hinge_loss(fake).item() == pytest.approx(0.5, rel=1e-6)
    # scores past the margins cost nothing
    assert L.d_hinge_loss(torch.tensor([1.0, 5.0]), torch.tensor([-1.0, -7.0])).item() == 0.0


def test_d_wgan_loss_hand_values():
    real = torch.tensor([1.0, 3.0])
    fake = torch.tensor([0.0, 2.0])
    # E[fake] - E[real] + drift E[real^2] = 1 - 2 + 0.1 * 5
    assert L.d_wgan_loss(real, fake, drift=0.1).item() == pytest.approx(-0.5, rel=1e-6)
    assert L.d_wgan_loss(real, fake).item() == pytest.approx(-1 + 1e-3 * 5, rel=1e-6)
    assert L.g_wgan_loss(fake).item() == pytest.approx(-1.0, rel=1e-6)
    with pytest.raises(ValueError, match="drift"):
        L.d_wgan_loss(real, fake, drift=-1.0)


def test_losses_accept_b1_logits_and_unequal_batches():
    real = torch.randn(4, 1)
    fake = torch.randn(6, 1)
    for d_fn, _ in L.ADVERSARIAL_LOSSES.values():
        a = d_fn(real, fake)
        b = d_fn(real.flatten(), fake.flatten())
        assert a.ndim == 0
        torch.testing.assert_close(a, b)


def test_losses_reject_integer_logits():
    with pytest.raises(ValueError, match="real_logits"):
        L.d_logistic_loss(torch.tensor([1, 2]), torch.tensor([0.0]))


def test_adversarial_losses_by_name():
    assert L.adversarial_losses("logistic") == (L.d_logistic_loss, L.g_nonsaturating_loss)
    assert L.adversarial_losses("hinge") == (L.d_hinge_loss, L.g_hinge_loss)
    assert L.adversarial_losses("wgan") == (L.d_wgan_loss, L.g_wgan_loss)
    with pytest.raises(ValueError, match="hinge, logistic, wgan"):
        L.adversarial_losses("lsgan")


# --------------------------------------------------------------------------- small networks

def tiny_conv_d(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 1))


def param_grads(loss: torch.Tensor, module: nn.Module) -> list[torch.Tensor]:
    # a penalty on input gradients does not depend on the last layer's bias: a zero gradient
    return list(torch.autograd.grad(loss, list(module.parameters()), retain_graph=True,
                                    allow_unused=True, materialize_grads=True))


def grads_differ(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return any(not torch.allclose(x, y) for x, y in zip(a, b))


# --------------------------------------------------------------------------- R1 and the penalty on reals

def test_r1_of_linear_d_is_squared_norm_of_weights():
    torch.manual_seed(0)
    x = torch.randn(5, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    a = torch.randn(12, dtype=torch.float64, requires_grad=True)
    logits = x.flatten(1) @ a
    r1 = L.r1_penalty(logits, x)
    assert r1.item() == pytest.approx(a.square().sum().item(), rel=1e-12)
    # create_graph=True: R1 is a function of a, with d||a||^2/da = 2a
    (grad_a,) = torch.autograd.grad(r1, a)
    torch.testing.assert_close(grad_a, 2 * a.detach())


def test_r1_changes_the_discriminator_gradient():
    d = tiny_conv_d()
    x = torch.randn(3, 3, 4, 4).requires_grad_(True)
    logits = d(x)
    loss = L.d_logistic_loss(logits, torch.zeros(3))
    r1 = L.r1_penalty(logits, x)
    assert r1.item() > 0
    g_loss = param_grads(loss, d)
    g_both = param_grads(loss + r1, d)
    g_r1 = param_grads(r1, d)
    assert grads_differ(g_loss, g_both)
    for a, b, c in zip(g_both, g_loss, g_r1):  # linearity of the gradient: a sanity check
        torch.testing.assert_close(a, b + c)


def test_r1_matches_per_sample_finite_differences():
    # an independent route to ||grad_x D(x)||^2: central differences in float64
    d = tiny_conv_d().double()
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    r1 = L.r1_penalty(d(xr), xr).item()
    eps = 1e-6
    total = 0.0
    for b in range(2):
        sq = 0.0
        for i in range(x[b].numel()):
            e = torch.zeros_like(x[b]).flatten()
            e[i] = eps
            e = e.view_as(x[b])
            with torch.no_grad():
                diff = (d((x[b] + e)[None]) - d((x[b] - e)[None])).item() / (2 * eps)
            sq += diff ** 2
        total += sq
    assert r1 == pytest.approx(total / 2, rel=1e-6)


def test_r1_needs_reals_that_require_grad():
    d = tiny_conv_d()
    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match="real_images"):
        L.r1_penalty(d(x), x)
    xr = x.clone().requires_grad_(True)
    with torch.no_grad():
        logits = d(xr)
    with pytest.raises(ValueError, match="real_logits"):
        L.r1_penalty(logits, xr)


def test_real_gradient_penalty_linear_closed_form():
    torch.manual_seed(1)
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    a = torch.randn(6, dtype=torch.float64)
    a = (3.0 * a / a.norm()).requires_grad_(True)  # ||a|| = 3 -> weight * (3 - 1)^2
    gp = L.real_gradient_penalty(x @ a, x, weight=10.0)
    assert gp.item() == pytest.approx(40.0, rel=1e-12)
    (grad_a,) = torch.autograd.grad(gp, a)
    # d/da [w (||a|| - 1)^2] = 2 w (||a|| - 1) a / ||a||
    torch.testing.assert_close(grad_a, 2 * 10.0 * 2.0 * a.detach() / 3.0)


def test_real_gradient_penalty_changes_the_discriminator_gradient():
    d = tiny_conv_d(3)
    x = torch.randn(3, 3, 4, 4).requires_grad_(True)
    logits = d(x)
    loss = L.d_hinge_loss(logits, torch.zeros(3))
    gp = L.real_gradient_penalty(logits, x)
    assert grads_differ(param_grads(loss, d), param_grads(loss + gp, d))
    with pytest.raises(ValueError, match="real_images"):
        L.real_gradient_penalty(d(x.detach()), x.detach())


# --------------------------------------------------------------------------- WGAN-GP

def test_wgan_gp_zero_for_unit_norm_linear_critic_and_known_otherwise():
    torch.manual_seed(2)
    real = torch.randn(5, 3, 2, 2, dtype=torch.float64)
    fake = torch.randn(5, 3, 2, 2, dtype=torch.float64)
    a = torch.randn(12, dtype=torch.float64)
    a = a / a.norm()
    gp = L.wgan_gradient_penalty(lambda x: x.flatten(1) @ a, real, fake)
    assert abs(gp.item()) < 1e-20
    gp2 = L.wgan_gradient_penalty(lambda x: x.flatten(1) @ (2 * a), real, fake, weight=10.0)
    assert gp2.item() == pytest.approx(10.0, rel=1e-12)  # 10 * (2 - 1)^2


def test_wgan_gp_interpolates_and_reaches_parameters():
    d = tiny_conv_d(4)
    real = torch.randn(3, 3, 4, 4)
    fake = torch.randn(3, 3, 4, 4)
    loss = L.d_wgan_loss(d(real), d(fake))
    gp = L.wgan_gradient_penalty(d, real, fake, generator=torch.Generator().manual_seed(0))
    assert gp.item() > 0
    assert grads_differ(param_grads(loss, d), param_grads(loss + gp, d))
    # the same eps reproduce the same penalty; an independent computation of it
    eps = torch.rand(3, 1, 1, 1, generator=torch.Generator().manual_seed(0))
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (g,) = torch.autograd.grad(d(x_hat).sum(), x_hat)
    expected = 10.0 * ((g.flatten(1).square().sum(1).sqrt() - 1) ** 2).mean()
    torch.testing.assert_close(gp, expected)


def test_wgan_gp_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="real, fake"):
        L.wgan_gradient_penalty(lambda x: x.sum(1), torch.randn(2, 3), torch.randn(3, 3))


# --------------------------------------------------------------------------- path length

class LinearGenerator(nn.Module):
    """images = tanh-free linear map of w: [B, w_dim] -> [B, 3, H, W], so J_w^T y = M y."""

    def __init__(self, w_dim=5, res=4, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.res = res
        self.m = nn.Parameter(torch.randn(w_dim, 3 * res * res, dtype=torch.float64))

    def forward(self, w):
        return (w @ self.m).view(-1, 3, self.res, self.res)


def test_path_length_lengths_match_jacobian_closed_form():
    g = LinearGenerator()
    w = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    pl = L.PathLengthPenalty()
    lengths = pl.lengths(g(w), w, generator=torch.Generator().manual_seed(7))
    y = torch.randn(4, 3, 4, 4, generator=torch.Generator().manual_seed(7)).double() / 4.0  # sqrt(H W) = 4
    expected = (y.flatten(1) @ g.m.detach().T).norm(dim=1)
    torch.testing.assert_close(lengths, expected)


def test_path_length_per_layer_ws_average_over_layers():
    # w [B, num_ws, w_dim]: lengths = sqrt(mean over ws of ||J_ws^T y||^2). Feeding the two ws through the
    # same matrix makes both Jacobians M, so the length equals the [B, w_dim] case.
    g = LinearGenerator(seed=2)
    ws = torch.randn(3, 2, 5, dtype=torch.float64, requires_grad=True)
    images = (ws[:, 0] @ g.m + ws[:, 1] @ g.m).view(-1, 3, 4, 4)
    lengths = L.PathLengthPenalty().lengths(images, ws, generator=torch.Generator().manual_seed(4))
    y = torch.randn(3, 3, 4, 4, generator=torch.Generator().manual_seed(4)).double() / 4.0
    torch.testing.assert_close(lengths, (y.flatten(1) @ g.m.detach().T).norm(dim=1))


def test_path_length_moving_target_follows_the_lerp():
    g = LinearGenerator(seed=1)
    pl = L.PathLengthPenalty(decay=0.01)
    gen = torch.Generator().manual_seed(3)
    ref_gen = torch.Generator().manual_seed(3)
    mean = 0.0  # the hand loop
    for step in range(6):
        w = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
        penalty = pl(g(w), w, generator=gen)
        y = torch.randn(3, 3, 4, 4, generator=ref_gen).double() / 4.0
        lengths = (y.flatten(1) @ g.m.detach().T).norm(dim=1)
        mean = mean + 0.01 * (lengths.mean().item() - mean)
        assert pl.pl_mean.item() == pytest.approx(mean, rel=1e-5), f"step {step}"
        assert penalty.item() == pytest.approx(((lengths - mean) ** 2).mean().item(), rel=1e-5)
    # the student version (weights swapped) would sit near the batch mean, not near 6% of it
    assert pl.pl_mean.item() < 0.1 * lengths.mean().item()


def test_path_length_reaches_generator_parameters():
    torch.manual_seed(0)
    g = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3 * 4 * 4), nn.Unflatten(1, (3, 4, 4)))
    w = torch.randn(4, 5, requires_grad=True)
    images = g(w)
    pl = L.PathLengthPenalty()
    pl.pl_mean.fill_(0.5)  # a target away from the lengths, so the penalty has a slope
    penalty = pl(images, w, generator=torch.Generator().manual_seed(0))
    loss = L.g_nonsaturating_loss(images.mean((1, 2, 3)))
    grads = dict(zip([n for n, _ in g.named_parameters()], param_grads(penalty, g)))
    assert all(grads[n].abs().sum() > 0 for n in ("0.weight", "0.bias", "2.weight"))
    assert grads["2.bias"].abs().sum() == 0  # images = ... + bias: the Jacobian does not see it
    assert grads_differ(param_grads(loss, g), param_grads(loss + penalty, g))


def test_path_length_state_dict_round_trip():
    pl = L.PathLengthPenalty()
    assert "pl_mean" in pl.state_dict()
    g = LinearGenerator()
    w = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    pl(g(w), w)
    assert pl.pl_mean.item() > 0
    fresh = L.PathLengthPenalty()
    fresh.load_state_dict(pl.state_dict())
    assert fresh.pl_mean.item() == pl.pl_mean.item()


def test_path_length_bad_inputs():
    pl = L.PathLengthPenalty()
    with pytest.raises(ValueError, match="w"):
        pl(torch.randn(2, 3, 4, 4, requires_grad=True), torch.randn(2, 5))
    with pytest.raises(ValueError, match="decay"):
        L.PathLengthPenalty(decay=0.0)


# --------------------------------------------------------------------------- histogram loss

@pytest.fixture
def histogram():
    import histolib.histogram

    return histolib.histogram


def smooth_images(seed: int, b: int = 2, res: int = 16) -> torch.Tensor:
    """Colourful images in [-1, 1], away from the clamp, [b, 3, res, res]."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(b, 3, 1, 1, generator=g) * 1.2 - 0.6
    return (base + 0.3 * torch.rand(b, 3, res, res, generator=g) - 0.15).clamp(-0.95, 0.95)


def test_histogram_loss_zero_for_own_histogram_positive_otherwise(histogram):
    from histolib.images import to_unit

    x = smooth_images(0)
    own = histogram.rgb_uv_histogram(to_unit(x), bins=32)
    xr = x.clone().requires_grad_(True)
    zero = L.histogram_loss(own, xr)
    assert zero.item() == pytest.approx(0.0, abs=1e-6)
    (grad,) = torch.autograd.grad(zero, xr)
    assert torch.isfinite(grad).all()  # at the minimum: a finite (zero) slope, not 0 / 0
    other = histogram.rgb_uv_histogram(to_unit(smooth_images(1)), bins=32)
    loss = L.histogram_loss(other, x)
    # independent: alpha * mean_b (1/sqrt 2) ||sqrt p - sqrt q||
    q = histogram.rgb_uv_histogram(to_unit(x), bins=32)
    expected = 2.0 * ((other.sqrt() - q.sqrt()).flatten(1).norm(dim=1) / math.sqrt(2)).mean()
    assert loss.item() > 0.05
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(L.histogram_loss(other, x, alpha=1.0), loss / 2)
    # one target for the whole batch broadcasts
    torch.testing.assert_close(L.histogram_loss(other[:1], x), L.histogram_loss(other[:1].expand(2, -1, -1, -1), x))


def test_histogram_loss_reaches_the_images_and_stays_float32_under_autocast(histogram):
    from histolib.images import to_unit

    x = smooth_images(2).requires_grad_(True)
    target = histogram.rgb_uv_histogram(to_unit(smooth_images(3)), bins=16)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = L.histogram_loss(target, x * 1.0)
    assert loss.dtype == torch.float32
    (grad,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    torch.testing.assert_close(loss, L.histogram_loss(target, x.detach()))


def test_histogram_loss_bad_shapes(histogram):
    x = smooth_images(0)
    with pytest.raises(ValueError, match="target_hist"):
        L.histogram_loss(torch.rand(2, 3, 8, 4), x)
    with pytest.raises(ValueError, match="target_hist, fake_images"):
        L.histogram_loss(torch.rand(3, 3, 8, 8), x)
