"""The heterogeneity VAE's geometry and data: the decoder's slices are its volume's central
slices, its image model is the simulator's (CTF and shift), particles stream chunk by chunk."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from densitydiff.errors import InputError
from densitydiff.hetero.checkpoint import HeteroRun
from densitydiff.hetero.config import read_config
from densitydiff.hetero.data import ChunkedParticles, chunk_plan, open_particles
from densitydiff.hetero.model import HeteroVAE, half_plane
from densitydiff.hetero.volume import decode_volume
from densitydiff.simulate.cryoem import Projector, form_images
from tests.hetero_sets import blob_volume, make_set

# poses that map the integer lattice onto itself (a cyclic permutation of axes, a 90 deg turn)
GRID_POSES = np.array(
    [np.eye(3), [[0, 0, 1], [1, 0, 0], [0, 1, 0]], [[0, -1, 0], [1, 0, 0], [0, 0, 1]]],
    dtype=np.float32,
)


def _model(D=32, **kw):
    torch.manual_seed(0)
    config = read_config("tiny", zdim=2, **kw)
    model = HeteroVAE(D, config).eval()
    return model, HeteroRun(model, config, D, 1.0, 1.0 / D)  # volume = ifftn(F)


def test_half_plane_pairs_k_with_minus_k():
    D = 16
    points, idx, neg = half_plane(D)
    c = D // 2
    k = torch.stack([idx % D - c, idx // D - c], 1)
    minus = torch.stack([neg % D - c, neg // D - c], 1)
    assert torch.equal(minus, -k)
    assert torch.equal(points[:, :2].long(), k)
    inside = sum((x - c) ** 2 + (y - c) ** 2 < c * c for x in range(D) for y in range(D))
    assert 2 * len(idx) - 1 == inside  # the pairs and the origin tile the circular mask


@pytest.mark.parametrize("pe_type", ["geom_lowf", "gaussian"])
def test_decoder_slice_is_the_central_slice_of_its_volume(pe_type):
    """Decode the whole lattice into a volume; its slices (exact sum, and `Projector`) at
    lattice-preserving poses are the decoder's slices at those poses."""
    model, run = _model(D=16, pe_type=pe_type)
    D = model.D
    z = torch.tensor([0.3, -0.5])
    volume = decode_volume(run, z.numpy())
    with torch.no_grad():
        dec = model.slices(z.expand(len(GRID_POSES), 2), torch.from_numpy(GRID_POSES))
    assert dec.abs().max() > 0
    # exact: the volume's discrete-time Fourier transform at the rotated points
    v = torch.from_numpy(volume.astype(np.float64)).flatten().to(torch.complex128)
    c = torch.arange(D, dtype=torch.float64) - D // 2
    zz, yy, xx = (a.flatten() for a in torch.meshgrid(c, c, c, indexing="ij"))
    for i, pose in enumerate(GRID_POSES):
        q = model.points.double() @ torch.from_numpy(pose).double()
        phase = q[:, :1] * xx + q[:, 1:2] * yy + q[:, 2:3] * zz
        exact = (torch.exp(-2j * np.pi * phase / D) * v).sum(1)
        err = (dec[i].to(torch.complex128) - exact).abs().max() / exact.abs().max()
        assert err < 1e-5, (i, float(err))
    # the simulator's projector (trilinear in a 4x oversampled transform: ~1 % of the peak)
    ref = Projector(volume, oversampling=4).slices(GRID_POSES).reshape(3, -1)[:, model.idx]
    rel = (dec - ref).abs().norm(dim=1) / ref.abs().norm(dim=1)
    assert rel.max() < 0.02, rel


def test_decoded_volume_is_real_and_hermitian():
    model, _ = _model()
    spec = model.volume_spectrum(torch.tensor([0.1, 0.2]))
    D = model.D
    flipped = torch.roll(torch.flip(spec, dims=(0, 1, 2)), shifts=(1, 1, 1), dims=(0, 1, 2))
    inner = slice(1, D)  # index 0 (-D/2) has no partner; it is outside the mask anyway
    assert torch.allclose(spec[inner, inner, inner], flipped[inner, inner, inner].conj(), atol=1e-6)
    # half the points are decoded, the rest conjugated: equal to the decoder on every point
    f = torch.arange(D, dtype=torch.float32) - D // 2
    kz, ky, kx = torch.meshgrid(f, f, f, indexing="ij")
    q = torch.stack([kx, ky, kz], -1).reshape(-1, 3)
    inside = (q**2).sum(-1) < (D / 2) ** 2
    with torch.no_grad():
        every = model.decoder(q[inside], torch.tensor([0.1, 0.2]))
    flat = spec.reshape(-1)
    assert torch.allclose(flat[inside], every, atol=1e-6) and every.abs().max() > 0
    assert not flat[~inside].any()


def test_image_model_is_the_simulators_ctf_and_shift(tmp_path):
    """Data moved back by the pose's shift equal CTF * slice: the loss compares exactly what
    `simulate.cryoem.form_images` made (same CTF array, same phase ramp)."""
    from densitydiff.hetero.module import ctf_half, observed_half

    s = make_set(tmp_path, n=8, D=32, snr=0, contrast=1.0)
    model, _ = _model()
    images = torch.from_numpy(s["images"])
    got = observed_half(model, images, torch.from_numpy(s["shifts"]))
    slices = Projector(s["volume"]).slices(s["rotations"]).reshape(8, -1)[:, model.idx]
    want = slices * ctf_half(model, torch.from_numpy(s["ctf_rows"])) / model.D
    assert (got - want).abs().max() < 1e-4 * want.abs().max()
    # and the shift matters: without it the data do not match
    unshifted = observed_half(model, images, torch.zeros(8, 2))
    assert (unshifted - want).abs().max() > 0.1 * want.abs().max()
    # ctf_half is the simulator's CTF array on the half plane
    from densitydiff.simulate.ctf import ctf

    full = ctf(s["ctf_rows"]).reshape(8, -1)[:, model.idx]
    assert torch.equal(ctf_half(model, torch.from_numpy(s["ctf_rows"])), full)
    assert torch.allclose(
        torch.from_numpy(
            form_images(Projector(s["volume"]), s["rotations"], s["shifts"], s["ctf_rows"]).numpy()
        ),
        images,
        atol=1e-6,
    )


def test_chunk_plan_reads_each_image_once_in_contiguous_chunks():
    n, chunk, batch = 100, 16, 4
    seen = []
    for epoch in range(3):
        batches = chunk_plan(n, chunk, batch, seed=5, epoch=epoch)
        flat = np.concatenate(batches)
        assert sorted(flat) == list(range(n))
        seen.append(flat)
        for b in batches:  # a batch lies within one chunk
            assert len(set(b // chunk)) == 1 and len(b) <= batch
    assert not np.array_equal(seen[0], seen[1])
    assert np.array_equal(seen[1], np.concatenate(chunk_plan(n, chunk, batch, 5, 1)))
    # two ranks: disjoint images, the same number of batches
    a, b = (chunk_plan(n, chunk, batch, 5, 0, rank=r, world=2) for r in (0, 1))
    assert len(a) == len(b) and set(np.concatenate(a)) | set(np.concatenate(b)) == set(range(n))
    # one chunk, two ranks: both run its batches, none is lost
    a, b = (chunk_plan(20, 32, 8, 5, 0, rank=r, world=2) for r in (0, 1))
    assert len(a) == len(b) == 3 and sorted(np.concatenate(b)) == list(range(20))


def test_dataset_reads_one_chunk_at_a_time(tmp_path):
    s = make_set(tmp_path, n=40, D=16)
    p = open_particles(s["particles"], s["poses"], s["ctf"])
    reads = []
    original = p.images.read

    def spy(index):
        reads.append(len(index))
        return original(index)

    p.images.read = spy
    data = ChunkedParticles(p, batch_size=4, chunk_size=8, seed=0)
    batches = list(data)
    assert max(reads) <= 8 and sum(reads) == 40
    idx = torch.cat([b["index"] for b in batches]).numpy()
    assert sorted(idx) == list(range(40))
    b = batches[0]
    assert np.array_equal(b["images"].numpy(), s["images"][b["index"].numpy()])
    assert np.allclose(b["translations"].numpy(), s["shifts"][b["index"].numpy()], atol=1e-5)


def test_txt_star_and_ind_give_the_same_particles(tmp_path):
    from densitydiff.formats.pkl import save_pickles
    from densitydiff.formats.star import write_star

    s = make_set(tmp_path, n=12, D=16)
    ref = open_particles(s["particles"], s["poses"], s["ctf"])
    (tmp_path / "list.txt").write_text("particles.mrcs\nparticles.mrcs\n")
    from densitydiff.formats.ctf import save_ctf
    from densitydiff.formats.particles import save_poses

    save_poses(
        tmp_path / "poses2.pkl",
        np.concatenate([s["rotations"]] * 2),
        np.concatenate([s["shifts"]] * 2) / 16,
    )
    save_ctf(tmp_path / "ctf2.pkl", np.concatenate([s["ctf_rows"]] * 2))
    txt = open_particles(tmp_path / "list.txt", tmp_path / "poses2.pkl", tmp_path / "ctf2.pkl")
    assert len(txt) == 24
    assert np.array_equal(txt.read(np.arange(12, 24)), ref.read(np.arange(12)))
    write_star(
        tmp_path / "p.star", "particles.mrcs", s["ctf_rows"], s["rotations"], s["shifts"] / 16
    )
    star = open_particles(tmp_path / "p.star")
    assert np.array_equal(star.read(np.arange(12)), ref.read(np.arange(12)))
    assert np.allclose(star.rotations, ref.rotations, atol=1e-5)
    assert np.allclose(star.translations, ref.translations, atol=1e-4)
    assert np.allclose(star.ctf, ref.ctf, rtol=1e-5)
    save_pickles(tmp_path / "ind.pkl", np.array([7, 2, 9]))
    sub = open_particles(s["particles"], s["poses"], s["ctf"], ind=tmp_path / "ind.pkl")
    assert len(sub) == 3 and np.array_equal(sub.read(np.arange(3)), s["images"][[7, 2, 9]])
    assert np.array_equal(sub.rotations, s["rotations"][[7, 2, 9]])


def test_bad_particles_are_refused(tmp_path):
    from densitydiff.formats.ctf import save_ctf
    from densitydiff.formats.mrcs import write_particles
    from densitydiff.formats.particles import save_poses

    s = make_set(tmp_path, n=8, D=16)
    save_poses(tmp_path / "short.pkl", s["rotations"][:7], s["shifts"][:7] / 16)
    with pytest.raises(InputError, match="poses has 7 rows"):
        open_particles(s["particles"], tmp_path / "short.pkl", s["ctf"])
    rows = s["ctf_rows"].copy()
    rows[:, 0] = 32
    save_ctf(tmp_path / "ctf32.pkl", rows)
    with pytest.raises(InputError, match="box size 32"):
        open_particles(s["particles"], s["poses"], tmp_path / "ctf32.pkl")
    mirrored = s["rotations"].copy()
    mirrored[3] = -mirrored[3]
    save_poses(tmp_path / "mirror.pkl", mirrored, s["shifts"] / 16)
    with pytest.raises(InputError, match="pose 3 is not a rotation"):
        open_particles(s["particles"], tmp_path / "mirror.pkl", s["ctf"])
    write_particles(tmp_path / "odd.mrcs", np.zeros((8, 15, 15), np.float32), 4.0)
    rows[:, 0] = 15
    save_ctf(tmp_path / "ctf15.pkl", rows)
    with pytest.raises(InputError, match="must be even"):
        open_particles(tmp_path / "odd.mrcs", s["poses"], tmp_path / "ctf15.pkl")
    data = (tmp_path / "particles.mrcs").read_bytes()
    (tmp_path / "cut.mrcs").write_bytes(data[: len(data) - 100])
    with pytest.raises(InputError, match="cut.mrcs"):
        open_particles(tmp_path / "cut.mrcs", s["poses"], s["ctf"])


def test_blob_volume_is_compact():
    """The test volume fits well inside the box (so its slices are smooth in frequency)."""
    v = blob_volume(32)
    assert v[:4].max() < 1e-3 * v.max() and v[-4:].max() < 1e-3 * v.max()


def test_cryosparc_cs_gives_the_same_particles(tmp_path):
    """A .cs file naming the stack (blob/path with cryoSPARC's '>' prefix, blob/idx) with the
    poses as axis-angle vectors and the CTF in cryoSPARC's units."""
    from scipy.spatial.transform import Rotation

    s = make_set(tmp_path, n=6, D=16)
    ref = open_particles(s["particles"], s["poses"], s["ctf"])
    rows = s["ctf_rows"]
    dtype = [
        ("blob/path", "S64"),
        ("blob/idx", "<u4"),
        ("blob/shape", "<u4", (2,)),
        ("blob/psize_A", "<f4"),
        ("ctf/df1_A", "<f4"),
        ("ctf/df2_A", "<f4"),
        ("ctf/df_angle_rad", "<f4"),
        ("ctf/accel_kv", "<f4"),
        ("ctf/cs_mm", "<f4"),
        ("ctf/amp_contrast", "<f4"),
        ("ctf/phase_shift_rad", "<f4"),
        ("alignments3D/pose", "<f4", (3,)),
        ("alignments3D/shift", "<f4", (2,)),
    ]
    cs = np.zeros(6, dtype=dtype)
    order = np.array([3, 0, 5, 1, 4, 2])  # rows in another order than the stack
    cs["blob/path"] = b">particles.mrcs"
    cs["blob/idx"] = order
    cs["blob/shape"] = 16
    cs["blob/psize_A"] = rows[order, 1]
    cs["ctf/df1_A"], cs["ctf/df2_A"] = rows[order, 2], rows[order, 3]
    cs["ctf/df_angle_rad"] = np.deg2rad(rows[order, 4])
    cs["ctf/accel_kv"], cs["ctf/cs_mm"], cs["ctf/amp_contrast"] = rows[order, 5:8].T
    cs["alignments3D/pose"] = Rotation.from_matrix(
        s["rotations"][order].transpose(0, 2, 1)
    ).as_rotvec()
    cs["alignments3D/shift"] = s["shifts"][order]
    with open(tmp_path / "p.cs", "wb") as f:
        np.save(f, cs)
    got = open_particles(tmp_path / "p.cs")
    assert np.array_equal(got.read(np.arange(6)), ref.read(order))
    assert np.allclose(got.rotations, ref.rotations[order], atol=1e-5)
    assert np.allclose(got.translations, ref.translations[order], atol=1e-4)
    assert np.allclose(got.ctf, ref.ctf[order], rtol=1e-5, atol=1e-5)


def test_conv_encoder_option():
    model, _ = _model(D=32, encoder="conv")
    from densitydiff.nn.field import ConvEncoder

    assert isinstance(model.encoder, ConvEncoder)
    x = torch.randn(3, 32, 32)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (3, 2)
    assert not torch.allclose(mu[0], mu[1])
    with pytest.raises(InputError, match="encoder"):
        read_config("tiny", encoder="resnet")
