"""The data time in the training log: seconds per step spent waiting for the batch, next to the step time."""

import json
import time

from engine_utils import tiny_options

from gan_retouch.engine import loop as loop_module
from gan_retouch.engine.monitor import TimedBatches
from gan_retouch.train import build_training

WAIT = 0.05  # seconds the slowed-down loader takes per batch


def test_log_summary_and_metrics_report_the_data_time(tmp_path, monkeypatch, capsys) -> None:
    real_stream = loop_module.batch_stream

    def slow_stream(*args, **kwargs):
        def slow(batches):
            for batch in batches:
                time.sleep(WAIT)
                yield batch

        return TimedBatches(slow(real_stream(*args, **kwargs)))

    monkeypatch.setattr(loop_module, "batch_stream", slow_stream)
    trainer = build_training(tiny_options(tmp_path, "train.steps=4", "train.log_every=2"))
    trainer.fit()
    records = [json.loads(line) for line in (trainer.run_dir / "log.jsonl").read_text().splitlines()]
    timed = [record for record in records if "data_time" in record]
    assert [record["step"] for record in timed] == [2, 4]
    for record in timed:
        assert WAIT <= record["data_time"] < record["sec_per_step"]  # waited, and the step did more than wait
    metrics = json.loads((trainer.run_dir / "metrics.json").read_text())
    assert WAIT <= metrics["data_time"] < metrics["sec_per_step"]
    summary = " ".join(capsys.readouterr().out.split())
    assert f"done: 4 steps ({metrics['sec_per_step']:.3f} s/step, of which {metrics['data_time']:.3f} s waiting for " \
           f"data)" in summary
