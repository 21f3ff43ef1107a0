"""Crafted files and faults: exports that replace files, crafted and non-finite checkpoints,
torch's disk-full wording, the VGG cache, leftovers, two runs into one folder and the messages. Each case once
failed (a replaced file, gigabytes allocated, a black image, a traceback, a vague line)."""

import errno
import io
import math
import re
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

import gan_retouch.engine.checkpoint as checkpoint_module
from gan_retouch.cli import main
from gan_retouch.config import resolve
from gan_retouch.data.folders import find_pairs
from gan_retouch.engine.checkpoint import load_generator, save_checkpoint
from gan_retouch.errors import CheckpointError, ConfigError, DataError
from gan_retouch.imaging import tensor_to_pil
from gan_retouch.registry import GENERATORS


def printed(capsys: pytest.CaptureFixture) -> str:
    """What the command printed, with rich's line wrapping undone."""
    return " ".join(capsys.readouterr().out.split())


def tiny_checkpoint(path: Path, args: dict | None = None, poison: str | None = None) -> Path:
    """A tiny autoretouch checkpoint; ``args`` replaces the saved arguments (a crafted file), ``poison`` names a
    tensor set to NaN."""
    net = GENERATORS.build("autoretouch", ngf=4, n_blocks=1)
    state = net.state_dict()
    if poison:
        state[poison] = torch.full_like(state[poison], math.nan)
    entry = {"name": "autoretouch", "args": args or {"ngf": 4, "n_blocks": 1}, "state_dict": state}
    return save_checkpoint({"kind": "train", "options": resolve("train")[0], "generator": entry, "step": 0}, path)


# ------------------------------------------------------------------------------------- 1. export --out replaces
def test_export_never_replaces_its_checkpoint_nor_an_existing_file_without_overwrite(tmp_path: Path, capsys) -> None:
    checkpoint = tiny_checkpoint(tmp_path / "best.pt")
    before = checkpoint.read_bytes()
    base = ["export", "--checkpoint", str(checkpoint), "--format", "torchscript", "--set", "export.check_sizes=[[1,32,32]]"]
    for flags in ([], ["--overwrite"]):
        assert main([*base, "--out", str(checkpoint), *flags]) == 2
        assert "is the checkpoint being exported; nothing was written" in printed(capsys)
        assert checkpoint.read_bytes() == before
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    assert main([*base, "--out", str(notes)]) == 2
    assert f"export.out {notes} already exists; nothing was written" in printed(capsys)
    assert notes.read_text() == "my notes"
    assert main([*base, "--out", str(notes), "--overwrite"]) == 0 and notes.read_bytes() != b"my notes"
    assert main(base) == 0 and (tmp_path / "best.ts").is_file()  # the default name, once
    assert main(base) == 2 and "--overwrite" in printed(capsys)


# ---------------------------------------------------------------------------- 3. a crafted checkpoint's arguments
def test_a_checkpoint_whose_arguments_do_not_match_its_tensors_is_refused_before_building(tmp_path: Path,
                                                                                          monkeypatch) -> None:
    crafted = tiny_checkpoint(tmp_path / "crafted.pt", args={"ngf": 20000, "n_blocks": 1})
    deep = tiny_checkpoint(tmp_path / "deep.pt", args={"ngf": 4, "n_blocks": 10**9})  # a billion blocks
    built = []
    real_build = GENERATORS.build

    def counting_build(name, **kwargs):
        network = real_build(name, **kwargs)
        built.append(sum(p.numel() for p in network.parameters() if not p.is_meta))
        return network

    monkeypatch.setattr(GENERATORS, "build", counting_build)
    with pytest.raises(CheckpointError) as refused:
        load_generator(crafted)
    message = str(refused.value)
    assert "crafted.pt" in message and "ngf=20000" in message and "do not match its tensors" in message
    assert "\n" not in message and sum(built) == 0  # nothing was allocated for the network it asks for
    with pytest.raises(CheckpointError, match=r"deep.pt .*build more than \d+ modules"):
        load_generator(deep)
    assert sum(built) == 0


# -------------------------------------------------------------------------------------------- 4. NaN weights
def test_non_finite_weights_are_refused_on_load_naming_the_tensor(tmp_path: Path, capsys) -> None:
    poisoned = tiny_checkpoint(tmp_path / "best.pt", poison="head.0.bias")
    with pytest.raises(CheckpointError, match=r"best.pt holds non-finite weights: head.0.bias \(4 NaN"):
        load_generator(poisoned)
    tensor_to_pil(torch.rand(3, 16, 24)).save(tmp_path / "photo.png")
    assert main(["retouch", str(tmp_path / "photo.png"), "-o", str(tmp_path / "out"), "--checkpoint",
                 str(poisoned), "--device", "cpu"]) == 2
    assert "non-finite weights: head.0.bias" in printed(capsys) and not (tmp_path / "out" / "photo.png").exists()
    assert main(["export", "--checkpoint", str(poisoned), "--format", "torchscript"]) == 2
    assert "non-finite weights" in printed(capsys) and not (tmp_path / "best.ts").exists()


# ------------------------------------------------------------------------------------- 7. torch's disk-full text
class FullDisk(io.RawIOBase):
    """A stream that takes ``room`` bytes, then fails like a full disk."""

    def __init__(self, inner, room: int) -> None:
        self.inner, self.room = inner, room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.inner.write(data)


def test_torch_unexpected_pos_on_a_full_disk_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:

    real_save = checkpoint_module.torch.save
    monkeypatch.setattr(checkpoint_module.torch, "save",
                        lambda obj, stream, *a, **k: real_save(obj, FullDisk(stream, 1000), *a, **k))
    with pytest.raises(RuntimeError, match="unexpected pos"):  # what torch itself raises here
        real_save({"a": torch.zeros(1000)}, FullDisk(io.BytesIO(), 1000))
    status = main(["train", "--recipe", "quickstart", "--set", f"checkpoints_root={tmp_path}", "device=cpu",
                   "name=tiny", "data.synthetic.size=32", "data.crop=null", "data.batch_size=2", "train.steps=2",
                   "data.synthetic.val_count=2", "val.every=0", "val.samples=0", "val.lpips=false",
                   "model.generator.args={ngf: 4, n_blocks: 1}", "model.discriminator.args={ndf: 4, n_layers: 1}"])
    out = printed(capsys)
    assert status == 2 and "Traceback" not in out and "unexpected pos" not in out
    assert re.search(rf"error: cannot write {re.escape(str(tmp_path / 'tiny' / 'latest.pt'))}: no space left on the "
                     "device", out)


# ------------------------------------------------------------------------------------------- 8. the VGG cache
@pytest.fixture()
def torch_cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # conftest keeps the network off
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    return folder


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_cached_vgg_file_is_one_line_that_says_to_delete_it(torch_cache: Path, damage: str) -> None:
    from gan_retouch.losses.pretrained import load_backbone_state, weights_file

    path = weights_file("vgg19")
    buffer = io.BytesIO()
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, buffer)
    path.write_bytes(b"<html>proxy error</html>" if damage == "garbage" else buffer.getvalue()[:700])
    with pytest.raises(ConfigError) as refused:
        load_backbone_state("vgg19", "imagenet")
    message = str(refused.value)
    assert f"rm {path}" in message and "\n" not in message and "weights_only" not in message


def test_a_cached_file_whose_hash_does_not_match_its_name_is_refused(torch_cache: Path) -> None:
    from gan_retouch.losses.pretrained import fetch_weights, weights_file

    path = weights_file("alexnet")  # alexnet-owt-7be5be79.pth
    torch.save({"features.0.weight": torch.zeros(64, 3, 11, 11)}, path)  # a valid file, but not the published one
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))} is damaged or not the published one: its sha256 "
                                          rf"starts with [0-9a-f]{{8}}, its name says 7be5be79\. .*rm {re.escape(str(path))}"):
        fetch_weights("alexnet")


# --------------------------------------------------------------------------- 12. two retouch runs into one folder
def test_a_file_written_meanwhile_by_another_run_is_never_replaced(tmp_path: Path, monkeypatch, capsys) -> None:
    import gan_retouch.deploy.retouch as retouch_module

    checkpoint = tiny_checkpoint(tmp_path / "best.pt")
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a", "b"):
        tensor_to_pil(torch.rand(3, 16, 24)).save(photos / f"{name}.png")
    real_encode = retouch_module.encode_image

    def the_other_run_writes_a_first(output, info, extension, *args):
        (tmp_path / "out" / "a.png").write_bytes(b"the first run's a.png")
        return real_encode(output, info, extension, *args)

    monkeypatch.setattr(retouch_module, "encode_image", the_other_run_writes_a_first)
    status = main(["retouch", str(photos), "-o", str(tmp_path / "out"), "--checkpoint", str(checkpoint),
                   "--device", "cpu", "--set", "retouch.batch_size=1"])
    out = printed(capsys)
    assert (tmp_path / "out" / "a.png").read_bytes() == b"the first run's a.png"
    assert status == 0 and (tmp_path / "out" / "b.png").stat().st_size > 100
    assert f"{tmp_path / 'out' / 'a.png'} appeared while this run worked" in out and "1 skipped, 0 failed" in out
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp file left


# ------------------------------------------------------------------------------ 2. the split of a flat folder
def write_pairs(root: Path, names: list[str], broken: tuple[str, ...] = ()) -> None:
    """Small source/target pairs; a ``broken`` one has a target that is not an image."""
    for index, name in enumerate(names):
        for side in ("source", "target"):
            (root / side).mkdir(parents=True, exist_ok=True)
            if side == "target" and name in broken:
                (root / side / f"{name}.png").write_bytes(b"not a png")
            else:
                Image.new("RGB", (24, 20), (index * 20 % 250, 90, 60)).save(root / side / f"{name}.png")


def split_names(root: Path, split: str, **changes) -> list[str]:
    data = {"source": "folder", "root": str(root), "mask_dir": None, "split_ratio": [0.6, 0.2, 0.2], "crop": None,
            "skip_bad_pairs": False, "val_count": None, **changes}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the skip_bad_pairs note
        records, _ = find_pairs(data, split)
    return [record.name for record in records]


def test_a_pairs_split_depends_on_its_name_only(tmp_path: Path) -> None:
    names = [f"p{i}" for i in range(1, 8)]
    write_pairs(tmp_path / "clean", names)
    write_pairs(tmp_path / "flagged", names, broken=("p1", "p2", "p4", "p6"))
    clean = {split: split_names(tmp_path / "clean", split) for split in ("train", "val", "test")}
    for split in ("train", "val", "test"):  # skipping bad pairs keeps every good one where it was
        assert set(split_names(tmp_path / "flagged", split, skip_bad_pairs=True)) <= set(clean[split])
    assert not set(split_names(tmp_path / "flagged", "train", skip_bad_pairs=True)) & set(clean["test"])
    write_pairs(tmp_path / "ten", [f"p{i:02d}" for i in range(10)])
    write_pairs(tmp_path / "eleven", [f"p{i:02d}" for i in range(11)])
    for split in ("train", "val", "test"):  # one more pair moves none of the others
        assert set(split_names(tmp_path / "ten", split)) <= set(split_names(tmp_path / "eleven", split))


def test_a_tiny_set_with_an_empty_split_says_how_to_fix_it(tmp_path: Path) -> None:
    write_pairs(tmp_path, ["p3"])  # its hash puts it in val under the default ratio
    with pytest.raises(DataError) as refused:
        split_names(tmp_path, "train", split_ratio=[0.9, 0.05, 0.05])
    message = str(refused.value)
    assert "the train split of" in message and "set data.split_ratio=[1, 0, 0] to train on every pair" in message
    assert split_names(tmp_path, "train", split_ratio=[1, 0, 0]) == ["p3"]
    with pytest.raises(DataError, match=r"the test split .* raise the test fraction of data.split_ratio"):
        split_names(tmp_path, "test", split_ratio=[1, 0, 0])


# ----------------------------------------------------------------------------------- 5. resuming an --init run
TINY = ["device=cpu", "data.synthetic.size=32", "data.crop=null", "data.batch_size=2", "data.synthetic.val_count=2",
        "train.log_every=1", "val.every=0", "val.samples=0", "val.lpips=false",
        "model.generator.args={ngf: 4, n_blocks: 1, edit_mask: true}", "model.discriminator.args={ndf: 4, n_layers: 1}"]


def train(root: Path, name: str, *flags: str, items: tuple[str, ...] = ()) -> int:
    return main(["train", "--recipe", "quickstart", *flags, "--set", f"checkpoints_root={root}", f"name={name}",
                 *TINY, *items])


def test_an_init_run_resumes_from_its_folder_alone_and_keeps_its_record(tmp_path: Path, capsys) -> None:
    assert train(tmp_path, "pre", "--steps", "1") == 0
    pretrained = tmp_path / "pre" / "latest.pt"
    opened = ("model.generator.init_open_map=2",)  # as the finetune recipe sets it
    assert train(tmp_path, "ft", "--steps", "2", "--init", str(pretrained), items=opened) == 0
    moved = tmp_path / "elsewhere.pt"
    pretrained.rename(moved)
    capsys.readouterr()
    assert train(tmp_path, "ft", "--steps", "3", "--resume", items=opened) == 0  # a plain resume
    record = yaml.safe_load((tmp_path / "ft" / "options.yaml").read_text())["model"]["generator"]
    assert record["init"] == str(pretrained) and record["init_open_map"] == 2.0
    assert train(tmp_path, "ft", "--steps", "4", "--resume", "--init", str(pretrained), items=opened) == 0  # moved
    assert train(tmp_path, "ft", "--steps", "5", "--resume", "--init", str(moved), items=opened) == 0
    out = printed(capsys)
    assert f"model.generator.init='{moved}' is not used on --resume".replace(" ", "") in out.replace(" ", "")
    assert "Traceback" not in out
    assert yaml.safe_load((tmp_path / "ft" / "options.yaml").read_text())["model"]["generator"]["init"] == str(pretrained)


# ------------------------------------------------------------------------ 10. a run that fails at its first batch
def test_a_run_that_fails_at_its_first_batch_leaves_its_name_free_and_names_the_file(tmp_path: Path, capsys) -> None:
    for split in ("train", "val"):
        write_pairs(tmp_path / "pairs" / split, ["wide"])
        for side in ("source", "target"):
            Image.new("RGB", (200, 120), (90, 80, 70)).save(tmp_path / "pairs" / split / side / "wide.png")
    data = ("data.source=folder", f"data.root={tmp_path / 'pairs'}", "data.max_side=160", "data.mask_dir=null",
            "data.augment.scale=[1.0,1.0]", "data.batch_size=1")
    assert train(tmp_path, "run", "--steps", "1", items=(*data, "data.crop=128")) == 2
    out = printed(capsys).replace(" ", "")  # a long path is folded over lines
    assert f"{tmp_path / 'pairs' / 'train' / 'source' / 'wide.png'}: a 96x160 image (scaled by data.max_side=160 " \
           "from 120x200) is smaller than data.crop=128: lower data.crop, raise data.max_side to at least 214".replace(
               " ", "") in out
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [".lock"]  # no options.yaml, log or samples
    assert train(tmp_path, "run", "--steps", "1", items=(*data, "data.crop=64")) == 0  # the same name, again
