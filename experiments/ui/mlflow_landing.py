"""Does the MLflow UI open an snnrun experiment on its runs table?  (issue 17)

Runs a tiny snnrun job into a fresh store, starts ``mlflow ui`` on it, opens the experiment's
address (``/#/experiments/<id>``, what a user clicks in the experiment list) in headless
Chromium (Debian's ``chromium`` package), saves a screenshot and the rendered page text, and
says which view the UI chose:

    .venv/bin/python experiments/ui/mlflow_landing.py --out experiments/ui/landing_default.png
    .venv/bin/python experiments/ui/mlflow_landing.py --out experiments/ui/landing_training_view.png \
        --suffix "?workflowType=machine_learning"
    .venv/bin/python experiments/ui/mlflow_landing.py --out experiments/ui/run_page.png --run-page

``--run-page`` opens the address the run's end summary prints instead.  With ``--untagged``
the experiment's ``mlflow.experimentKind`` tag is removed first, to see
what MLflow does without it.  Exit status 0 when the page shows the training-runs table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def chromium(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        sys.exit("no Chromium: apt-get install chromium")
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--window-size=1500,900", "--virtual-time-budget=25000", *args],
                          capture_output=True, text=True, timeout=180)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="landing.png")
    ap.add_argument("--untagged", action="store_true")
    ap.add_argument("--suffix", default="", help="appended to /#/experiments/<id> (e.g. ?workflowType=machine_learning)")
    ap.add_argument("--run-page", action="store_true", help="open the address the run's summary prints (its run page)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="snnrun-ui-"))
    env = dict(os.environ, SNNRUN_DATA_DIR=os.environ.get("SNNRUN_DATA_DIR", str(ROOT.parent / "shared" / "data")),
               SNNRUN_CACHE_DIR=str(work / "cache"))
    job = subprocess.run([sys.executable, "-m", "snnrun.cli", "+experiment=diehl_cook_bindsnet", "data.n_train=100",
                          "data.n_test=50", "n_neurons=10", "train.progress=false"], cwd=work, env=env,
                         capture_output=True, text=True)
    if job.returncode != 0:
        sys.exit(job.stderr[-2000:])
    uri = f"sqlite:///{work}/outputs/mlflow.db"
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("diehl_cook_bindsnet")
    print(f"experiment {exp.experiment_id} tags: {exp.tags}")
    if args.untagged:
        client.delete_experiment_tag(exp.experiment_id, "mlflow.experimentKind")
    port = free_port()
    ui = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri", uri, "--port", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/#/experiments/{exp.experiment_id}{args.suffix}"
        if args.run_page:  # the summary's "then open" line, as printed
            url = next(ln.split()[-1] for ln in job.stdout.splitlines() if ln.strip().startswith("then open"))
            url = url.replace("127.0.0.1:5000", f"127.0.0.1:{port}")
        shot = chromium(f"--screenshot={Path(args.out).resolve()}", url)
        dom = chromium("--dump-dom", url).stdout
    finally:
        ui.terminate()
        ui.wait()
    print(f"opened {url}; screenshot {args.out} ({shot.returncode})")
    runs_view = "Training runs" in dom or "Run Name" in dom or "Run name" in dom or (args.run_page and "Metrics" in dom)
    genai = "Detect Issues" in dom or "Traces" in dom and "Overview" in dom and not runs_view
    print(f"page shows the runs table: {runs_view}; GenAI overview: {genai}")
    return 0 if runs_view and not genai else 1


if __name__ == "__main__":
    sys.exit(main())
