"""`gan-retouch test` end to end on tiny checkpoints and the synthetic test split."""

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch

import gan_retouch.nets  # noqa: F401  (registers the generators)
from gan_retouch.cli import main
from gan_retouch.config import resolve
from gan_retouch.engine.checkpoint import save_checkpoint
from gan_retouch.evaluate.bands import heatmap
from gan_retouch.evaluate.test import IDENTITY, checkpoint_tag, results_tag, unused_folder
from gan_retouch.registry import GENERATORS


def printed(capsys: pytest.CaptureFixture) -> str:
    """What the command printed, with rich's line wrapping undone."""
    return " ".join(capsys.readouterr().out.split())

TINY = {"ngf": 4, "n_blocks": 1}


def make_checkpoint(path: Path, size: int = 48, count: int = 3, residual: bool = False,
                    edit_mask: bool = False) -> Path:
    """A randomly initialised tiny AutoRetouch, saved with train options whose synthetic data is small."""
    args = {**TINY, "residual": residual, "edit_mask": edit_mask}
    net = GENERATORS.build("autoretouch", **args)
    if residual or edit_mask:  # such a fresh net is (almost) the identity; nudge it so that it differs
        with torch.no_grad():
            net.tail.weight.normal_(0, 0.001 if residual else 0.3)
    options = resolve("train", overrides={"name": "tiny", "data": {"synthetic": {"size": size, "test_count": count}}})[0]
    entry = {"name": "autoretouch", "args": args, "state_dict": net.state_dict()}
    return save_checkpoint({"kind": "train", "options": options, "generator": entry, "step": 7}, path)


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.rows = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [v for k, v in attrs if k in ("src", "href") and v]
        self.rows += tag == "tr" and "image-row" in (dict(attrs).get("class") or "")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("ckpt")
    return make_checkpoint(folder / "tiny" / "best.pt"), make_checkpoint(folder / "res" / "best.pt", residual=True)


def test_two_checkpoints_write_page_tables_and_images(tmp_path: Path, checkpoints: tuple[Path, Path]) -> None:
    first, second = checkpoints
    argv = ["test", "--checkpoint", str(first), "--checkpoint", str(second), "--device", "cpu",
            "--set", f"results_root={tmp_path}", "test.lpips=false", "test.y_channel=true"]
    assert main(argv) == 0
    folder = tmp_path / "tiny" / "test_tiny-best_vs_res-best"  # name and data from the first checkpoint
    report = json.loads((folder / "metrics.json").read_text())
    labels = [IDENTITY, "tiny-best", "res-best"]
    assert list(report["summary"]) == labels
    assert report["count"] == 3 and report["data"]["synthetic"]["size"] == 48
    assert {"psnr", "psnr_y", "ssim", "ms_ssim", "rmse", "score", "psnr_mask", "psnr_clean"} == set(
        report["summary"]["tiny-best"])
    assert "test.lpips is false" in report["notes"][0]
    # A near-identity residual net scores close to the identity; a random tanh net far below it.
    assert abs(report["summary"]["res-best"]["psnr"] - report["summary"][IDENTITY]["psnr"]) < 3
    assert report["summary"]["tiny-best"]["psnr"] < report["summary"][IDENTITY]["psnr"] - 3
    lines = (folder / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("image,model,psnr") and len(lines) == 1 + 3 * 3
    parser = Links()
    parser.feed((folder / "index.html").read_text(encoding="utf-8"))
    assert parser.rows == 3
    assert all((folder / link).is_file() for link in parser.links)
    assert len(list((folder / "images").glob("*.png"))) == 3 * (2 + 2 + 3)  # input, target, 2 outputs, 3 diffs

    assert main(argv) == 0  # a second run never touches the first
    assert (folder.parent / f"{folder.name}_2" / "index.html").is_file()
    assert json.loads((folder / "metrics.json").read_text()) == report


def test_tiled_run_matches_and_data_flag_wins(tmp_path: Path, checkpoints: tuple[Path, Path]) -> None:
    base = ["test", "--checkpoint", str(checkpoints[0]), "--device", "cpu", "--set", f"results_root={tmp_path}",
            "name=run", "test.lpips=false", "data.synthetic.size=40", "data.synthetic.test_count=1"]
    assert main(base) == 0
    assert main([*base, "--tile", "24", "--set", "inference.tile_overlap=8"]) == 0
    whole = json.loads((tmp_path / "run" / "test_tiny-best" / "metrics.json").read_text())
    tiled = json.loads((tmp_path / "run" / "test_tiny-best_2" / "metrics.json").read_text())
    assert whole["data"]["synthetic"]["size"] == 40  # the --set data options were used, not the checkpoint's
    assert tiled["summary"]["tiny-best"]["psnr"] == pytest.approx(whole["summary"]["tiny-best"]["psnr"], abs=0.5)


def test_edit_floor_replaces_every_models_floor_for_one_run(tmp_path: Path, checkpoints: tuple[Path, Path],
                                                            capsys: pytest.CaptureFixture) -> None:
    masked = make_checkpoint(tmp_path / "masked" / "best.pt", edit_mask=True)
    base = ["test", "--checkpoint", str(masked), "--device", "cpu", "--set", f"results_root={tmp_path / 'r'}",
            "test.lpips=false"]
    assert main(base) == 0 and main([*base, "--edit-floor", "0.999"]) == 0
    own = json.loads((tmp_path / "r" / "tiny" / "test_masked-best" / "metrics.json").read_text())["summary"]
    floored = json.loads((tmp_path / "r" / "tiny" / "test_masked-best_2" / "metrics.json").read_text())["summary"]
    assert own["masked-best"]["psnr_clean"] < 100.0  # its own floor (0) lets it edit clean pixels
    assert floored["masked-best (floor 0.999)"]["psnr_clean"] == 100.0  # nearly no pixel passes this floor
    for bad, message in (("1.0", "inference.edit_floor"), ("-0.1", "inference.edit_floor")):
        assert main([*base, "--edit-floor", bad, "--set", "name=bad"]) == 2
        assert message in (report := printed(capsys)) and "[0, 1)" in report
    assert main(["test", "--checkpoint", str(masked), "--checkpoint", str(checkpoints[0]), "--device", "cpu",
                 "--edit-floor", "0.3", "--set", f"results_root={tmp_path / 'r'}", "name=bad"]) == 2
    assert "inference.edit_floor needs a model with an edit map" in printed(capsys)
    assert not (tmp_path / "r" / "bad").exists()


def test_missing_checkpoint_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["test", "--device", "cpu", "--set", f"results_root={tmp_path}"]) == 2
    assert "--checkpoint" in printed(capsys)
    assert main(["test", "--checkpoint", str(tmp_path / "nope.pt"), "--device", "cpu"]) == 2
    assert "checkpoint not found" in printed(capsys)


def test_tags_folders_and_heatmap(tmp_path: Path) -> None:
    assert checkpoint_tag("checkpoints/quick/best.pt") == "quick-best"
    assert results_tag(["a", "b"]) == "a_vs_b"
    long = results_tag([f"run{i}-checkpoint-step-000100" for i in range(5)])
    assert len(long) <= 60 and "_vs_4-more-" in long
    (tmp_path / "x").mkdir()
    (tmp_path / "x_2").mkdir()
    assert unused_folder(tmp_path / "x") == tmp_path / "x_3"
    same = torch.rand(3, 8, 8)
    assert heatmap(same, same, 8.0).abs().max() == 0  # equal -> black
    assert torch.allclose(heatmap(torch.ones(3, 2, 2), torch.zeros(3, 2, 2), 8.0), torch.tensor(1.0).new_tensor(
        [252 / 255, 1.0, 164 / 255]).view(3, 1, 1).expand(3, 2, 2))


def write_flat_pairs(root: Path, count: int, size: int = 32) -> Path:
    """``count`` pairs in source/ + target/ without split subfolders (what a user points --data at)."""
    from gan_retouch.imaging import save_image

    for folder in ("source", "target"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    for index in range(count):
        target = torch.rand(3, size, size, generator=generator)
        save_image(target, root / "target" / f"p{index:02d}.png")
        save_image((target + 0.05).clamp(0, 1), root / "source" / f"p{index:02d}.png")
    return root


def test_data_folder_is_scored_whole_and_says_how_many(tmp_path: Path, checkpoints: tuple[Path, Path],
                                                       capsys: pytest.CaptureFixture) -> None:
    for count in (2, 7):
        data = write_flat_pairs(tmp_path / f"pairs{count}", count)
        args = ["test", "--checkpoint", str(checkpoints[0]), "--device", "cpu", "--data", str(data),
                "--set", f"results_root={tmp_path / 'res'}", f"name=flat{count}", "test.lpips=false"]
        assert main(args) == 0
        assert f"on {count} all pairs" in printed(capsys)
        facts = json.loads((tmp_path / "res" / f"flat{count}" / "all_tiny-best" / "metrics.json").read_text())
        assert facts["count"] == count and facts["split"] == "all"


def test_unwritable_results_root_is_reported_before_scoring(tmp_path: Path, checkpoints: tuple[Path, Path],
                                                            capsys: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    args = ["test", "--checkpoint", str(checkpoints[0]), "--device", "cpu", "--set", f"results_root={blocker}",
            "test.lpips=false", "data.synthetic.size=32", "data.synthetic.test_count=1"]
    assert main(args) == 2
    out = printed(capsys)
    assert "cannot create results folder" in out and "a-file" in out and "scoring" not in out
