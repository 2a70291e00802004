"""The README is tested: every `snnrun ...` command it shows composes, validates and builds
(what `snnrun --cfg job <same overrides>` checks, and more), and every fenced Python block
runs as written.  The README's own-model example runs end to end in test_readme_models.py."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
TEXT = README.read_text()
# placeholders or paths that only exist on the reader's machine; the tested example of
# --config-dir lives in test_readme_models.py
SKIP = ("<", "--help", "--shell-completion", "--config-dir", "/path/to")


def _first_of_sweeps(arg: str) -> str:
    """``key=a,b,c`` (a sweep) -> ``key=a``; commas inside brackets are a list, not a sweep."""
    key, eq, value = arg.partition("=")
    if not eq or value.startswith(("[", "{")):
        return arg
    return f"{key}={value.split(',')[0]}"


def readme_commands() -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    blocks = re.findall(r"```bash\n(.*?)```", TEXT, re.S)
    lines = [ln for b in blocks for ln in b.replace("\\\n", " ").splitlines()]
    lines += re.findall(r"`((?:\.venv/bin/)?snnrun [^`]*)`", TEXT)
    for line in lines:
        m = re.search(r"(?:^|&& )(?:\.venv/bin/)?snnrun (.*)$", line.strip())
        if not m or any(s in m.group(1) for s in SKIP):
            continue
        args = shlex.split(m.group(1), comments=True)
        if args[:1] == ["export"]:  # a subcommand, not a run: tests/e2e/test_nir_cli.py runs it
            continue
        args = tuple(_first_of_sweeps(a) for a in args if a not in ("-m", "--multirun") and not a.startswith("--cfg")
                     and a not in ("job", "--resolve"))
        if args not in found:
            found.append(args)
    return found


COMMANDS = readme_commands()


def test_the_readme_shows_the_commands_users_need():
    shown = {" ".join(c) for c in COMMANDS}
    for cmd in ("+experiment=diehl_cook", "+experiment=cartpole_rstdp", "+experiment=diehl_cook n_neurons=400 "
                "data.n_train=10000 device=cuda"):
        assert cmd in shown, cmd
    assert len(COMMANDS) >= 15


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(c)[:80] for c in COMMANDS])
def test_every_readme_command_composes_validates_and_builds(args):
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from snnrun.build import build_network
    from snnrun.run.job import validate

    if any("ray_local" in a for a in args) and importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None:
        pytest.skip('the Ray launcher is an extra (pip install -e ".[ray]"), as the README says')
    GlobalHydra.instance().clear()
    with initialize_config_module("snnrun.configs", version_base="1.3"):
        cfg = compose("config", overrides=list(args), return_hydra_config=any(a.startswith("hydra") for a in args))
    from omegaconf import OmegaConf

    if "hydra" in cfg:
        assert cfg.hydra.launcher is not None
        cfg = OmegaConf.create({k: v for k, v in OmegaConf.to_container(cfg).items() if k != "hydra"})
    typed, _ = validate(cfg)
    if typed.train.kind in ("unsupervised", "readout", "rl"):
        build_network(typed.network, dt_ms=typed.dt_ms, seed=0)


PY_BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, re.S)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(PY_BLOCKS)))
def test_every_readme_python_block_runs(tmp_path, data_dir, index):
    script = tmp_path / "example.py"
    script.write_text(PY_BLOCKS[index])
    env = dict(os.environ, SNNRUN_DATA_DIR=str(data_dir), SNNRUN_CACHE_DIR=str(tmp_path / "cache"))
    res = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"README python block {index}:\n{PY_BLOCKS[index]}\n{res.stderr[-3000:]}"
