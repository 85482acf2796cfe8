"""The CLI remembers what a model expects: the scaling and range of its training inputs in the model file, applied
or warned about by `descend predict`; `descend generate` finds the run a text model was trained into; and the
default `descend train --data digits` run gives a good model."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import descend as dc
from descend.cli import main
from descend.errors import ModelFileError, ShapeError
from descend.io import read_preprocessing, write_file
from descend.nn.module import module_spec
from descend.preprocessing import Preprocessing


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """The run folder of `descend train --data digits` with every default."""
    run = tmp_path_factory.mktemp("digits") / "run"
    result = CliRunner().invoke(main, ["train", "--data", "digits", "--out", str(run), "--quiet"])
    assert result.exit_code == 0, result.output
    return run


def test_the_default_digits_run_reaches_90_percent_and_records_its_scaling(digits_run):
    assert json.loads((digits_run / "run.json").read_text())["options"]["batch_size"] is None  # the default ran
    assert json.loads((digits_run / "test.json").read_text())["test_accuracy"] >= 0.9
    assert read_preprocessing(digits_run / "model.dsc") == Preprocessing(
        source="digits", input_shape=(64,), low=0.0, high=1.0, shift=0.0, scale=16.0)


def _digits_rows():
    """The first 20 held-out digits, as the model takes them (pixel / 16), and their labels."""
    _, test = dc.data.load_digits()
    return test.x[:20], test.y[:20]


def test_predict_scales_raw_pixel_counts_as_training_did_and_says_so(digits_run, tmp_path):
    rows, _ = _digits_rows()
    np.save(tmp_path / "scaled.npy", rows)
    np.save(tmp_path / "raw.npy", rows.astype(np.float64) * 16)  # sklearn's own pixel counts, 0..16
    model = str(digits_run / "model.dsc")
    scaled = CliRunner().invoke(main, ["predict", model, str(tmp_path / "scaled.npy")])
    assert scaled.exit_code == 0 and scaled.stderr == ""
    raw = CliRunner().invoke(main, ["predict", model, str(tmp_path / "raw.npy")])
    assert raw.exit_code == 0, raw.output
    assert raw.stderr == (f"note: {tmp_path / 'raw.npy'} holds values in [0, 16], within [0, 16], the range of digits "
                          "before training scaled it: scaled them as training did, x / 16, into the model's range "
                          "[0, 1]\n")
    assert raw.stdout == scaled.stdout
    expected = dc.predict(dc.load(model), rows).argmax(axis=1)
    np.testing.assert_array_equal(np.loadtxt(raw.stdout.splitlines()[1:]), expected)


def test_predict_warns_of_values_in_neither_range_and_refuses_another_feature_count(digits_run, tmp_path):
    rows, _ = _digits_rows()
    np.save(tmp_path / "standardised.npy", (rows - 0.3) / 0.4)
    model = str(digits_run / "model.dsc")
    result = CliRunner().invoke(main, ["predict", model, str(tmp_path / "standardised.npy")])
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"warning: {tmp_path / 'standardised.npy'} holds values in [-0.75, 1.75], outside [0, 1], the range of the "
        "inputs the model was trained on (digits, scaled as x / 16 from [0, 16]): its predictions for them mean "
        "little; scale them as the training data was\n")
    assert len(result.stdout.splitlines()) == 21  # the predictions still come
    np.save(tmp_path / "narrow.npy", rows[:, :10])
    result = CliRunner().invoke(main, ["predict", model, str(tmp_path / "narrow.npy")])
    assert result.exit_code == 2
    assert (f"Error: {tmp_path / 'narrow.npy'} has 10 features per example (shape (20, 10)), but the model expects "
            "64: it was trained on digits, examples of shape (64,); give rows (N, 64)\n") in result.output


def test_a_model_saved_without_a_record_takes_rows_as_they_are(tmp_path):
    path = dc.save(dc.nn.MLP([64, 8, 10], rng=0), tmp_path / "old.dsc")
    assert read_preprocessing(path) is None
    rows, _ = _digits_rows()
    np.save(tmp_path / "raw.npy", rows * 16)
    result = CliRunner().invoke(main, ["predict", str(path), str(tmp_path / "raw.npy")])
    assert result.exit_code == 0 and result.stderr == ""
    expected = dc.predict(dc.load(path), rows * 16).argmax(axis=1)
    np.testing.assert_array_equal(np.loadtxt(result.stdout.splitlines()[1:]), expected)


def test_images_are_checked_by_their_number_of_values_and_scaled_as_a_whole():
    record = Preprocessing.of(np.full((3, 1, 8, 8), 0.5, np.float32), "digits", scale=16)
    assert (record.input_shape, record.low, record.high, record.raw_range) == ((1, 8, 8), 0.5, 0.5, (8.0, 8.0))
    record = Preprocessing("digits", (1, 8, 8), low=0.0, high=1.0, scale=16)
    assert record.prepare(np.ones((2, 64)), "rows").scaled is False  # rows of 64 pixels are 8x8 images too
    prepared = record.prepare(np.full((2, 1, 8, 8), 8, np.uint8), "images")
    assert prepared.scaled and prepared.x.dtype == np.float32 and (prepared.x == 0.5).all()
    with pytest.raises(ShapeError) as error:
        record.check_features((2, 1, 28, 28), "mnist.npy")
    assert str(error.value) == ("mnist.npy has 784 features per example (shape (2, 1, 28, 28)), but the model expects "
                                "64: it was trained on digits, examples of shape (1, 8, 8); give rows (N, 64) or "
                                "arrays (N, 1, 8, 8)")


def test_values_a_little_outside_the_training_range_are_in_it_and_a_little_more_is_not_taken_for_raw_values():
    record = Preprocessing("mnist", (2,), low=0.0, high=1.0, scale=255)
    assert record.prepare(np.array([[-0.005, 1.005]]), "x").note is None  # 1% of the range: rounding, not a scale
    brighter = record.prepare(np.array([[0.0, 1.02]]), "x")  # within 0..255, but spread like scaled inputs
    assert not brighter.scaled and brighter.note.startswith("x holds values in [0, 1.02], outside [0, 1], the range")
    raw = record.prepare(np.array([[0, 17], [51, 0]], np.uint8), "x")  # a spread of 51: nearer 255 than 1, as ratios
    assert raw.scaled and raw.x.tolist() == [[0.0, np.float32(17 / 255)], [np.float32(51 / 255), 0.0]]
    unscaled = Preprocessing("blobs", (2,), low=-1.0, high=1.0)
    assert unscaled.prepare(np.array([[5.0, 0.0]]), "x").note == (
        "x holds values in [0, 5], outside [-1, 1], the range of the inputs the model was trained on (blobs, "
        "unscaled): its predictions for them mean little; scale them as the training data was")


def _file_with_record(path, text):
    """A model file whose metadata holds `text` as its preprocessing record, written as save writes one."""
    model = dc.nn.MLP([2, 3], rng=0)
    tensors = {f"model/{name}": value for name, value in model.state_dict().items()}
    return write_file(path, tensors, {"architecture": json.dumps(module_spec(model)), "dtype": "float32",
                                      "preprocessing": text})


GOOD = {"source": "digits", "input_shape": [64], "low": 0.0, "high": 1.0, "shift": 0.0, "scale": 16.0}

#: a hostile record -> the words the ModelFileError must end with
HOSTILE_RECORDS = {
    "not JSON": ("{source", "its preprocessing record is not JSON"),
    "NaN": (json.dumps(GOOD).replace("1.0", "NaN"), "its preprocessing record holds NaN, where only finite numbers "
                                                    "may stand"),
    "overflowing to infinity": (json.dumps(GOOD).replace("16.0", "1e999"),
                                "malformed: Preprocessing: scale is inf; expected a finite number"),
    "a list, not an object": ("[1, 2]", "malformed: Preprocessing: record is [1, 2]; expected a JSON object of exactly "
                                        "source, input_shape, low, high, shift, scale"),
    "a key missing": (json.dumps({key: value for key, value in GOOD.items() if key != "scale"}),
                      "expected a JSON object of exactly source, input_shape, low, high, shift, scale"),
    "an unknown key": (json.dumps({**GOOD, "mean": 0.5}), "expected a JSON object of exactly source, input_shape, "
                                                          "low, high, shift, scale"),
    "a string for a number": (json.dumps({**GOOD, "low": "0"}), "Preprocessing: low is '0'; expected a finite number"),
    "a flag for a number": (json.dumps({**GOOD, "high": True}), "Preprocessing: high is True; expected a finite number"),
    "a huge list of sides": (json.dumps({**GOOD, "input_shape": [1] * 100_000}),
                             "Preprocessing: input_shape is (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, "
                             "1, 1, 1, 1, 1, 1, 1...; expected one example's shape: 1 to 32 whole numbers >= 1"),
    "a side of 0": (json.dumps({**GOOD, "input_shape": [0]}), "Preprocessing: input_shape is (0,); expected one "
                                                              "example's shape: 1 to 32 whole numbers >= 1"),
    "a shape that is no list": (json.dumps({**GOOD, "input_shape": 64}),
                                "Preprocessing: input_shape is 64; expected a list of whole numbers"),
    "a scale of 0": (json.dumps({**GOOD, "scale": 0}), "Preprocessing: scale is 0; expected a number > 0: raw values "
                                                       "are divided by it"),
    "low above high": (json.dumps({**GOOD, "low": 2.0}), "Preprocessing: high is 1.0; expected at least low (2.0)"),
    "a raw range beyond floats": (json.dumps({**GOOD, "scale": 1e308, "high": 1e10}),
                                  "Preprocessing: scale is 1e+308; expected a number that keeps the raw range finite "
                                  "(low 0.0, high 10000000000.0, shift 0.0)"),
    "a name with a control character": (json.dumps({**GOOD, "source": "digits\x1b[2J"}),
                                        "Preprocessing: source is 'digits\\x1b[2J'; expected a printable name of 1 to "
                                        "80 characters"),
    "a huge name": (json.dumps({**GOOD, "source": "x" * 10_000}), "expected a printable name of 1 to 80 characters"),
}


@pytest.mark.parametrize("case", list(HOSTILE_RECORDS))
def test_a_hostile_preprocessing_record_is_refused_naming_the_file_and_the_field(tmp_path, case):
    text, words = HOSTILE_RECORDS[case]
    path = _file_with_record(tmp_path / "model.dsc", text)
    with pytest.raises(ModelFileError) as error:
        read_preprocessing(path)
    assert str(error.value).startswith(f"{path}: its preprocessing record") and str(error.value).endswith(words)
    assert isinstance(dc.load(path), dc.nn.MLP)  # the model itself still loads
    np.save(tmp_path / "rows.npy", np.ones((1, 2), np.float32))
    result = CliRunner().invoke(main, ["predict", str(path), str(tmp_path / "rows.npy")])
    assert result.exit_code == 1 and result.output == f"error: {error.value}\n"


def test_a_good_record_round_trips_and_save_takes_nothing_else(tmp_path):
    path = _file_with_record(tmp_path / "model.dsc", json.dumps(GOOD))
    assert read_preprocessing(path).record() == GOOD
    with pytest.raises(TypeError, match="preprocessing must be a descend.preprocessing.Preprocessing or None; got dict"):
        dc.save(dc.nn.MLP([2, 3], rng=0), tmp_path / "other.dsc", preprocessing=GOOD)
    assert not (tmp_path / "other.dsc").exists()


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """The folder a tiny char model was trained into for one short epoch, on a tiny text file."""
    folder = tmp_path_factory.mktemp("text")
    (folder / "tiny.txt").write_text("the cat sat on the mat. the dog sat on the log.\n" * 20)
    run = folder / "mine"
    result = CliRunner().invoke(main, ["train", "--model", "char-gru", "--text", str(folder / "tiny.txt"), "--epochs",
                                       "1", "--seq-length", "16", "--hidden", "16", "--embed", "8", "--batch-size",
                                       "8", "--out", str(run), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"write more with: descend generate {run}"
    return run


def test_generate_takes_the_run_folder_the_text_model_was_trained_into(text_run):
    given = CliRunner().invoke(main, ["generate", str(text_run), "--length", "40", "--seed", "3"])
    assert given.exit_code == 0, given.output
    sample = given.stdout[:-1]  # echo's new line
    assert sample.startswith("\n") and len(sample) == 41  # no ROMEO in this text: the prompt is a new line
    assert set(sample) <= set("the cat sat on the mat. the dog sat on the log.\n")
    as_option = CliRunner().invoke(main, ["generate", "--run", str(text_run), "--length", "40", "--seed", "3"])
    assert as_option.exit_code == 0 and as_option.stdout == given.stdout
    clash = CliRunner().invoke(main, ["generate", str(text_run), "--run", str(text_run.parent)])
    assert clash.exit_code == 2
    assert f"RUN is {text_run} and --run is {text_run.parent}: give the run folder once" in clash.output
    prompt = CliRunner().invoke(main, ["generate", str(text_run), "--prompt", "ROMEO:"])
    assert prompt.exit_code == 2
    assert "Invalid value for --prompt: encode: 6 of the 6 characters are not in the vocabulary" in prompt.output


def test_generate_without_a_folder_takes_the_newest_text_run_in_runs_and_names_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    nothing = CliRunner().invoke(main, ["generate"])
    assert nothing.exit_code == 2
    assert ("Error: no RUN given, and runs/ holds no run of a character model; give the folder one was trained "
            "into: descend train --model char-lstm --text FILE --out RUN, then descend generate RUN\n") in nothing.output
    (tmp_path / "tiny.txt").write_text("abc abd abe\n" * 20)
    tiny = ["--text", "tiny.txt", "--epochs", "1", "--seq-length", "8", "--hidden", "8", "--embed", "4", "--quiet"]
    for model in ("char-gru", "char-rnn"):  # the second is the newest
        assert CliRunner().invoke(main, ["train", "--model", model, *tiny]).exit_code == 0
    result = CliRunner().invoke(main, ["generate", "--length", "5", "--seed", "0"])
    assert result.exit_code == 0, result.output
    assert result.stderr == "generating with runs/char-rnn-text, the newest character model's run in runs/\n"
    named = CliRunner().invoke(main, ["generate", "runs/char-rnn-text", "--length", "5", "--seed", "0"])
    assert named.stdout == result.stdout


def test_generate_refuses_a_folder_without_a_text_model_saying_what_it_holds(digits_run, tmp_path):
    empty = CliRunner().invoke(main, ["generate", str(tmp_path)])
    assert empty.exit_code == 2
    assert (f"Error: {tmp_path} holds no model.dsc: it is not the folder of a descend train run; train a character "
            f"model into it first: descend train --model char-lstm --text FILE --out {tmp_path}\n") in empty.output
    classifier = CliRunner().invoke(main, ["generate", str(digits_run)])
    assert classifier.exit_code == 2
    assert (f"Error: {digits_run / 'model.dsc'} holds a model of class MLP, not a text model: descend generate needs "
            "the folder a character model was trained into (descend train --model char-lstm --text FILE --out "
            "RUN)\n") in classifier.output


def test_generate_refuses_a_character_model_without_its_own_vocabulary(text_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.dsc").write_bytes((text_run / "model.dsc").read_bytes())
    missing = CliRunner().invoke(main, ["generate", str(run)])
    assert missing.exit_code == 2
    assert (f"Error: {run} holds a character model but no vocab.json, the vocabulary descend train writes beside "
            f"it; train it again: descend train --model char-lstm --text FILE --out {run} --overwrite\n") in (
        missing.output)
    (run / "vocab.json").write_text(json.dumps({"vocab": list("zyx")}))
    other = CliRunner().invoke(main, ["generate", str(run)])
    assert other.exit_code == 2
    assert (f"Error: {run / 'vocab.json'} does not fit the model beside it: it lists 3 characters; expected the 15 "
            "distinct characters the model reads, sorted, as descend train wrote them\n") in other.output
