"""The README's "Write your own neuron model or learning rule" example runs as written: its
YAML saved as my_snn/experiment/yaml_models.yaml, its command run from that folder."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from .test_cli import mlflow_runs, snnrun

pytestmark = pytest.mark.slow
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> tuple[str, list[str]]:
    text = README.read_text()
    section = text.split("## Write your own neuron model or learning rule", 1)[1].split("\n## ", 1)[0]
    yaml_block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    command = re.search(r"```bash\n(snnrun .*?)\n```", section, re.S).group(1)
    return yaml_block, shlex.split(command)[1:]


def test_readme_yaml_model_example_runs_as_written(tmp_path, data_dir):
    yaml_block, args = readme_example()
    assert "kind: equations" in yaml_block and args == ["--config-dir", "my_snn", "+experiment=yaml_models"]
    (tmp_path / "my_snn" / "experiment").mkdir(parents=True)
    (tmp_path / "my_snn" / "experiment" / "yaml_models.yaml").write_text(yaml_block)
    res = snnrun(args, tmp_path, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "backend  numba (the fused CPU kernel)" in res.stdout
    (run,) = mlflow_runs(tmp_path / "outputs" / "mlflow.db", "yaml_models")
    assert run.info.status == "FINISHED"
    # 2,000 training images, 1,000 test images: the network learns (chance is 10 %)
    assert run.data.metrics["test_accuracy"] > 0.5
