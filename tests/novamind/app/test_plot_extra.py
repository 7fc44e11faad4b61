"""matplotlib is the optional `plot` extra: without it, drawing fails with a clear usage error."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from novamind.app.cli import main
from novamind.app.demo.plot import plot_trajectory, require_matplotlib
from novamind.platform.exceptions import MissingExtra, UsageError


@pytest.fixture
def without_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError


def test_drawing_without_the_extra_names_it(without_matplotlib: None, tmp_path: Path) -> None:
    with pytest.raises(MissingExtra, match=r"novamind\[plot\]") as raised:
        plot_trajectory("p_" + "0" * 32, [], [], [], tmp_path / "twin.png")
    assert isinstance(raised.value, UsageError)  # the CLI prints it as one line, exit 2
    assert not (tmp_path / "twin.png").exists()


def test_twin_plot_without_the_extra_exits_2_before_reading_anything(
    without_matplotlib: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Nothing listens on port 9: a read or an audit event would fail with another message.
    monkeypatch.setenv("NOVAMIND_MONGO__URI", "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200")
    monkeypatch.setenv("NOVAMIND_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:9")
    code = main(["twin", "plot", "p_" + "0" * 32, "-o", str(tmp_path / "twin.png")])
    assert code == 2
    assert "pip install 'novamind[plot]'" in capsys.readouterr().err


def test_with_the_extra_nothing_is_said() -> None:
    require_matplotlib()
