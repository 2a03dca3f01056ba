"""Benchmark: does the VAE's latent space separate a discrete set of structures (not a test)?

    PYTHONPATH=src python bench/hetero_discrete.py [--n-images 10000] [--box 64]
        [--pixel-size 2] [--epochs 25] [--lr 1e-4] [--structures 1ubi 1aki 1ake]
        [--proportions 0.5 0.3 0.2] [--seed 0] [--threads 1] [--keep DIR]

Issue #12, item 4. Three clearly different small proteins from ../shared/data/structures
(ubiquitin 76 residues, lysozyme 129, adenylate kinase 213 by default), each moved to its own
centroid (`simulate particles --structures` puts every model in the first one's frame, which
for unrelated entries is outside the box), simulated with `--structures A B C --proportions
0.5,0.3,0.2`; `hetero train` (zdim 8, 256 x 3); then k-means (k = the number of structures,
`hetero.analyze.kmeans`) on z: the adjusted Rand index against the true classes, the clusters
matched to classes (`hetero.evaluate.match_states`), and the FSC-AUC of each k-means centre's
volume against its matched structure's ground truth and against the other structures (and the
nearest structure of each centre). One JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import _hetero_common as common
import numpy as np

STRUCTURES = ("1ubi", "1aki", "1ake")


def centred_copy(entry: str, out: Path) -> Path:
    """Model 1 of a shared structure (waters and hydrogens off), moved to its centroid, as PDB."""
    import gemmi

    from densitydiff.structures import centroid, read_structure

    src = next((common.DATA / "structures").glob(f"{entry}.*"))
    st = read_structure(src)
    cz, cy, cx = centroid(st[0])
    for cra in st[0].all():
        p = cra.atom.pos
        cra.atom.pos = gemmi.Position(p.x - cx, p.y - cy, p.z - cz)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{entry}_centred.pdb"
    st.write_pdb(str(path))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_options(ap)
    ap.add_argument("--structures", nargs="+", default=list(STRUCTURES), help="PDB ids.")
    ap.add_argument("--proportions", nargs="+", type=float, default=[0.5, 0.3, 0.2])
    args = ap.parse_args()
    if len(args.proportions) != len(args.structures):
        ap.error("one proportion per structure")

    import torch

    torch.set_num_threads(args.threads)
    from densitydiff.formats.latents import read_latents
    from densitydiff.hetero.analyze import kmeans
    from densitydiff.hetero.checkpoint import load_hetero
    from densitydiff.hetero.evaluate import (
        adjusted_rand_index,
        match_states,
        nearest_state,
        volume_fsc_auc,
    )
    from densitydiff.hetero.volume import decode_volume

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_hetero_discrete_"))
    data, run = work / "data", work / "run"
    models = [str(centred_copy(s, work / "structures")) for s in args.structures]
    source = ["--structures", *models, "--proportions", ",".join(map(str, args.proportions))]
    t_sim = common.simulate(data, source, args)
    truth = common.states(data)
    t_train = common.train(data, run, args)

    mu, _ = read_latents(run / "z.pkl")
    model = load_hetero(run)
    truths = common.truth_volumes(data)
    px = args.pixel_size
    k = len(args.structures)
    centres, labels = kmeans(mu, k, seed=args.seed)
    mapping = match_states(labels, truth)
    classes = []
    for cluster, state in sorted(mapping.items(), key=lambda kv: kv[1]):
        vol = decode_volume(model, centres[cluster])
        scores = [volume_fsc_auc(vol, t, px) for t in truths]
        classes.append(
            {
                "structure": args.structures[state],
                "true_fraction": float(np.mean(truth == state)),
                "cluster_fraction": float(np.mean(labels == cluster)),
                "fsc_auc_matched": scores[state],
                "fsc_auc_others": [s for j, s in enumerate(scores) if j != state],
                "nearest_structure": args.structures[nearest_state(vol, truths, px)[0]],
            }
        )
    # what a volume that ignores the classes reaches: the population average against each truth
    counts = np.bincount(truth, minlength=k)
    average = sum(c * t for c, t in zip(counts, truths)) / counts.sum()
    out = {
        **common.settings(args),
        "invert_data": common.invert_data(data),
        "structures": args.structures,
        "proportions": args.proportions,
        "ari": adjusted_rand_index(labels, truth),
        "accuracy_matched": float(np.mean(np.array([mapping.get(c, -1) for c in labels]) == truth)),
        "classes": classes,
        "mean_fsc_auc_matched": float(np.mean([c["fsc_auc_matched"] for c in classes])),
        "average_volume_fsc_auc": [volume_fsc_auc(average, t, px) for t in truths],
        "simulate_seconds": t_sim,
        "seconds_per_epoch": t_train / args.epochs,
    }
    print(json.dumps(out))
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
