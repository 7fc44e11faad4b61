"""Which names belong to which demo run: only the exact shapes a run creates."""

from __future__ import annotations

from pathlib import Path

from novamind.app.demo.cleanup import DemoRun, describe, group_runs


def test_names_are_grouped_by_run_and_others_left_out(tmp_path: Path) -> None:
    for name in ("20261127030537", "20261126120000", "notes", "2026112703053"):
        (tmp_path / name).mkdir()
    (tmp_path / "20261101000000").write_text("a file, not a run folder")
    runs = group_runs(
        topics=[
            "demo-20261127030537.twin-updates",
            "demo-20261127030537.wearable-biometrics",
            "demo-2026112703053.twin-updates",  # 13 digits: not a run
            "twin-updates",
            "brk-20261127030537.twin-updates",
        ],
        groups=["demo-20261127030537.novamind-workers", "novamind-workers", "demo-x.novamind-workers"],
        databases=["novamind_demo_20261127030537", "novamind", "novamind_demo_20261126120000_copy"],
        folders=list(tmp_path.iterdir()),
    )
    assert sorted(runs) == ["20261126120000", "20261127030537"]
    assert runs["20261127030537"] == DemoRun(
        topics=["demo-20261127030537.twin-updates", "demo-20261127030537.wearable-biometrics"],
        groups=["demo-20261127030537.novamind-workers"],
        databases=["novamind_demo_20261127030537"],
        folders=[tmp_path / "20261127030537"],
    )
    assert runs["20261126120000"] == DemoRun(folders=[tmp_path / "20261126120000"])


def test_describe_counts_what_the_runs_hold() -> None:
    runs = {
        "20261127030537": DemoRun(topics=["a", "b"], groups=["g"], databases=["d"], folders=[Path("x")]),
        "20261126120000": DemoRun(topics=["c"]),
    }
    assert describe(runs) == "2 demo runs (3 topics, 1 consumer groups, 1 databases, 1 output folders)"
    assert describe({}) == "0 demo runs (0 topics, 0 consumer groups, 0 databases, 0 output folders)"
