"""The report shows validation twins, intervals, bars as measured, and "within noise" by the one rule."""

from __future__ import annotations

from cnnrnn.reporting import metric_tables, validation_twin


def test_validation_twins_by_name():
    metrics = {"test_accuracy": 1, "val_accuracy": 1, "rnn_test_accuracy": 1, "rnn_val_accuracy": 1, "map": 1,
               "val_map": 1, "ngram_top3_accuracy": 1, "ngram_val_top3_accuracy": 1, "mean_iou": 1}
    models = ["rnn", "ngram"]
    assert validation_twin("test_accuracy", metrics, models) == "val_accuracy"
    assert validation_twin("rnn_test_accuracy", metrics, models) == "rnn_val_accuracy"
    assert validation_twin("map", metrics, models) == "val_map"
    assert validation_twin("ngram_top3_accuracy", metrics, models) == "ngram_val_top3_accuracy"
    assert validation_twin("mean_iou", metrics, models) is None


def test_tables_show_intervals_verdicts_and_missed_bars():
    metrics = {
        "val_accuracy": 0.81, "test_accuracy": 0.79, "test_accuracy_ci95_low": 0.77, "test_accuracy_ci95_high": 0.81,
        "top3_accuracy": 0.3194, "top3_accuracy_ci95_low": 0.31, "top3_accuracy_ci95_high": 0.33,
        "rnn_vs_bow_test_accuracy_difference": 0.0025, "rnn_vs_bow_test_accuracy_difference_ci95_low": -0.01,
        "rnn_vs_bow_test_accuracy_difference_ci95_high": 0.015, "rnn_vs_bow_test_accuracy_mcnemar_p": 0.6,
        "rnn_vs_window_test_accuracy_difference": 0.25, "rnn_vs_window_test_accuracy_difference_ci95_low": 0.22,
        "rnn_vs_window_test_accuracy_difference_ci95_high": 0.28,
        "word_vs_ngram_perplexity_difference": -52.0, "word_vs_ngram_perplexity_difference_ci95_low": -55.0,
        "word_vs_ngram_perplexity_difference_ci95_high": -49.0, "word_vs_ngram_top3_accuracy_mcnemar_p": 0.0,
        "word_vs_ngram_top3_accuracy_difference": 0.03, "word_vs_ngram_top3_accuracy_difference_ci95_low": 0.02,
        "word_vs_ngram_top3_accuracy_difference_ci95_high": 0.04,
        "char_val_loss": 1.57, "char_test_loss": 1.61,
        "train_seconds": 12.0, "machine": {"cpu_model": "Some CPU"},
    }
    bars = {"test_accuracy": ">= 0.78", "top3_accuracy": ">= 0.32", "char_val_loss": "<= 1.65"}
    text = "\n".join(metric_tables(metrics, bars, {}, ["rnn", "bow", "word", "ngram", "char"]))
    assert "| test_accuracy | 0.81 | 0.79 [0.77, 0.81] | >= 0.78 | met (the 95% interval reaches across the bar) |" in text
    assert "| top3_accuracy |  | 0.3194 [0.31, 0.33] | >= 0.32 | **missed** (the 95% interval reaches across the bar) |" in text
    assert "| rnn_vs_bow_test_accuracy | 0.0025 [-0.01, 0.015] | 0.6 | within noise |" in text
    assert "| rnn_vs_window_test_accuracy | 0.25 [0.22, 0.28] |  | better |" in text
    assert "| train_seconds | 12.0 |  |" in text
    assert "machine: cpu_model Some CPU" in text
    assert "**0.0025" not in text  # nothing within noise is bold
    assert "| word_vs_ngram_perplexity | -52.0 [-55.0, -49.0] |  | better |" in text  # lower perplexity is better
    assert "| word_vs_ngram_top3_accuracy | 0.03 [0.02, 0.04] | < 1e-6 | better |" in text
    assert "| char_test_loss | 1.57 | 1.61 |" in text
    assert "| char_val_loss |  | 1.57 | <= 1.65 | met |" in text  # a bar metric keeps its row even as a twin


def test_summary_is_one_line_per_application_with_headline_baseline_and_bars():
    """`cnnrnn summary` on the committed metrics: one short line per application, not 58 columns of dashes."""
    import subprocess
    import sys
    from pathlib import Path

    from cnnrnn.registry import APPLICATIONS
    from cnnrnn.reporting import baseline_name, named_within

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "cnnrnn.cli", "summary"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:2] == ["application", "headline"] and len(lines) == 1 + len(APPLICATIONS)
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(APPLICATIONS)
    assert "test_accuracy" in rows["classify"] and "of 1" in rows["classify"]
    assert "ngram " in rows["keyboard"] and "[" in rows["keyboard"]  # the baseline, with its interval
    assert all(len(line) < 200 for line in lines)
    assert baseline_name("grain_only_style_loss_ratio", "feedforward_style_loss_ratio") == "grain_only"
    assert baseline_name("repeat_test_nll_per_frame", "test_nll_per_frame") == "repeat"
    assert named_within(["a_long_name", "b", "c"], 14) == "a_long_name, b +1"  # the rest counted, in the report
    assert named_within(["a_very_long_name", "b"], 5) == "a_very_long_name +1"


def test_dvc_plots_show_renders_every_declared_plot(tmp_path):
    """Text outputs are `outs` the report shows, never `plots:` (which DVC fails to load)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    dvc = Path(sys.executable).parent / "dvc"
    done = subprocess.run([str(dvc), "plots", "show", "-o", str(tmp_path / "plots")], cwd=root, capture_output=True,
                          text=True)
    assert done.returncode == 0 and "failed" not in (done.stdout + done.stderr).lower(), done.stdout + done.stderr
    assert (tmp_path / "plots/index.html").is_file()
