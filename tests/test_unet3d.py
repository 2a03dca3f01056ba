"""UNet3D: shapes, conditioning, SDPA attention (against softmax(QK^T)V), receptive field."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from densitydiff.nn.unet3d import Attention3d, ChannelNorm, UNet3D

pytestmark = pytest.mark.usefixtures("one_thread")


def test_shapes_and_levels():
    net = UNet3D(2, 1, widths=(8, 16, 16), attention_levels=(2,), head_channels=8)
    x = torch.randn(2, 2, 16, 16, 8)
    assert net(x, torch.tensor([0, 5])).shape == (2, 1, 16, 16, 8)
    with pytest.raises(ValueError, match="divisible"):
        net(torch.randn(1, 2, 10, 16, 16))
    with pytest.raises(ValueError, match="attention_levels"):
        UNet3D(widths=(8, 16), attention_levels=(2,))


def test_conditioning_changes_the_output():
    torch.manual_seed(0)
    net = UNet3D(1, 1, widths=(8, 16), emb_dim=16)
    for p in net.parameters():  # zero-initialised layers would hide the conditioning path
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(1, 1, 8, 8, 8)
    base = net(x, 3, 4.0, 2.0)
    assert not torch.allclose(base, net(x, 50, 4.0, 2.0))  # diffusion time
    assert not torch.allclose(base, net(x, 3, 6.0, 2.0))  # input resolution
    assert not torch.allclose(base, net(x, 3, 4.0, 3.0))  # target resolution
    # per-sample conditioning: a batch equals its items run one by one
    both = net(torch.cat([x, x]), torch.tensor([3, 50]), 4.0, 2.0)
    torch.testing.assert_close(both[1:], net(x, 50, 4.0, 2.0), rtol=1e-4, atol=1e-5)


def test_attention_is_sdpa_and_equals_naive_softmax(monkeypatch):
    torch.manual_seed(0)
    attn = Attention3d(16, head_channels=8)
    torch.nn.init.normal_(attn.proj.weight, std=0.3)
    x = torch.randn(2, 16, 4, 4, 4)
    calls = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, *args, **kwargs):
        calls.append(q.shape)
        return real(q, k, v, *args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    out = attn(x)
    assert calls == [(2, 2, 64, 8)]  # (batch, heads, tokens, head channels)
    # independent naive attention: softmax(Q K^T / sqrt(d)) V (Vaswani et al. eq. 1)
    qkv = attn.qkv(attn.norm(x)).reshape(2, 3, 2, 8, 64)
    q, k, v = (qkv[:, i].transpose(-1, -2) for i in range(3))
    w = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, dim=-1)
    naive = x + attn.proj((w @ v).transpose(-1, -2).reshape(2, 16, 4, 4, 4))
    torch.testing.assert_close(out, naive, rtol=1e-4, atol=1e-5)


def test_attention_only_at_named_levels():
    net = UNet3D(1, 1, widths=(8, 16, 16), attention_levels=(1,), head_channels=8)
    sizes = []
    for m in net.modules():
        if isinstance(m, Attention3d):
            m.register_forward_hook(lambda mod, inp, out: sizes.append(inp[0].shape[-3:]))
    net(torch.randn(1, 1, 16, 16, 16))
    assert sizes and all(tuple(s) == (8, 8, 8) for s in sizes)  # level 1 only, down and up


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    a = UNet3D(1, 1, widths=(8, 16), attention_levels=(1,), head_channels=8)
    b = UNet3D(1, 1, widths=(8, 16), attention_levels=(1,), head_channels=8)
    b.load_state_dict(a.state_dict())
    b.gradient_checkpointing = True
    x = torch.randn(1, 1, 8, 8, 8)
    for net in (a, b):
        net(x, 7, 4.0, 2.0).square().sum().backward()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-4, atol=1e-6)


def test_attention_memory_stays_linear_in_tokens():
    """24^3 = 13824 tokens: a materialised N x N fp32 matrix alone is 764 MB (x3 with softmax
    and its gradient); through the fused SDPA kernel forward + backward must add < 200 MB."""
    code = (
        "import resource, torch; torch.set_num_threads(1)\n"
        "from densitydiff.nn.unet3d import Attention3d\n"
        "a = Attention3d(8, head_channels=8)\n"
        "x = torch.randn(1, 8, 24, 24, 24, requires_grad=True)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "a(x).square().sum().backward()\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert float(proc.stdout.split()[-1]) < 200.0


def test_channel_norm_is_layer_norm_over_each_voxels_channels():
    norm = ChannelNorm(6)
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 2.0, 6))
        norm.bias.copy_(torch.linspace(-1.0, 1.0, 6))
    x = torch.randn(2, 6, 5, 4, 3) * 3 + 1
    v = x.double().numpy()  # numpy in float64: each voxel's 6 channels to mean 0, variance 1
    z = (v - v.mean(axis=1, keepdims=True)) / np.sqrt(v.var(axis=1, keepdims=True) + norm.eps)
    expect = z * np.linspace(0.5, 2.0, 6)[None, :, None, None, None]
    expect += np.linspace(-1.0, 1.0, 6)[None, :, None, None, None]
    got = norm(x).detach()
    assert got.shape == x.shape and np.allclose(got.numpy(), expect, atol=1e-5)


def _reach(net: UNet3D, n: int) -> int:
    """Largest distance at which a unit impulse changes the output (random background)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        reach = 0
        f = 2 ** (len(net.widths) - 1)
        for c in range(n // 2, n // 2 + f):  # every alignment to the coarsest level
            x = torch.randn(1, 1, n, n, n, generator=g)
            base = net(x, None, 4.0, 2.0)
            x[0, 0, c, c, c] += 1.0
            hit = torch.nonzero((net(x, None, 4.0, 2.0) - base)[0, 0] != 0)
            reach = max(reach, int((hit - c).abs().max()))
    return reach


@pytest.mark.parametrize("widths, blocks, radius", [((4, 4), 1, 25), ((4, 4), 2, 37)])
def test_receptive_radius_bounds_the_impulse_response(widths, blocks, radius):
    net = UNet3D(1, 1, widths, blocks, head_channels=4, emb_dim=8, norm="channel").eval()
    assert net.is_local and net.receptive_radius() == radius
    n = 2 * radius + 16
    reach = _reach(net, n)
    assert reach <= radius  # the bound holds...
    assert reach >= radius - 2 * blocks  # ...and is tight (one block per level: exact)
    if blocks == 1:
        assert reach == radius


def test_group_norm_or_attention_is_not_local():
    assert not UNet3D(1, 1, (4, 4), head_channels=4).is_local
    attn = UNet3D(1, 1, (4, 4), attention_levels=(1,), head_channels=4, norm="channel")
    assert not attn.is_local
    with pytest.raises(ValueError, match="whole patch"):
        attn.receptive_radius()
    with pytest.raises(ValueError, match="unknown norm"):
        UNet3D(1, 1, (4, 4), norm="batch")
