#!/usr/bin/env bash
# The base install (`pip install densitydiff`, no extras) runs the main commands; training asks
# for its extra in one line with exit status 2. Run by `make test-base` with .venv-base's python:
#   bash tests/base_install.sh .venv-base/bin/python
set -euo pipefail
PY=${1:-.venv-base/bin/python}
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")
EX=$(cd "$(dirname "$0")/../src/densitydiff/examples" && pwd)
DD="$PY -m densitydiff"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
step() {
  printf '%-28s' "$1"; shift
  local t0=$SECONDS
  "$@" >"$W/log" 2>&1 || { echo FAILED; cat "$W/log"; exit 1; }
  echo "ok ($((SECONDS - t0)) s)"
}

# no extra may be importable, or this is not the base install
for m in lightning diffusers zarr starfile; do
  if $PY -c "import $m" 2>/dev/null; then echo "$m is installed: not a base install"; exit 1; fi
done

step "info" $DD info "$EX/emd_5168_monomer.mrc"
step "simulate map" $DD simulate map "$EX/1orc.pdb.gz" -o a4.mrc -r 4
step "simulate map --like" $DD simulate map "$EX/1orc.pdb.gz" -o a6.mrc -r 6 --like a4.mrc
step "fsc" $DD fsc a4.mrc a6.mrc --json
step "compare" $DD compare a6.mrc a4.mrc --json
step "sharpen (default model)" $DD sharpen a6.mrc -o s.mrc --input-resolution 6 --steps 2
step "evaluate --report" $DD evaluate "$EX/1orc.pdb.gz" -c default --steps 1 --report rep
step "simulate particles" $DD simulate particles -o parts --device cpu \
  --structures "$EX/1orc.pdb.gz" "$EX/1orc.pdb.gz" --n-images 8 --box 32 --pixel-size 3
# a prior as `prior train` would leave it (untrained weights: training needs the extra)
step "write a prior" $PY -c "
import numpy as np
from densitydiff.prior.checkpoint import save_prior
from densitydiff.prior.config import PriorConfig
from densitydiff.prior.latents import LatentStats
from densitydiff.prior.network import build_denoiser
z = np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32)
cfg = PriorConfig(width=8, depth=1, emb_dim=8)
save_prior('prior/prior.pt', build_denoiser(2, cfg), cfg, LatentStats(z.mean(0), z.std(0)), z,
           epochs_trained=0, versions={})
" 
step "prior sample (ode)" $DD prior sample prior -n 16 -o z.txt --method ode
step "prior sample (heun)" $DD prior sample prior -n 16 -o z.npy --method heun --steps 8
step "prior interpolate" $DD prior interpolate prior --start 0 --end 3 --steps 4 -o path.npy
# a hetero run as `hetero train` would leave it (untrained), with its z.pkl
step "write a hetero run" $PY -c "
import numpy as np
from densitydiff.formats.latents import write_latents
from densitydiff.hetero.checkpoint import save_hetero
from densitydiff.hetero.config import read_config
from densitydiff.hetero.model import HeteroVAE
cfg = read_config('tiny', zdim=2)
save_hetero('het/weights.pt', HeteroVAE(16, cfg), cfg, D=16, pixel_size=4.0, img_std=1.0,
            n_images=16, epochs_trained=0, versions={})
z = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32)
write_latents('het/z.pkl', z, np.zeros_like(z))
"
step "hetero analyze" $DD hetero analyze het -o het_analysis --k 2 --pc-points 2
step "prior sample --volumes" $DD prior sample prior -n 2 --volumes het -o het_sampled

# training needs the `train` extra: one line on stderr, exit status 2, before any work
expect_extra() {
  set +e; $DD "$@" >"$W/out" 2>"$W/err"; code=$?; set -e
  lines=$(grep -c . "$W/err" || true)
  if [[ $code -ne 2 || $lines -ne 1 ]] || ! grep -q "pip install 'densitydiff\[train\]'" "$W/err"
  then echo "densitydiff $*: exit $code, stderr:"; cat "$W/err"; exit 1; fi
  printf '%-28s%s\n' "$1 $2 (no extra)" "exit 2: $(cat "$W/err")"
}
expect_extra train sharpen --data missing.zarr -o run
expect_extra prior train z.npy -o prun
echo "base install: all main commands ran"
