#!/usr/bin/env bash
# Executes quickstart.ipynb headless with the evcxr kernel and fails on the first cell error.
# Needs evcxr_jupyter (`cargo install evcxr_jupyter && evcxr_jupyter --install`) and Python's
# nbclient (`pip install nbclient`). EVCXR_TMPDIR keeps evcxr's build between runs.
#
#   examples/notebooks/check.sh [EXECUTED.ipynb]   (default: notebook-runs/executed.ipynb)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/notebook-runs/executed.ipynb}
mkdir -p "$(dirname "$out")"
export EVCXR_TMPDIR=${EVCXR_TMPDIR:-$HOME/.cache/coca/evcxr}
mkdir -p "$EVCXR_TMPDIR"
python3 - "$here/quickstart.ipynb" "$out" <<'PY'
import sys, nbformat, nbclient
src, out = sys.argv[1], sys.argv[2]
nb = nbformat.read(src, as_version=4)
client = nbclient.NotebookClient(nb, timeout=5400, kernel_name="rust",
                                 resources={"metadata": {"path": sys.argv[1].rsplit("/", 1)[0]}})
try:
    client.execute()
finally:
    nbformat.write(nb, out)
for i, cell in enumerate(nb.cells):
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            print(f"[{i}] {o['text']}", end="")
        elif o.get("output_type") in ("display_data", "execute_result"):
            print(f"[{i}] <{', '.join(o['data'])}>")
print(f"executed: {out}")
PY
