"""Finding the stock chart (--chart, $Z2JH_CHART, beside the source tree) and fetching one."""

from __future__ import annotations

import shutil

import pytest

from jupyterhub_platform.chart.locate import (
    CHART_VERSION,
    ChartNotFound,
    chart_version,
    check_chart_dir,
    fetch_chart,
    find_chart,
)
from jupyterhub_platform.devcluster import cli as dev_cli

FETCH = "helm pull jupyterhub --repo https://hub.jupyter.org/helm-chart/ --version 4.4.0 --untar -d"


def test_explicit_then_environment_then_the_source_tree(z2jh_chart, tmp_path):
    copy = tmp_path / "jupyterhub"
    shutil.copytree(z2jh_chart, copy)
    assert find_chart(copy, env={}) == copy
    assert find_chart(None, env={"Z2JH_CHART": str(copy)}) == copy
    assert find_chart(None, env={}) == z2jh_chart  # ../shared/z2jh/chart in this checkout
    assert chart_version(copy) == CHART_VERSION


def test_not_a_chart_says_how_to_fetch_one(z2jh_chart, tmp_path):
    with pytest.raises(ChartNotFound, match=f"is not a chart directory.*{FETCH} DIR"):
        find_chart(tmp_path, env={})
    (tmp_path / "Chart.yaml").write_text("name: other\nversion: 1.0.0\n")
    with pytest.raises(ChartNotFound, match="name is 'other', not the z2jh chart 'jupyterhub'"):
        check_chart_dir(tmp_path)
    broken = tmp_path / "jupyterhub"
    shutil.copytree(z2jh_chart, broken)
    (broken / "files" / "hub" / "z2jh.py").chmod(0o644)
    (broken / "files" / "hub" / "z2jh.py").unlink()
    with pytest.raises(ChartNotFound, match="files/hub/z2jh.py is missing"):
        check_chart_dir(broken)


@pytest.mark.processes
def test_fetch_chart_gets_the_release_or_says_what_to_do(helm, tmp_path):
    """This machine may not reach hub.jupyter.org; either outcome must be usable."""
    try:
        chart = fetch_chart(helm, tmp_path)
    except ChartNotFound as exc:
        assert "failed" in str(exc) and "may not reach https://hub.jupyter.org/helm-chart/" in str(
            exc
        )
        assert "--chart DIR or set $Z2JH_CHART" in str(exc)
        assert not (tmp_path / "jupyterhub").exists()
    else:
        assert chart == tmp_path / "jupyterhub" and chart_version(chart) == CHART_VERSION


def test_dev_with_a_wrong_chart_is_one_clear_message(tmp_path, capsys):
    code = dev_cli.main(["--state-dir", str(tmp_path / "state"), "--chart", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("jupyterhub-platform dev: ") and FETCH in err
    assert "Traceback" not in err
    assert not (tmp_path / "state" / "hub").exists()  # nothing was started or laid out
