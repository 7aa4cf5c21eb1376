"""IMDB workload on tiny generated reviews: data pipe, model, trial, checkpoints, CLI and bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from data_pipes import imdb as imdb_data
from data_pipes.common import DataSourceError
from experiments import imdb as imdb_cli
from experiments.core.errors import CheckpointError, ConfigError
from experiments.core.training import cpu_computes_bf16
from experiments.tasks.imdb.config import IMDB_PRESETS, ExperimentConfig, resolve_imdb_config
from experiments.tasks.imdb.trial import build_model, evaluate_split, load_checkpoint, train_imdb

FAST = dict(batch_size=16, embed_dim=32, hidden_dim=32, num_layers=1, dropout=0.0, pooling="maxmean",
            optimizer="AdamW", optimizer_params={"lr": 5e-3}, lr_schedule="onecycle", epochs=3)


def test_load_splits_and_cache(imdb_dir):
    data = imdb_data.load(str(imdb_dir))
    assert (len(data.train), len(data.val), len(data.test)) == (360, 40, 200)
    assert data.val.labels.mean() == pytest.approx(0.5)  # stratified
    assert data.train.ids.dtype == np.uint16 and data.train.ids.shape[1] == imdb_data.STORED_LEN
    started = time.perf_counter()
    again = imdb_data.load(str(imdb_dir))
    assert time.perf_counter() - started < 2.0
    np.testing.assert_array_equal(again.train.ids, data.train.ids)
    assert len(imdb_data.load(str(imdb_dir), subset=100).train) == 100


def test_tokenizer_round_trip_and_br_removed(imdb_dir):
    data = imdb_data.load(str(imdb_dir))
    tokenizer = imdb_data.load_tokenizer(data.tokenizer_json)
    assert imdb_data.load_tokenizer(tokenizer.to_str()).encode("Great movie").ids == tokenizer.encode("great MOVIE").ids
    assert "br" not in tokenizer.get_vocab() and "<" not in tokenizer.get_vocab()
    ids, lengths = imdb_data.texts_to_batch(data.tokenizer_json, ["wonderful film", "the plot was awful and dull"])
    assert lengths.tolist() == [2, 6] and ids.shape == (2, 6)


def test_long_reviews_keep_head_and_tail(imdb_dir):
    data = imdb_data.load(str(imdb_dir))
    tokenizer = imdb_data.load_tokenizer(data.tokenizer_json)
    text = "great " + "movie " * 2000 + "awful"
    ids, lengths = imdb_data.encode(tokenizer, [text], imdb_data.MAX_LEN)
    vocab = tokenizer.get_vocab()
    assert lengths[0] == imdb_data.MAX_LEN
    assert ids[0, 0] == vocab["great"] and ids[0, imdb_data.MAX_LEN - 1] == vocab["awful"]


def test_a_shorter_reading_cut_from_the_stored_ids_equals_encoding_at_that_length():
    rng = np.random.default_rng(0)
    texts = [" ".join(f"w{i}" for i in rng.integers(0, 50, n)) for n in (3, 399, 400, 401, 700, 1500, 3000)]
    tokenizer = imdb_data.build_tokenizer(texts)
    labels = np.zeros(len(texts), dtype=np.int8)
    stored = imdb_data.TokenizedSplit(*imdb_data.encode(tokenizer, texts), labels)
    for max_len in (1, 5, 400, 799, 800, imdb_data.STORED_LEN):
        shorter = imdb_data.cut(stored, max_len)
        ids, lengths = imdb_data.encode(tokenizer, texts, max_len)
        np.testing.assert_array_equal(shorter.ids, ids)
        np.testing.assert_array_equal(shorter.lengths, lengths)


def test_a_config_reads_its_max_len_and_older_configs_read_400(tmp_path):
    """The verdict sits in the middle of each review: read whole it is learnt, cut to 8 tokens (2 of the head,
    6 of the tail) it is gone, and the model can only guess; evaluation reads as the checkpoint's config says."""
    from experiments.core.reporters import LocalReporter
    from experiments.tasks.imdb.task import evaluate_checkpoint

    assert ExperimentConfig.from_dict({}).max_len == 400  # an experiment_config.json written before the field
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 600).astype(np.int8)
    texts = [" ".join(["filler"] * 10 + [("bad", "good")[y]] + ["filler"] * 10) for y in labels]
    tokenizer = imdb_data.build_tokenizer(texts)
    split = imdb_data.TokenizedSplit(*imdb_data.encode(tokenizer, texts), labels)
    data = imdb_data.ImdbData(split.take(np.arange(400)), split.take(np.arange(400, 500)),
                              split.take(np.arange(500, 600)), tokenizer.to_str(), "middle")
    scores = {}
    for max_len in (8, 400):
        config = ExperimentConfig(config_name=f"read{max_len}", **{**FAST, "epochs": 2}, max_len=max_len)
        scores[max_len] = train_imdb(config, data, LocalReporter(tmp_path / str(max_len)))["best_val_accuracy"]
        tested = evaluate_checkpoint(tmp_path / str(max_len) / "best", data, torch.device("cpu"))
        model, _, _ = load_checkpoint(tmp_path / str(max_len) / "best")
        assert tested["accuracy"] == evaluate_split(model, imdb_data.cut(data.test, max_len),
                                                    torch.device("cpu"))["accuracy"]
    assert scores[400] > 0.95 and scores[8] < 0.75, scores


def test_buckets_cover_every_example_once():
    lengths = np.random.default_rng(0).integers(1, 400, size=1000)
    batches = imdb_data.length_bucketed_batches(lengths, 32, shuffle=True, rng=np.random.default_rng(1), chunk=50)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    assert spread < 0.1 * (lengths.max() - lengths.min())  # sorted within chunks: little padding


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "max", "mean", "maxmean"])
def test_padding_does_not_change_outputs(bidirectional, pooling):
    torch.manual_seed(0)
    model = build_model(ExperimentConfig(num_layers=2, is_bidirectional=bidirectional, pooling=pooling,
                                         embed_dim=8, hidden_dim=8), vocab_size=50).eval()
    lengths = torch.tensor([5, 3, 7])
    ids = torch.randint(2, 50, (3, 7))
    ids[ids.new_ones(ids.shape).cumsum(1) > lengths.unsqueeze(1)] = 0
    padded = torch.cat([ids, torch.zeros(3, 9, dtype=torch.long)], dim=1)
    torch.testing.assert_close(model(ids, lengths), model(padded, lengths), rtol=0, atol=1e-6)


def test_hand_written_gru_option_matches_nn_gru():
    torch.manual_seed(0)
    config = ExperimentConfig(num_layers=2, is_bidirectional=True, embed_dim=6, hidden_dim=5, pooling="maxmean")
    fast = build_model(config, vocab_size=30).eval()
    hand = build_model(ExperimentConfig(**{**config.to_dict(), "use_hand_gru": True}), vocab_size=30).eval()
    hand.load_state_dict(fast.state_dict())
    ids, lengths = torch.randint(2, 30, (4, 9)), torch.tensor([9, 4, 1, 6])
    torch.testing.assert_close(hand(ids, lengths), fast(ids, lengths), rtol=1e-5, atol=1e-6)


def test_word_dropout_drops_whole_tokens_in_training_only():
    torch.manual_seed(0)
    model = build_model(ExperimentConfig(num_layers=1, embed_dim=16, hidden_dim=4, dropout=0.0, embed_dropout=0.5),
                        vocab_size=50)
    embedded = model.embedding(torch.randint(2, 50, (8, 100)))
    dropped = model.train().drop_words(embedded)
    zero_tokens = (dropped == 0).all(-1)
    assert 0.4 < zero_tokens.float().mean().item() < 0.6  # about half of the tokens, each as a whole vector
    torch.testing.assert_close(dropped[~zero_tokens], embedded[~zero_tokens] * 2)  # the rest scaled by 1/(1-p)
    assert torch.equal(model.eval().drop_words(embedded), embedded)


def test_trial_learns_a_separable_task_and_checkpoint_round_trips(imdb_dir, tmp_path):
    from experiments.core.reporters import LocalReporter

    data = imdb_data.load(str(imdb_dir))
    reporter = LocalReporter(tmp_path / "run")
    summary = train_imdb(ExperimentConfig(config_name="tiny", **FAST), data, reporter)
    assert summary["best_val_accuracy"] > 0.9
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3]
    model, config, tokenizer_json = load_checkpoint(tmp_path / "run" / "best")
    assert config.config_name == "tiny" and tokenizer_json == data.tokenizer_json
    assert evaluate_split(model, data.val, torch.device("cpu"))["accuracy"] == pytest.approx(
        summary["best_val_accuracy"]
    )
    again, _, _ = load_checkpoint(tmp_path / "run" / "best")
    ids, lengths = imdb_data.texts_to_batch(tokenizer_json, ["wonderful superb film", "dull and awful plot"])
    torch.testing.assert_close(model(torch.from_numpy(ids), torch.from_numpy(lengths)),
                               again(torch.from_numpy(ids), torch.from_numpy(lengths)))


def test_bf16_training_on_the_cpu_learns_and_says_so(imdb_dir):
    """`precision="bf16"`: the training steps run under bf16 autocast on the CPU (validation stays fp32), and the
    run records it; "auto" records what this CPU trains under; a precision the trainer does not know is refused
    naming the field."""
    data = imdb_data.load(str(imdb_dir))
    summary = train_imdb(ExperimentConfig(config_name="tiny_bf16", precision="bf16", **FAST), data)
    assert summary["best_val_accuracy"] > 0.9 and summary["fixed"]["precision"] == "bf16 autocast"
    assert train_imdb(ExperimentConfig(config_name="tiny", **{**FAST, "epochs": 1}), data)["fixed"]["precision"] \
        == "fp32"
    auto = train_imdb(ExperimentConfig(config_name="tiny_auto", precision="auto", **{**FAST, "epochs": 1}), data)
    assert auto["fixed"]["precision"] == ("bf16 autocast" if cpu_computes_bf16() else "fp32")
    with pytest.raises(ConfigError, match="precision"):
        ExperimentConfig(precision="fp16")


def test_config_json_round_trip_and_flat_dicts(tmp_path):
    config = IMDB_PRESETS["bigru1_maxmean"]
    config.to_json(tmp_path / "c.json")
    assert ExperimentConfig.from_json(tmp_path / "c.json") == config
    flat = ExperimentConfig.from_dict({"lr": 3e-3, "weight_decay": 0.05, "optimizer": "AdamW", "num_layers": 1})
    assert flat.optimizer_params == {"lr": 3e-3, "weight_decay": 0.05}
    assert resolve_imdb_config(str(tmp_path / "c.json")) == config
    assert len(IMDB_PRESETS) >= 5
    seed = IMDB_PRESETS["seed_default"]
    assert (seed.seed, seed.batch_size, seed.embed_dim, seed.hidden_dim, seed.num_layers, seed.is_bidirectional,
            seed.dropout, seed.optimizer, seed.lr, seed.epochs) == (1, 32, 128, 128, 2, False, 0.2, "Adam", 1e-3, 10)


@pytest.mark.parametrize(
    ("values", "message"),
    [({"dropout": -0.1}, "dropout"), ({"embed_dropout": 1.0}, "embed_dropout"),
     ({"max_len": 0}, "max_len"), ({"max_len": imdb_data.STORED_LEN + 1}, "max_len"),
     ({"num_layers": 0}, "num_layers"), ({"pooling": "sum"}, "pooling"),
     ({"batch_size": 0}, "batch_size"), ({"bogus": 1}, "unknown config field")],
)
def test_invalid_config_values(values, message):
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig.from_dict(values)


def test_unknown_preset_and_missing_data_dir(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve_imdb_config("no_such_preset")
    with pytest.raises(DataSourceError, match="data dir not found"):
        imdb_data.load(str(tmp_path / "missing"))


def test_empty_split_is_refused(tmp_path):
    folder = tmp_path / "plain_text"
    folder.mkdir()
    pd.DataFrame({"text": ["fine"], "label": [1]}).to_parquet(folder / "train-00000-of-00001.parquet")
    pd.DataFrame({"text": pd.Series([], dtype=str), "label": pd.Series([], dtype=int)}).to_parquet(
        folder / "test-00000-of-00001.parquet"
    )
    with pytest.raises(DataSourceError, match="'test' split .* is empty"):
        imdb_data.load(str(tmp_path))


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    (tmp_path / "experiment_config.json").write_text(json.dumps(ExperimentConfig().to_dict()))
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(CheckpointError, match="cannot load checkpoint"):
        load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(tmp_path / "nothing")


def test_cli_trains_and_evaluates_on_test(imdb_dir, tmp_path, capsys):
    config = tmp_path / "tiny.json"
    ExperimentConfig(config_name="tiny_cli", **{**FAST, "epochs": 2}).to_json(config)
    argv = ["--config", str(config), "--data-dir", str(imdb_dir), "--output-dir", str(tmp_path), "--epochs", "1"]
    assert imdb_cli.main(argv) == 0
    record = json.loads((tmp_path / "tiny_cli" / "run.json").read_text())
    assert record["epochs_run"] == 1
    assert imdb_cli.main([*argv, "--name", "renamed", "--seed", "5"]) == 0
    record = json.loads((tmp_path / "renamed" / "run.json").read_text())
    assert record["config"]["seed"] == 5 and record["config"]["config_name"] == "renamed"
    assert 0.0 <= record["test_accuracy"] <= 1.0
    assert "test_accuracy=" in capsys.readouterr().out


def one_epoch_run(imdb_dir: Path, tmp_path: Path, name: str) -> dict:
    """A tiny model trained through the CLI, as a user makes one: its run.json record."""
    config = tmp_path / f"{name}.json"
    ExperimentConfig(config_name=name, **{**FAST, "epochs": 1}).to_json(config)
    assert imdb_cli.main(["--config", str(config), "--data-dir", str(imdb_dir), "--output-dir", str(tmp_path)]) == 0
    return json.loads((tmp_path / name / "run.json").read_text())


def test_val_leak_benchmark_rebuilds_the_validation_split_runs_train_on(imdb_dir, tmp_path, capsys):
    """Its validation accuracy is the run's own: the same reviews, so its split of them is a split of the real one."""
    from experiments.benchmarks import imdb_val_leak

    record = one_epoch_run(imdb_dir, tmp_path, "tiny_leak")
    capsys.readouterr()
    argv = [record["checkpoint"], "--data-dir", str(imdb_dir), "--test-sample", "50"]
    assert imdb_val_leak.main(argv) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert float(rows["best"][1]) == pytest.approx(record["val_accuracy"], abs=1e-4)
    with pytest.raises(CheckpointError, match="not_a_model"):  # refused before any data is loaded
        imdb_val_leak.main([str(tmp_path / "not_a_model"), *argv])


def test_reading_length_benchmark_scores_an_export_as_evaluate_does(imdb_dir, tmp_path, capsys):
    from experiments.benchmarks import imdb_reading_length

    record = one_epoch_run(imdb_dir, tmp_path, "tiny_read")
    capsys.readouterr()
    argv = [record["checkpoint"], "--data-dir", str(imdb_dir), "--max-len", "10", "400", "--long", "10"]
    assert imdb_reading_length.main([*argv, "--record", str(tmp_path / "reading.json")]) == 0
    rows = {int(line.split()[2]): line.split()[3:] for line in capsys.readouterr().out.splitlines()
            if line.startswith("best ")}
    assert float(rows[400][0]) == pytest.approx(record["val_accuracy"], abs=1e-4)  # validation by default
    written = json.loads((tmp_path / "reading.json").read_text())
    assert written["split"] == "val" and written["exports"]["best"]["accuracy"]["400"]["all"] == pytest.approx(
        record["val_accuracy"])
    assert imdb_reading_length.main([*argv, "--split", "test"]) == 0
    rows = {int(line.split()[2]): line.split()[3:] for line in capsys.readouterr().out.splitlines()
            if line.startswith("best ")}
    assert float(rows[400][0]) == pytest.approx(record["test_accuracy"], abs=1e-4)  # read as trained: evaluate's
    assert rows[10][1] != rows[400][1] and rows[10][2] == rows[400][2]  # only the long reviews are read differently
    with pytest.raises(SystemExit) as exit_info:
        imdb_reading_length.main([record["checkpoint"], "--max-len", str(imdb_data.STORED_LEN + 1)])
    assert exit_info.value.code == 2


def test_cli_bad_input_exits_2_without_traceback(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "experiments.imdb", "--config", "nope"], capture_output=True,
                          text=True)
    assert done.returncode == 2 and "unknown preset" in done.stderr and "Traceback" not in done.stderr


def test_the_report_explains_a_best_model_that_validation_overrates():
    from experiments.reporting.candidates import Candidate
    from experiments.tasks.imdb.task import comparison

    def candidate(name: str, val: float, test: float) -> Candidate:
        return Candidate("imdb", "gru", name, "one-config run", {"num_layers": 1, "is_bidirectional": True}, val,
                         test, 4, 60.0, 1000, 100.0, [], Path(name))

    overrated = comparison([candidate("lucky", 0.9092, 0.8833), candidate("steady", 0.8996, 0.8988)])
    assert any("`lucky` scores 2.6 points higher on validation than on test" in line and
               "imdb_val_leak model_checkpoints/assignment2-1-2/lucky" in line for line in overrated)
    assert not any("higher on validation" in line for line in comparison([candidate("steady", 0.8996, 0.8988)]))


def test_the_report_reads_a_setting_only_from_runs_that_differ_in_it_alone():
    """Presets that change depth and direction together say nothing about either (the old report averaged them);
    two runs alike in all else do, with the gap's standard error, and throughput only when measured alike."""
    from experiments.reporting.candidates import Candidate
    from experiments.tasks.imdb.task import comparison

    base = {"num_layers": 1, "is_bidirectional": True, "hidden_dim": 128, "dropout": 0.2, "epochs": 4}

    def candidate(name: str, test: float, throughput: float, threads: int = 2, **changes) -> Candidate:
        config = {**base, **changes, "config_name": name, "seed": len(name)}  # name and seed are not settings
        return Candidate("imdb", "gru", name, "one-config run", config, test, test, 4, 60.0, 1000, throughput, [],
                         Path(name), machine={"cpu": "Xeon", "torch_threads": threads})

    confounded = comparison([candidate("bi1", 0.899, 80), candidate("uni2", 0.890, 100, num_layers=2,
                                                                    is_bidirectional=False)])
    direction = next(line for line in confounded if line.startswith("Direction"))
    assert "no two one-config runs differ in it alone" in direction and "changes together with num_layers" in direction
    assert "--vary is_bidirectional=" in direction and not any("averaged" in line for line in confounded)
    assert not any(line.startswith("Dropout") for line in confounded)  # both runs share it: nothing to say

    # se(0.899) and se(0.890) on 25,000 reviews: 0.19 and 0.20 points, the gap's 0.27
    dropout = next(line for line in comparison([candidate("d2", 0.8990, 80), candidate("d4", 0.8900, 100,
                                                                                        dropout=0.4)])
                   if line.startswith("Dropout"))
    assert "`d2` (dropout 0.2) against `d4` (0.4), alike in every other setting: test +0.90 ± 0.27 points" in dropout
    assert "`d2` better; `d2` trained 0.80× as fast (same machine and threads)." in dropout
    close = next(line for line in comparison([candidate("d2", 0.8990, 80), candidate("d4", 0.8960, 100, threads=1,
                                                                                     dropout=0.4)])
                 if line.startswith("Dropout"))
    assert close.endswith("+0.30 ± 0.27 points — no measurable difference.")  # 1 vs 2 threads: no speed ratio


def test_validation_holds_out_whole_blocks_of_adjacent_reviews():
    """A movie's reviews sit in adjacent rows: validation takes whole blocks of them, 10 % of each class."""
    from data_pipes.common import stratified_split

    labels = np.repeat([0, 1], 12_500)
    train, val = imdb_data.validation_split(labels)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(25_000))
    assert np.bincount(labels[val]).tolist() == [1200, 1200]
    blocks = set((val // imdb_data.VAL_BLOCK).tolist())  # 12,500 rows per class: blocks never straddle classes
    assert len(blocks) == 24 and set(val.tolist()) == {i for b in blocks for i in range(b * 100, b * 100 + 100)}
    for a, b in zip(imdb_data.validation_split(labels, "random"), stratified_split(labels, 0.1, 0), strict=True):
        np.testing.assert_array_equal(a, b)  # the split runs before the blocks used, rebuilt exactly
    tiny_train, tiny_val = imdb_data.validation_split(np.repeat([0, 1], 30))  # tiny data still splits
    assert len(tiny_val) == 6 and len(tiny_train) == 54
    with pytest.raises(DataSourceError, match="unknown IMDB validation protocol"):
        imdb_data.validation_split(labels, "by movie id")


def test_a_model_with_another_tokenizer_is_tested_with_its_own(imdb_dir, tmp_path):
    """A model trained before the validation split changed has its own tokenizer: evaluation encodes the test
    reviews again with it instead of using the data's token ids."""
    from dataclasses import replace

    from experiments.tasks.imdb.task import evaluate_checkpoint
    from experiments.tasks.imdb.trial import save_checkpoint

    data = imdb_data.load(str(imdb_dir))
    config = ExperimentConfig(config_name="own_tokenizer", **FAST)
    torch.manual_seed(0)
    save_checkpoint(build_model(config, data.vocab_size), config, data.tokenizer_json, tmp_path)
    expected = evaluate_checkpoint(tmp_path, data, torch.device("cpu"))
    other = imdb_data.build_tokenizer(["an unrelated vocabulary of other words"] * 3).to_str()
    scrambled = imdb_data.TokenizedSplit(np.zeros_like(data.test.ids), np.ones_like(data.test.lengths),
                                         1 - data.test.labels)
    result = evaluate_checkpoint(tmp_path, replace(data, tokenizer_json=other, test=scrambled), torch.device("cpu"))
    assert result["accuracy"] == pytest.approx(expected["accuracy"]) and result["loss"] == pytest.approx(
        expected["loss"])


def test_class_probabilities_agree_with_evaluation_and_an_ensemble_evaluates(imdb_dir, tmp_path, capsys):
    """What an ensemble averages (experiments/reporting/ensemble.py): [P(neg), P(pos)] whose argmax is evaluation's
    verdict; validation only under the data's own tokenizer; two runs' ensemble evaluated by `experiments.evaluate`."""
    from dataclasses import replace

    from experiments import evaluate
    from experiments.core.errors import CheckpointError
    from experiments.reporting import ensemble
    from experiments.tasks.imdb.task import TASK

    data = imdb_data.load(str(imdb_dir))
    records = [one_epoch_run(imdb_dir, tmp_path, name) for name in ("tiny_a", "tiny_b")]
    folders = [Path(r["checkpoint"]) for r in records]
    for record, folder in zip(records, folders, strict=True):
        val, val_labels = TASK.split_probabilities(folder, data, "val", torch.device("cpu"))
        test, test_labels = TASK.split_probabilities(folder, data, "test", torch.device("cpu"))
        assert ensemble.scores(val, val_labels)["accuracy"] == pytest.approx(record["val_accuracy"])
        assert ensemble.scores(test, test_labels)["accuracy"] == pytest.approx(record["test_accuracy"])
        assert TASK.predict(folder, ["wonderful superb film"])[0][1] == pytest.approx(
            TASK.input_probabilities(folder, ["wonderful superb film"])[0].max())
    other = imdb_data.build_tokenizer(["an unrelated vocabulary of other words"] * 3).to_str()
    with pytest.raises(CheckpointError, match="another validation split"):
        TASK.split_probabilities(folders[0], replace(data, tokenizer_json=other), "val", torch.device("cpu"))

    ensemble.write_members(folders, tmp_path / "both", skip=set())
    averaged = np.mean([TASK.split_probabilities(f, data, "test", torch.device("cpu"))[0] for f in folders], axis=0)
    capsys.readouterr()
    assert evaluate.main([str(tmp_path / "both"), "--data-dir", str(imdb_dir)]) == 0
    out = capsys.readouterr().out
    assert f"test_accuracy={ensemble.scores(averaged, data.test.labels)['accuracy']:.4f}" in out
    params = sum(p.numel() for p in build_model(ExperimentConfig(**{**FAST, "epochs": 1}), data.vocab_size)
                 .parameters())
    assert f"params={2 * params:,}" in out
