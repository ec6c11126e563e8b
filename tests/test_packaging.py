"""The project as a package: pyproject.toml pins what requirements.txt pins (make installs from the
latter), and its console scripts run."""

import subprocess
import sys
import tomllib
from pathlib import Path

from harness import ROOT


def requirement_lines(path: Path) -> set[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {line for line in lines if line}


def test_pyproject_pins_the_same_packages_as_requirements_txt():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = set(project["dependencies"]).union(*project["optional-dependencies"].values())
    assert pinned == requirement_lines(ROOT / "requirements.txt")


def test_console_scripts_run():
    bin_dir = Path(sys.executable).parent
    for script in ("vae-train", "vae-eval"):
        result = subprocess.run([str(bin_dir / script), "--help"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and "usage:" in result.stdout, result.stderr
