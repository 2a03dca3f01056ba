"""Particle formats against cryoDRGN's reference files and round trips through our writers."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from densitydiff.errors import InputError
from densitydiff.formats import cryosparc, mrcs, particles, star
from densitydiff.formats.ctf import load_ctf, save_ctf
from densitydiff.formats.latents import read_latents, write_latents
from densitydiff.rotations import random_rotations
from tests.conftest import TESTDATA


def test_cs_parses_to_cryodrgn_reference_poses_and_ctf():
    cs = cryosparc.read_cs(TESTDATA / "cryosparc_P12_J24_001_particles.cs")
    rot, trans = cryosparc.poses_from_cs(cs)
    ref_rot, ref_trans = particles.load_poses(TESTDATA / "pose.cs.pkl")
    assert rot.shape == (2019, 3, 3)
    np.testing.assert_allclose(rot, ref_rot, atol=1e-6)
    np.testing.assert_allclose(trans, ref_trans, atol=1e-7)
    ctf = cryosparc.ctf_from_cs(cs)
    ref = load_ctf(TESTDATA / "ctf2.pkl")
    assert ctf.dtype == np.float32 and ctf.shape == (2019, 9)
    np.testing.assert_array_equal(ctf, ref)


def test_star_and_cs_of_the_same_particles_give_the_same_ctf():
    ctf_cs = cryosparc.ctf_from_cs(cryosparc.read_cs(TESTDATA / "empiar_10076_7.cs"))
    df = star.read_star(TESTDATA / "empiar_10076_7.star")  # RELION 3.0: no optics block
    ctf_star = star.ctf_from_star(df, D=320)
    np.testing.assert_allclose(ctf_star, ctf_cs, rtol=2e-6)


def _text_table(path, block):
    """Columns and rows of one loop in a STAR file, parsed by hand (the test's own reader)."""
    lines = path.read_text().splitlines()
    i = next(k for k, line in enumerate(lines) if line.strip() == f"data_{block}")
    cols, rows = [], []
    for line in lines[i + 1 :]:
        t = line.strip()
        if t.startswith("data_"):
            break
        if t.startswith("_"):
            cols.append(t.split()[0][1:])
        elif t and t != "loop_" and not t.startswith("#") and cols:
            rows.append(t.split())
    return cols, rows


def test_relion31_optics_groups_are_merged_per_particle():
    path = TESTDATA / "relion31.6opticsgroups.star"
    df = star.read_star(path)
    ocols, orows = _text_table(path, "optics")
    pcols, prows = _text_table(path, "particles")
    assert len(df) == len(prows) == 139
    optics = {int(r[ocols.index("rlnOpticsGroup")]): r for r in orows}
    assert len(optics) == 6
    ctf = star.ctf_from_star(df)
    for k, row in enumerate(prows):
        group = optics[int(row[pcols.index("rlnOpticsGroup")])]
        expect = [
            float(group[ocols.index("rlnImageSize")]),
            float(group[ocols.index("rlnImagePixelSize")]),
            float(row[pcols.index("rlnDefocusU")]),
            float(row[pcols.index("rlnDefocusV")]),
            float(row[pcols.index("rlnDefocusAngle")]),
            float(group[ocols.index("rlnVoltage")]),
            float(group[ocols.index("rlnSphericalAberration")]),
            float(group[ocols.index("rlnAmplitudeContrast")]),
            float(row[pcols.index("rlnPhaseShift")]),
        ]
        np.testing.assert_allclose(ctf[k], expect, rtol=1e-6)
    rot, trans = star.poses_from_star(df)
    for k in (0, 50, 138):
        row = prows[k]
        e = [float(row[pcols.index(n)]) for n in ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")]
        ref = Rotation.from_euler("ZYZ", e, degrees=True).as_matrix().T
        np.testing.assert_allclose(rot[k], ref, atol=1e-6)
        apix = float(
            optics[int(row[pcols.index("rlnOpticsGroup")])][ocols.index("rlnImagePixelSize")]
        )
        ox = float(row[pcols.index("rlnOriginXAngst")])
        assert trans[k, 0] == pytest.approx(ox / apix / 196, rel=1e-5)


@pytest.mark.parametrize("name,n,D", [("relion31.star", 5, 256), ("relion5.star", 17, 448)])
def test_relion31_and_relion5_star_files_parse(name, n, D):
    df = star.read_star(TESTDATA / name)
    ctf = star.ctf_from_star(df)
    rot, trans = star.poses_from_star(df)
    assert ctf.shape == (n, 9) and rot.shape == (n, 3, 3) and trans.shape == (n, 2)
    assert np.all(ctf[:, 0] == D)
    assert np.allclose(rot @ rot.transpose(0, 2, 1), np.eye(3), atol=1e-5)
    cols, rows = _text_table(TESTDATA / name, "particles")
    np.testing.assert_allclose(ctf[:, 2], [float(r[cols.index("rlnDefocusU")]) for r in rows])


def test_star_written_here_reads_back_and_agrees_with_a_cs_of_the_same_poses(tmp_path):
    rng = np.random.default_rng(0)
    n, D, apix = 40, 64, 1.5
    rot = random_rotations(n, rng).astype(np.float32)
    trans = rng.uniform(-0.05, 0.05, (n, 2)).astype(np.float32)
    ctf = np.zeros((n, 9), np.float32)
    ctf[:, 0], ctf[:, 1] = D, apix
    ctf[:, 2] = rng.uniform(1e4, 2e4, n)
    ctf[:, 3] = ctf[:, 2] - 100
    ctf[:, 4] = rng.uniform(-180, 180, n)
    ctf[:, 5:8] = 300, 2.7, 0.07
    ctf[n // 2 :, 5] = 200  # a second optics group
    path = star.write_star(tmp_path / "p.star", "p.mrcs", ctf, rot, trans)
    df = star.read_star(path)
    np.testing.assert_allclose(star.ctf_from_star(df), ctf, rtol=1e-5)
    srot, strans = star.poses_from_star(df)
    np.testing.assert_allclose(srot, rot, atol=1e-5)
    np.testing.assert_allclose(strans, trans, atol=1e-6)
    # the same poses as a cryoSPARC file: rotation vector of R^T, shift in pixels
    cs = np.zeros(n, dtype=[("blob/shape", "<u4", 2), ("alignments3D/pose", "<f4", 3),
                            ("alignments3D/shift", "<f4", 2)])  # fmt: skip
    cs["blob/shape"] = D
    cs["alignments3D/pose"] = Rotation.from_matrix(rot.transpose(0, 2, 1)).as_rotvec()
    cs["alignments3D/shift"] = trans * D
    np.save(tmp_path / "p.npy", cs)
    os.replace(tmp_path / "p.npy", tmp_path / "p.cs")
    crot, ctrans = cryosparc.poses_from_cs(cryosparc.read_cs(tmp_path / "p.cs"))
    np.testing.assert_allclose(crot, srot, atol=1e-5)
    np.testing.assert_allclose(ctrans, strans, atol=1e-6)


def test_stacks_lists_and_star_images(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 16, 16)).astype(np.float32)
    b = rng.normal(size=(3, 16, 16)).astype(np.float32)
    mrcs.write_particles(tmp_path / "a.mrcs", a, 2.0)
    mrcs.write_particles(tmp_path / "b.mrcs", b, 2.0)
    np.testing.assert_array_equal(particles.read_particles(tmp_path / "a.mrcs"), a)
    assert mrcs.stack_pixel_size(tmp_path / "a.mrcs") == pytest.approx(2.0)
    (tmp_path / "list.txt").write_text("a.mrcs\nb.mrcs\n")
    both = particles.read_particles(tmp_path / "list.txt")
    np.testing.assert_array_equal(both, np.concatenate([a, b]))
    (tmp_path / "s.star").write_text(
        "data_particles\nloop_\n_rlnImageName\n2@b.mrcs\n1@a.mrcs\n5@a.mrcs\n"
    )
    imgs = particles.read_particles(tmp_path / "s.star")
    np.testing.assert_array_equal(imgs, np.stack([b[1], a[0], a[4]]))
    (tmp_path / "bad.star").write_text("data_particles\nloop_\n_rlnImageName\n9@b.mrcs\n")
    with pytest.raises(InputError):
        particles.read_particles(tmp_path / "bad.star")


def test_writer_writes_out_of_order_and_leaves_nothing_when_incomplete(tmp_path):
    rng = np.random.default_rng(2)
    images = rng.normal(size=(6, 8, 8)).astype(np.float32)
    with mrcs.ParticleWriter(tmp_path / "s.mrcs", 6, 8, 1.0) as w:
        w.write_at([4, 1, 2], images[[4, 1, 2]], stats=True)
        w.write_at([0, 3, 5], images[[0, 3, 5]], stats=True)
        np.testing.assert_array_equal(w.read(1, 3), images[1:3])
    np.testing.assert_array_equal(particles.read_particles(tmp_path / "s.mrcs"), images)
    import mrcfile

    with mrcfile.open(tmp_path / "s.mrcs") as mrc:
        assert mrc.header.dmean == pytest.approx(images.mean(), abs=1e-5)
        assert mrc.header.rms == pytest.approx(images.std(), rel=1e-4)
        assert mrc.is_image_stack()
    with pytest.raises(InputError):
        with mrcs.ParticleWriter(tmp_path / "t.mrcs", 6, 8, 1.0) as w:
            w.write(images[:3])
    assert not list(tmp_path.glob("*t.mrcs*"))


def test_pickles_round_trip_and_malicious_pickles_are_refused(tmp_path):
    rng = np.random.default_rng(3)
    rot = random_rotations(5, rng)
    trans = rng.normal(size=(5, 2)) * 0.01
    particles.save_poses(tmp_path / "poses.pkl", rot, trans)
    r, t = particles.load_poses(tmp_path / "poses.pkl")
    assert r.dtype == np.float32
    np.testing.assert_allclose(r, rot, atol=1e-6)
    np.testing.assert_allclose(t, trans, atol=1e-7)
    mu, logvar = rng.normal(size=(7, 2)), rng.normal(size=(7, 2))
    write_latents(tmp_path / "z.pkl", mu, logvar)
    m, lv = read_latents(tmp_path / "z.pkl")
    np.testing.assert_allclose(m, mu, atol=1e-6)
    np.testing.assert_allclose(lv, logvar, atol=1e-6)
    m, lv = read_latents(TESTDATA / "zvals_het-2_1k.pkl")  # a real cryoDRGN file (means)
    assert m.shape == (1319, 2) and lv is None

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps((Evil(), np.zeros((1, 2)))))
    with pytest.raises(InputError, match="unsafe"):
        particles.load_poses(tmp_path / "evil.pkl")
    assert not (tmp_path / "pwned").exists()


def test_bad_particle_files(tmp_path):
    with pytest.raises(InputError):
        particles.read_particles(tmp_path / "missing.mrcs")
    (tmp_path / "junk.mrcs").write_bytes(b"not an mrc file" * 100)
    with pytest.raises(InputError):
        particles.read_particles(tmp_path / "junk.mrcs")
    save_ctf(tmp_path / "ok.pkl", np.zeros((2, 9)))
    with open(tmp_path / "wrong.pkl", "wb") as fh:
        pickle.dump(np.zeros((2, 8), np.float32), fh)
    with pytest.raises(InputError):
        load_ctf(tmp_path / "wrong.pkl")
    with open(tmp_path / "skew.pkl", "wb") as fh:
        pickle.dump((np.ones((2, 3, 3), np.float32), np.zeros((2, 2), np.float32)), fh)
    with pytest.raises(InputError, match="orthonormal"):
        particles.load_poses(tmp_path / "skew.pkl")
    (tmp_path / "bad.star").write_text("this is not a star file\n")
    with pytest.raises(InputError):
        star.ctf_from_star(star.read_star(tmp_path / "bad.star"))
    with pytest.raises(InputError, match="rlnDefocusU"):
        star.ctf_from_star(star.read_star(TESTDATA / "relion31.star").drop(columns="rlnDefocusU"))
    np.save(tmp_path / "x.npy", np.zeros(3))
    with pytest.raises(InputError):
        cryosparc.read_cs(tmp_path / "x.npy")
