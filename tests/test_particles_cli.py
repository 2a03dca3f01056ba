"""`densitydiff simulate particles`: outputs, determinism, ground truth and the noise model."""

from __future__ import annotations

import json

import gemmi
import numpy as np
import pytest

from densitydiff.formats import particles, star
from densitydiff.formats.ctf import load_ctf
from densitydiff.formats.maps import read_map
from densitydiff.simulate.cryoem import Projector, form_images
from tests.conftest import EXAMPLES

COMMON = ["--box", "24", "--pixel-size", "3.0", "--resolution", "7"]


def _trajectory(tmp_path, n_frames=3):
    """A small multi-model PDB: chain A's second half slides 4 Å per frame along x."""
    st = gemmi.read_structure(str(EXAMPLES / "1orc.pdb.gz"))
    st.remove_waters()
    st.remove_hydrogens()
    base = st[0]
    out = gemmi.Structure()
    out.cell = st.cell
    residues = [r.seqid.num for r in base[0]]
    cut = residues[len(residues) // 2]
    for f in range(n_frames):
        model = base.clone()
        model.num = f + 1  # gemmi >= 0.7 names models by number
        for res in model[0]:
            if res.seqid.num >= cut:
                for atom in res:
                    atom.pos = gemmi.Position(atom.pos.x + 4.0 * f, atom.pos.y, atom.pos.z)
        out.add_model(model)
    path = tmp_path / "traj.pdb"
    out.write_pdb(str(path))
    return path


def test_trajectory_data_set_is_complete_consistent_and_deterministic(cli, tmp_path):
    traj = _trajectory(tmp_path)
    args = ["--trajectory", traj, "--n-images", "60", "--snr", "0.5", *COMMON]
    code, out, err = cli("simulate", "particles", "-o", tmp_path / "a", *args, "--seed", "7")
    assert code == 0, err
    a = tmp_path / "a"
    record = json.loads((a / "dataset.json").read_text())
    assert record["n_states"] == 3 and record["heterogeneity"] == "trajectory"
    images = particles.read_particles(a / "particles.mrcs")
    assert images.shape == (60, 24, 24)
    rot, trans = particles.load_poses(a / "poses.pkl")
    ctf = load_ctf(a / "ctf.pkl")
    assert rot.shape == (60, 3, 3) and trans.shape == (60, 2) and ctf.shape == (60, 9)
    assert np.all((ctf[:, 2] >= 10000) & (ctf[:, 2] <= 25000))
    df = star.read_star(a / "particles.star")
    np.testing.assert_allclose(star.poses_from_star(df)[0], rot, atol=1e-5)
    np.testing.assert_allclose(star.poses_from_star(df)[1], trans, atol=1e-6)
    np.testing.assert_allclose(star.ctf_from_star(df), ctf, rtol=1e-5)
    truth = np.load(a / "ground_truth.npy")
    csv = np.loadtxt(a / "ground_truth.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(csv[:, 1:], truth)
    np.testing.assert_allclose(truth[:, 1], truth[:, 0] / 2)  # coordinate = frame / (F - 1)
    assert set(truth[:, 0].astype(int)) == {0, 1, 2}
    np.testing.assert_array_equal(df["rlnClassNumber"].to_numpy(), truth[:, 0] + 1)
    vols = [read_map(a / "volumes" / f"state_{k:03d}.mrc").array for k in range(3)]
    assert not np.allclose(vols[0], vols[2])
    # the noise model, checked by re-forming clean images from the written volumes and poses
    states = truth[:, 0].astype(int)
    clean = np.empty_like(images)
    for k in range(3):
        idx = np.flatnonzero(states == k)
        shifts = trans[idx] * 24
        clean[idx] = form_images(Projector(vols[k]), rot[idx], shifts, ctf[idx]).numpy()
    signal_var = clean.reshape(60, -1).var(axis=1).mean()
    assert record["signal_variance"] == pytest.approx(signal_var, rel=1e-3)
    assert record["contrast"] == "cryodrgn"  # the default: protein dark, -(CTF * P V) + N
    noise = images + clean
    assert noise.std() == pytest.approx(np.sqrt(signal_var / 0.5), rel=0.05)
    assert abs(noise.mean()) < 0.05 * noise.std()
    # same seed -> the same data set; another seed -> another one
    code, _, err = cli("simulate", "particles", "-o", tmp_path / "b", *args, "--seed", "7")
    assert code == 0, err
    np.testing.assert_array_equal(
        particles.read_particles(tmp_path / "b" / "particles.mrcs"), images
    )
    code, _, err = cli("simulate", "particles", "-o", tmp_path / "c", *args, "--seed", "8")
    assert code == 0, err
    assert not np.array_equal(particles.read_particles(tmp_path / "c" / "particles.mrcs"), images)


def test_hinge_rotates_the_selected_part_linear_and_circular(cli, tmp_path):
    model = EXAMPLES / "1orc.pdb.gz"
    args = ["--structure", model, "--hinge", "A/40-66/", "--axis", "0", "0", "1", "--n-states", "4",
            "--n-images", "20", "--snr", "inf", *COMMON]  # fmt: skip
    code, _, err = cli("simulate", "particles", "-o", tmp_path / "h", *args, "--angles", "0", "90")
    assert code == 0, err
    record = json.loads((tmp_path / "h" / "dataset.json").read_text())
    assert record["heterogeneity"] == "linear1d"
    np.testing.assert_allclose(record["state_coordinates"], [0, 30, 60, 90])
    vols = [read_map(tmp_path / "h" / "volumes" / f"state_{k:03d}.mrc").array for k in range(4)]
    cc = [np.corrcoef(vols[0].ravel(), v.ravel())[0, 1] for v in vols]
    assert cc[0] == pytest.approx(1.0) and cc[1] > cc[2] > cc[3]  # further turned, less alike
    # state 0 (angle 0) is the unmoved structure on the box centred on its centroid
    from densitydiff.simulate.density import simulate_map
    from densitydiff.structures import read_structure

    ref = simulate_map(read_structure(model), 7.0, 3.0, shape=(24, 24, 24)).array
    np.testing.assert_allclose(vols[0], ref, atol=1e-4 * np.abs(ref).max())
    code, _, err = cli("simulate", "particles", "-o", tmp_path / "c", *args, "--circular")
    assert code == 0, err
    record = json.loads((tmp_path / "c" / "dataset.json").read_text())
    assert record["heterogeneity"] == "circular1d"
    np.testing.assert_allclose(record["state_coordinates"], [0, 90, 180, 270])


def test_discrete_states_follow_the_proportions(cli, tmp_path):
    st = gemmi.read_structure(str(EXAMPLES / "1orc.pdb.gz"))
    st.remove_waters()
    part = st.clone()
    chain = part[0][0]
    for i in range(len(chain) - 1, len(chain) // 2, -1):
        del chain[i]
    part.write_pdb(str(tmp_path / "part.pdb"))
    full = EXAMPLES / "1orc.pdb.gz"
    code, _, err = cli("simulate", "particles", "-o", tmp_path / "d", "--structures",
                       full, tmp_path / "part.pdb", "--proportions", "0.8,0.2",
                       "--n-images", "200", "--snr", "1", *COMMON)  # fmt: skip
    assert code == 0, err
    states = np.load(tmp_path / "d" / "ground_truth.npy")[:, 0]
    frac = (states == 0).mean()
    assert abs(frac - 0.8) < 4 * np.sqrt(0.8 * 0.2 / 200)
    v0 = read_map(tmp_path / "d" / "volumes" / "state_000.mrc").array
    v1 = read_map(tmp_path / "d" / "volumes" / "state_001.mrc").array
    assert v1.sum() < 0.8 * v0.sum()  # fewer atoms, less density, same frame


def test_bad_inputs_give_one_line_and_leave_no_stack(cli, tmp_path):
    model = EXAMPLES / "1orc.pdb.gz"
    base = ["--n-images", "4", *COMMON]
    cases = [
        [*base],  # no source
        [*base, "--trajectory", tmp_path / "missing.pdb"],
        [*base, "--trajectory", model, "--structures", f"{model},{model}"],  # two sources
        [*base, "--trajectory", model],  # one model only
        [
            *base,
            "--structure",
            model,
            "--hinge",
            "Z/1-5/",
            "--axis",
            "0",
            "0",
            "1",
            "--angles",
            "0",
            "10",
        ],  # fmt: skip
        [
            *base,
            "--structure",
            model,
            "--hinge",
            "A/1-10/",
            "--axis",
            "0",
            "0",
            "0",
            "--angles",
            "0",
            "10",
        ],  # fmt: skip
        [*base, "--structures", f"{model},{model}", "--proportions", "1,-1"],
        [*base, "--structures", f"{model},{model}", "--snr", "-1"],
        ["--n-images", "4", "--box", "25", "--pixel-size", "3", "--structures", f"{model},{model}"],
        [*base, "--structures", f"{model},{model}", "--defocus", "2000", "1000"],
    ]
    for k, extra in enumerate(cases):
        out = tmp_path / f"o{k}"
        code, _, err = cli("simulate", "particles", "-o", out, *extra)
        assert code == 2, (extra, err)
        assert err.count("\n") == 1 and err.startswith("densitydiff: error:"), err
        assert not (out / "particles.mrcs").exists()
        assert not list(out.glob(".particles*")) if out.exists() else True


def test_star_carries_what_relion_31_expects(cli, tmp_path):
    import starfile

    traj = _trajectory(tmp_path, n_frames=2)
    code, _, err = cli("simulate", "particles", "-o", tmp_path / "r", "--trajectory", traj,
                       "--n-images", "7", "--box", "16", "--pixel-size", "4")  # fmt: skip
    assert code == 0, err
    path = tmp_path / "r" / "particles.star"
    text = path.read_text().splitlines()
    blocks = [i for i, line in enumerate(text) if line.startswith("data_")]
    assert [text[i] for i in blocks] == ["data_optics", "data_particles"]
    for i in blocks:  # RELION 3.1 writes "# version 30001" right before each block
        assert "# version 30001" in [ln.strip() for ln in text[max(0, i - 2) : i]]
    tables = starfile.read(path, always_dict=True)
    assert set(tables) == {"optics", "particles"}
    optics, parts = tables["optics"], tables["particles"]
    assert {"rlnOpticsGroup", "rlnImagePixelSize", "rlnImageSize", "rlnVoltage"} <= set(optics)
    assert optics["rlnImageSize"].tolist() == [16]
    assert len(parts) == 7
    assert parts["rlnRandomSubset"].tolist() == [1, 2, 1, 2, 1, 2, 1]
    names = parts["rlnMicrographName"].tolist()
    assert all(isinstance(n, str) and n.endswith(".mrc") for n in names)
    assert set(parts["rlnOpticsGroup"]) <= set(optics["rlnOpticsGroup"])
    assert parts["rlnImageName"].iloc[0] == "000001@particles.mrcs"


def test_trajectory_with_calcium_alpha_carbons_is_refused(cli, tmp_path):
    """Frames are read with the element check: CA atoms whose element column says Ca."""
    traj = _trajectory(tmp_path)
    lines = traj.read_text().splitlines(keepends=True)
    bad = [
        line[:76] + "CA" + line[78:] if line.startswith("ATOM") and line[12:16] == " CA " else line
        for line in lines
    ]
    (tmp_path / "bad.pdb").write_text("".join(bad))
    out = tmp_path / "o"
    code, _, err = cli("simulate", "particles", "-o", out, "--trajectory", tmp_path / "bad.pdb",
                       "--n-images", "4", *COMMON)  # fmt: skip
    assert code == 2 and "calcium" in err and err.count("\n") == 1, err
    assert not (out / "particles.mrcs").exists()


def _noiseless(cli, tmp_path, name, *extra):
    args = ["--structures", EXAMPLES / "1orc.pdb.gz", EXAMPLES / "1orc.pdb.gz", "--n-images",
            "400", "--snr", "inf", "--max-shift", "0", *COMMON, *extra]  # fmt: skip
    code, _, err = cli("simulate", "particles", "-o", tmp_path / name, *args)
    assert code == 0, err
    return tmp_path / name


def test_stack_contrast_is_what_cryodrgn_defaults_read_and_our_backprojection_agrees(
    cli, tmp_path
):
    """Default stacks are protein dark: cryoDRGN's default --invert-data (images * -1) and our
    backproject(invert=True) give the positive volume; --contrast positive is the other way."""
    from densitydiff.simulate.reconstruct import backproject

    def cc(folder, invert):
        images = particles.read_particles(folder / "particles.mrcs")
        rot, trans = particles.load_poses(folder / "poses.pkl")
        rec = backproject(images, rot, trans * 24, load_ctf(folder / "ctf.pkl"), invert=invert)
        vol = read_map(folder / "volumes" / "state_000.mrc").array
        return np.corrcoef(rec.ravel(), vol.ravel())[0, 1]

    dark = _noiseless(cli, tmp_path, "dark")
    record = json.loads((dark / "dataset.json").read_text())
    assert record["contrast"] == "cryodrgn" and "invert" in record["contrast_definition"]
    assert cc(dark, invert=True) > 0.9  # what cryoDRGN's defaults see
    assert cc(dark, invert=False) < -0.9  # what --uninvert-data would see
    bright = _noiseless(cli, tmp_path, "bright", "--contrast", "positive")
    assert json.loads((bright / "dataset.json").read_text())["contrast"] == "positive"
    np.testing.assert_allclose(
        particles.read_particles(bright / "particles.mrcs"),
        -particles.read_particles(dark / "particles.mrcs"), atol=1e-6,
    )  # fmt: skip
    code, _, err = cli("simulate", "particles", "-o", tmp_path / "x", "--structures",
                       EXAMPLES / "1orc.pdb.gz", "--n-images", "4", *COMMON, "--contrast", "dark")
    assert code == 2 and "contrast" in err  # fmt: skip


def test_volumes_sit_on_cryodrgns_grid(cli, tmp_path):
    """cryoDRGN's write_mrc (eval_vol, backproject_voxel) writes origin 0 and voxel size Apix;
    a volume we write and one written that way for the same array line up, and FSC runs
    between them without --resample."""
    import mrcfile

    folder = _noiseless(cli, tmp_path, "d")
    ours = read_map(folder / "volumes" / "state_000.mrc")
    assert ours.origin == pytest.approx((0.0, 0.0, 0.0)) and ours.array.shape == (24, 24, 24)
    theirs = tmp_path / "cryodrgn_vol.mrc"
    with mrcfile.new(str(theirs)) as m:  # as cryodrgn.mrcfile.write_mrc: default header
        m.set_data(ours.array.astype(np.float32))
        m.voxel_size = 3.0  # Apix; header origin and nxstart stay 0
    other = read_map(theirs)
    assert other.origin == pytest.approx(ours.origin) and other.voxel_size == ours.voxel_size
    code, out, err = cli("fsc", folder / "volumes" / "state_000.mrc", theirs, "--json")
    assert code == 0, err
    assert json.loads(out)["fsc_auc"] == pytest.approx(1.0, abs=1e-3)
