"""The collapse detector on synthetic histories: healthy, collapsed, recovered, worse than noise."""

from common.watch import SUSTAINED_STEPS, CollapseWatch, Stretch, collapse_stretches


def history(d_fake_of_step, steps=range(10, 1010, 10), fid=None):
    rows = [{"step": float(s), "d_fake": d_fake_of_step(s)} for s in steps]
    for row in rows:
        if fid and int(row["step"]) in fid:
            row["fid"] = fid[int(row["step"])]
    return rows


def test_healthy_history_has_no_stretch():
    rows = history(lambda s: 0.3 - 0.15 * s / 1000)
    assert collapse_stretches(rows, noise_fid=500.0) == []
    watch = CollapseWatch(500.0)
    assert [line for row in rows if (line := watch.update(row))] == []


def test_collapse_is_found_when_sustained_and_not_before():
    rows = history(lambda s: 0.004 if 300 <= s <= 700 else 0.3)
    assert collapse_stretches(rows) == [Stretch(300, 700, "D(G(z)) <= 0.02")]
    watch = CollapseWatch()
    lines = [(int(row["step"]), line) for row in rows if (line := watch.update(row))]
    assert len(lines) == 1 and lines[0][0] == 300 + SUSTAINED_STEPS  # said once, when it is sustained
    assert "collapse since step 300" in lines[0][1]


def test_a_short_dip_and_a_recovery():
    short = history(lambda s: 0.01 if 300 <= s < 300 + SUSTAINED_STEPS else 0.3)
    assert collapse_stretches(short) == []
    recovered = history(lambda s: 0.99 if 100 <= s <= 400 else (0.005 if 600 <= s <= 900 else 0.3))
    assert collapse_stretches(recovered) == [
        Stretch(100, 400, "D(G(z)) >= 0.98"),
        Stretch(600, 900, "D(G(z)) <= 0.02"),
    ]
    watch = CollapseWatch()
    assert len([row for row in recovered if watch.update(row)]) == 2  # one line per stretch


def test_an_evaluation_worse_than_noise_is_a_collapse_at_once():
    rows = history(lambda s: 0.3, fid={500: 620.0, 600: 40.0})
    assert collapse_stretches(rows, noise_fid=505.0) == [Stretch(500, 500, "FID above the noise ceiling")]
    watch = CollapseWatch(505.0)
    lines, flags = [], []
    for row in rows:
        if line := watch.update(row):
            lines.append(line)
        flags.append(watch.active())
    assert lines == ["collapse at step 500: FID 620.0 is above the noise ceiling 505.0"]
    assert [int(row["step"]) for row, flag in zip(rows, flags, strict=True) if flag] == [500]
