"""The Spark engine in local mode: the local engine's weights from sync="gradient", model averaging, retried
tasks that change nothing, inference as DataFrame columns, data that stays on the executors, bad input."""

import os
import shutil

import numpy as np
import pytest

import descend as dc
from descend import nn, optim
from descend.errors import DataError, DescendTypeError, DescendValueError

from helpers import skip_outside_ci

try:
    import pyspark  # noqa: F401
    from pyspark.ml.linalg import Vectors
except ImportError:
    skip_outside_ci("pyspark is not installed (make test installs it)")

from descend.spark import fit_spark, predict_spark
from descend.training.step import run_seed


@pytest.fixture(scope="module")
def digits():
    train, test = dc.data.load_digits()
    return train[:400], test


def frame(spark, dataset, vectors=True, partitions=2):
    """A DataFrame of the rows in order, in `partitions` runs of consecutive rows."""
    rows = [(Vectors.dense(x.astype(float)) if vectors else x.astype(float).tolist(), int(y))
            for x, y in zip(dataset.x, dataset.y)]
    return spark.createDataFrame(spark.sparkContext.parallelize(rows, partitions), ["features", "label"])


def mlp(seed=0):
    model = nn.MLP([64, 16, 10], rng=seed)
    return model, optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


def test_gradient_sync_gives_the_local_engines_weights(spark, digits):
    train, _ = digits
    local, local_optimizer = mlp()
    dc.fit(local, nn.CrossEntropyLoss(), local_optimizer, train, epochs=2, batch_size=32, seed=3, progress=False)
    ours, optimizer = mlp()
    history = fit_spark(ours, nn.CrossEntropyLoss(), optimizer, frame(spark, train), epochs=2, batch_size=32,
                        sync="gradient", seed=3)
    np.testing.assert_allclose(ours.flat_buffer().data, local.flat_buffer().data, rtol=1e-5, atol=1e-6)
    assert optimizer.iterations == local_optimizer.iterations == 2 * 13
    assert len(history) == 2 and 0 < history["accuracy"][-1] <= 1


def test_many_partitions_are_added_up_on_the_executors_first(spark, digits):
    train, _ = digits
    local, local_optimizer = mlp()
    dc.fit(local, nn.CrossEntropyLoss(), local_optimizer, train, epochs=1, batch_size=100, seed=3, progress=False)
    ours, optimizer = mlp()
    history = fit_spark(ours, nn.CrossEntropyLoss(), optimizer, frame(spark, train, partitions=9), epochs=1,
                        batch_size=100, sync="gradient", seed=3)
    np.testing.assert_allclose(ours.flat_buffer().data, local.flat_buffer().data, rtol=1e-5, atol=1e-6)
    # nine partitions in three runs of three: the driver gets at most three gradient sums a step, not nine
    gradient_bytes = ours.flat_buffer().grad.nbytes
    assert 4 * gradient_bytes <= history.driver_bytes[0] <= 4 * 3 * gradient_bytes


def test_model_averaging_trains_and_only_parameters_reach_the_driver(spark, digits, monkeypatch):
    from pyspark.sql import DataFrame

    def refuse(*args, **kwargs):
        raise AssertionError("the dataset must stay on the executors")

    for method in ("collect", "toPandas", "toLocalIterator", "take", "head"):
        monkeypatch.setattr(DataFrame, method, refuse)
    train, test = digits
    model, optimizer = mlp()
    history = fit_spark(model, nn.CrossEntropyLoss(), optimizer, frame(spark, train, vectors=False), epochs=10,
                        batch_size=32, sync="average", sync_every=4, validation=frame(spark, test))
    local, local_optimizer = mlp()
    local_history = dc.fit(local, nn.CrossEntropyLoss(), local_optimizer, train, epochs=10, batch_size=32,
                           validation=test, progress=False)
    # averaging takes half the local engine's steps (each round's steps run side by side): it ends within a few
    # points of the local engine's accuracy, far above chance (0.1)
    assert history["val_accuracy"][-1] > local_history["val_accuracy"][-1] - 0.05
    assert history["val_accuracy"][-1] > 0.8
    parameter_bytes = model.flat_buffer().data.nbytes
    momentum_bytes = optimizer.state["momentum_buffer"].nbytes
    # each partition holds 200 rows: rounds of 4 and 3 minibatches, each step's loss and right answers (float64)
    # coming back beside the weights so that the callbacks see every step of the averaged model
    step_sums_bytes = [2 * 8 * steps for steps in (4, 3)]
    assert history.driver_bytes == [sum(2 * (parameter_bytes + momentum_bytes + sums) for sums in step_sums_bytes)] * 10


def test_model_averaging_is_the_mean_of_each_partitions_own_steps(spark, digits):
    """Two rounds of sync="average" worked by hand: each partition trains its share of the round, in the order
    its generator draws, from the round's averaged weights, momentum and step count; the round ends with the
    mean of both partitions' weights and momentum. The engine must give the same numbers."""
    train, _ = digits
    batch_size, sync_every, seed, rows_per_round = 25, 4, 3, 100  # 200 rows a partition: two rounds
    model, optimizer = mlp()
    fit_spark(model, nn.CrossEntropyLoss(), optimizer, frame(spark, train), epochs=1, batch_size=batch_size,
              sync="average", sync_every=sync_every, seed=seed)
    reference, _ = mlp()
    weights, momentum = reference.flat_buffer().data.copy(), np.zeros_like(reference.flat_buffer().data)
    for round_index in range(2):
        ended = []
        for partition in range(2):
            x = train.x[200 * partition : 200 * (partition + 1)].astype(np.float32)
            y = train.y[200 * partition : 200 * (partition + 1)]
            order = np.random.default_rng([run_seed(seed, 0), 1, partition]).permutation(200)
            share = order[round_index * rows_per_round : (round_index + 1) * rows_per_round]
            here, here_optimizer = mlp()
            here.flat_buffer().data[...] = weights
            here_optimizer.state["momentum_buffer"][...] = momentum
            here_optimizer.iterations = round_index * sync_every
            step = dc.make_step(here, nn.CrossEntropyLoss())
            for begin in range(0, rows_per_round, batch_size):
                rows = np.sort(share[begin : begin + batch_size])
                step(here.flat_buffer().data, x[rows], y[rows])
                here_optimizer.step()
            ended.append((here.flat_buffer().data.copy(), here_optimizer.state["momentum_buffer"].copy()))
        weights = (ended[0][0] + ended[1][0]) / 2
        momentum = (ended[0][1] + ended[1][1]) / 2
    # the executors' products may round otherwise than this process's (another BLAS thread count): eight steps
    # with momentum carry that to ~1e-5; a wrong share, order or average moves weights by ~1e-2
    np.testing.assert_allclose(model.flat_buffer().data, weights, rtol=1e-4, atol=2e-4)
    np.testing.assert_allclose(optimizer.state["momentum_buffer"], momentum, rtol=1e-4, atol=2e-4)
    assert optimizer.iterations == 2 * sync_every


def test_a_retried_task_changes_nothing(spark, digits):
    def fail_first_attempt_of_round_one(info):  # defined here, so Spark ships it by value to the executors
        if info.round == 1 and info.partition == 0 and info.attempt == 0:
            raise RuntimeError("injected failure: the first attempt of round 1's task on partition 0")

    train, _ = digits
    data = frame(spark, train)
    runs = []
    for hook in (None, fail_first_attempt_of_round_one):
        model, optimizer = mlp()
        fit_spark(model, nn.CrossEntropyLoss(), optimizer, data, epochs=2, batch_size=32, sync="average",
                  sync_every=2, task_hook=hook)
        runs.append(model.flat_buffer().data.copy())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_predict_spark_adds_predictions_probabilities_and_anomaly_scores(spark, digits):
    train, test = digits
    model, optimizer = mlp()
    dc.fit(model, nn.CrossEntropyLoss(), optimizer, train, epochs=3, batch_size=32, progress=False)
    scored = predict_spark(model, frame(spark, test), probability="probability").toPandas()
    assert list(scored.columns) == ["features", "label", "prediction", "probability"]
    expected = dc.predict(model, test.x)
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), expected.argmax(axis=1))
    np.testing.assert_allclose(np.stack(scored["probability"]).sum(axis=1), 1.0, rtol=1e-6)

    autoencoder = nn.Autoencoder([64, 16, 4], rng=0)
    dc.fit(autoencoder, nn.MSELoss(), optim.Adam(autoencoder.parameters(), lr=1e-3), train, epochs=2,
           progress=False)
    scores = predict_spark(autoencoder, frame(spark, test), output="reconstruction", score="anomaly").toPandas()
    np.testing.assert_allclose(scores["anomaly"].to_numpy(), dc.anomaly.reconstruction_error(autoencoder, test.x),
                               rtol=1e-5)


def test_fit_spark_trains_an_autoencoder_without_labels_nearly_as_well_as_the_local_engine(spark, digits):
    # The score is the held-out reconstruction error over that of always answering the training rows' mean.
    # Measured with initial weights 0-3: local 0.51-0.58, Spark 0.61-0.67, Spark / local 1.10-1.33 (averaging two
    # partitions takes half the local engine's steps). Three epochs at lr 1e-2 left both near the mean's error:
    # local 0.94-0.98, Spark 1.05-1.06.
    train, test = digits

    def autoencoder():
        model = nn.Autoencoder([64, 16, 4], rng=0)
        return model, optim.Adam(model.parameters(), lr=3e-2)

    def relative_error(model):
        return dc.anomaly.reconstruction_error(model, test.x).mean() / ((test.x - train.x.mean(axis=0)) ** 2).mean()

    local, local_optimizer = autoencoder()
    dc.fit(local, nn.MSELoss(), local_optimizer, train, epochs=10, batch_size=32, seed=3, progress=False)
    ours, optimizer = autoencoder()
    history = fit_spark(ours, nn.MSELoss(), optimizer, frame(spark, train).drop("label"), epochs=10, batch_size=32,
                        sync="average", sync_every=3, seed=3)
    assert len(history) == 10 and "accuracy" not in history.last()
    assert relative_error(local) < 0.7
    assert relative_error(ours) < 0.8
    assert relative_error(ours) < 1.5 * relative_error(local)


BAD_INPUT = [
    (lambda spark, df: df.drop("features"), {}, DescendValueError, ["no features column 'features'"]),
    (lambda spark, df: df.withColumn("features", df.label.cast("string")), {}, DescendTypeError,
     ["features", "string"]),
    (lambda spark, df: spark.createDataFrame([([1.0, 2.0], 0)], ["features", "label"]), {}, DataError,
     ["length", "64"]),
    (lambda spark, df: spark.createDataFrame([(None, 0), ([0.0] * 64, 1)], "features array<double>, label int"), {},
     DataError, ["null"]),
    (lambda spark, df: spark.createDataFrame([([float("nan")] * 64, 0)], ["features", "label"]), {}, DataError,
     ["NaN"]),
    (lambda spark, df: spark.createDataFrame([([0.0] * 64, 12)], ["features", "label"]), {}, DataError,
     ["12", "0..9"]),
    (lambda spark, df: df, {"sync": "gossip"}, DescendValueError, ["sync", "'average'"]),
]


@pytest.mark.parametrize("make, options, error, words", BAD_INPUT, ids=[f"bad{i}" for i in range(len(BAD_INPUT))])
def test_bad_input_names_the_column_and_the_problem(spark, digits, make, options, error, words):
    model, optimizer = mlp()
    with pytest.raises(Exception) as raised:
        fit_spark(model, nn.CrossEntropyLoss(), optimizer, make(spark, frame(spark, digits[0][:20])), **options)
    message = str(raised.value)
    assert isinstance(raised.value, error) or error.__name__ in message  # executors' errors arrive wrapped
    for word in words:
        assert word in message


def _pixel_table(spark, dataset):
    import pandas as pd

    columns = {f"p{i}": dataset.x[:, i].astype(float) for i in range(dataset.x.shape[1])}
    return spark.createDataFrame(pd.DataFrame({**columns, "label": dataset.y.astype(int)})).repartition(2)


def test_spark_ml_pipeline_fits_saves_loads_and_cross_validates(spark, digits, tmp_path):
    from pyspark.ml import Pipeline, PipelineModel
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.feature import VectorAssembler

    from pyspark.ml.tuning import CrossValidator

    from descend.spark.ml import NeuralNetClassifier

    train, test = digits
    train_df, test_df = _pixel_table(spark, train), _pixel_table(spark, test)
    classifier = NeuralNetClassifier(layers=[64, 32, 10], maxEpochs=8, syncEvery=4, batchSize=32)
    pipeline = Pipeline(stages=[VectorAssembler(inputCols=[f"p{i}" for i in range(64)], outputCol="features"),
                                classifier])
    fitted = pipeline.fit(train_df)
    accuracy = MulticlassClassificationEvaluator(metricName="accuracy")
    before = fitted.transform(test_df).select("prediction", "probability").toPandas()
    assert accuracy.evaluate(fitted.transform(test_df)) > 0.8
    fitted.write().save(str(tmp_path / "model"))
    assert not list((tmp_path / "model").rglob("*.pkl"))
    after = PipelineModel.load(str(tmp_path / "model")).transform(test_df).select("prediction", "probability").toPandas()
    np.testing.assert_array_equal(before["prediction"], after["prediction"])
    np.testing.assert_allclose(np.stack(before["probability"]), np.stack(after["probability"]))
    assert fitted.stages[1].getLayers() == [64, 32, 10] and fitted.stages[1].getOrDefault("maxEpochs") == 8

    search = CrossValidator(estimator=pipeline, estimatorParamMaps=[{classifier.stepSize: 0.02},
                                                                    {classifier.stepSize: 0.1}],
                            evaluator=accuracy, numFolds=2, seed=0).fit(train_df)
    assert len(search.avgMetrics) == 2 and max(search.avgMetrics) > 0.7


def test_spark_ml_regressor_and_anomaly_detector(spark, digits, tmp_path):
    from pyspark.ml.feature import VectorAssembler

    from descend.spark.ml import AutoencoderAnomalyDetector, AutoencoderAnomalyModel, NeuralNetRegressor

    train = digits[0]
    assemble = VectorAssembler(inputCols=[f"p{i}" for i in range(64)], outputCol="features")
    train_df = assemble.transform(_pixel_table(spark, train))
    regression = NeuralNetRegressor(layers=[64, 16, 1], maxEpochs=5, syncEvery=4, batchSize=32).fit(train_df)
    predicted = regression.transform(train_df).select("label", "prediction").toPandas()
    assert predicted["prediction"].dtype == np.float64
    assert np.corrcoef(predicted["label"], predicted["prediction"])[0, 1] > 0.3

    detector = AutoencoderAnomalyDetector(layers=[64, 16], maxEpochs=4, syncEvery=4, batchSize=32,
                                          contamination=0.05).fit(train_df.drop("label"))
    flagged = detector.transform(train_df).select("anomalyScore", "prediction").toPandas()
    assert 0.02 < flagged["prediction"].mean() < 0.1  # about the contamination asked for
    assert flagged.loc[flagged["prediction"] == 1.0, "anomalyScore"].min() >= detector.getOrDefault("threshold")
    detector.write().save(str(tmp_path / "detector"))
    reloaded = AutoencoderAnomalyModel.load(str(tmp_path / "detector"))
    assert reloaded.getOrDefault("threshold") == detector.getOrDefault("threshold")


def test_layers_are_checked_before_any_job(spark, digits):
    from descend.spark.ml import NeuralNetClassifier, NeuralNetRegressor

    data = frame(spark, digits[0][:20])
    with pytest.raises(DescendValueError, match="needs layers"):
        NeuralNetClassifier().fit(data)
    with pytest.raises(DescendValueError, match="must end in 1"):
        NeuralNetRegressor(layers=[64, 8, 2]).fit(data)


def test_blocks_lost_from_an_executor_are_rebuilt_from_the_lineage(spark, digits):
    from pyspark import SparkFiles

    store = os.path.join(SparkFiles.getRootDirectory(), "descend-blocks")  # local mode: the executors' disk
    rebuilt = []

    class LoseTheBlocks(dc.Callback):
        def on_epoch_end(self, state, record):
            if state.epoch == 1:
                shutil.rmtree(store)
            else:
                runs = [os.path.join(store, run) for run in os.listdir(store)]
                rebuilt.append(sorted(name for run in runs for name in os.listdir(run)))

    data = frame(spark, digits[0])
    runs = []
    for callbacks in ((), (LoseTheBlocks(),)):
        model, optimizer = mlp()
        fit_spark(model, nn.CrossEntropyLoss(), optimizer, data, epochs=2, batch_size=32, sync="average",
                  sync_every=2, callbacks=callbacks)
        runs.append(model.flat_buffer().data.copy())
    assert rebuilt == [["x0.npy", "x1.npy", "y0.npy", "y1.npy"]]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert os.listdir(store) == []  # the run's block files go with it


def test_a_hundred_rounds_keep_one_cached_rdd_and_the_same_lineage(spark, digits):
    context = spark.sparkContext
    cached_before = context._jsc.getPersistentRDDs().size()
    seen = []

    class Watch(dc.Callback):
        def on_epoch_end(self, state, record):
            rdds = context._jsc.getPersistentRDDs()
            lineages = [len(rdds.get(key).toDebugString().splitlines()) for key in rdds.keySet()]
            seen.append((rdds.size(), max(lineages)))

    model, optimizer = mlp()
    data = frame(spark, digits[0][:40])  # 20 rows per partition: 20 rounds of one step per epoch
    fit_spark(model, nn.CrossEntropyLoss(), optimizer, data, epochs=5, batch_size=1, sync="average", sync_every=1,
              callbacks=[Watch()])
    assert optimizer.iterations == 5 * 20
    assert seen == [seen[0]] * 5 and seen[0][0] == cached_before + 1  # one cached RDD, its lineage fixed
    assert context._jsc.getPersistentRDDs().size() == cached_before  # and it is let go at the end


def test_an_old_spark_is_refused():
    from descend.spark.engine import check_spark_version

    with pytest.raises(DescendValueError, match="Spark 3.1.2 is below the supported 3.5"):
        check_spark_version("3.1.2")
    check_spark_version("4.0.1")


def test_the_train_command_runs_on_spark(spark, tmp_path):
    import json

    from click.testing import CliRunner

    from descend.cli import main

    result = CliRunner().invoke(main, ["train", "--model", "mlp", "--data", "digits", "--engine", "spark",
                                       "--master", "local[2]", "--epochs", "3", "--batch-size", "32",
                                       "--sync-every", "5", "--hidden", "32", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "test.json").read_text())["test_accuracy"] > 0.7
    assert (tmp_path / "model.dsc").is_file()
    refused = CliRunner().invoke(main, ["train", "--model", "cnn", "--engine", "spark"])
    assert refused.exit_code == 2 and "flat features" in refused.output


def test_a_spark_run_of_the_train_command_resumes_to_the_bits_of_one_run_through(spark, tmp_path):
    from click.testing import CliRunner

    import descend as dc
    from descend.cli import main

    options = ["--model", "mlp", "--data", "digits", "--engine", "spark", "--master", "local[2]", "--batch-size",
               "32", "--sync", "average", "--hidden", "16", "--quiet"]
    whole = CliRunner().invoke(main, ["train", *options, "--epochs", "2", "--out", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    first = CliRunner().invoke(main, ["train", *options, "--epochs", "1", "--out", str(tmp_path / "run")])
    assert first.exit_code == 0, first.output
    assert list((tmp_path / "run" / "checkpoints").glob("checkpoint-*.dsc"))
    resumed = CliRunner().invoke(main, ["train", "--resume", str(tmp_path / "run"), "--epochs", "2", "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    weights = [dc.load(tmp_path / run / "model.dsc").flat_buffer().data for run in ("whole", "run")]
    assert weights[0].tobytes() == weights[1].tobytes()


def test_an_unfitted_estimator_saves_and_loads_its_params(spark, tmp_path):
    from descend.spark.ml import NeuralNetClassifier

    NeuralNetClassifier(layers=[64, 8, 10], maxEpochs=3, sync="gradient").write().save(str(tmp_path / "estimator"))
    loaded = NeuralNetClassifier.load(str(tmp_path / "estimator"))
    assert loaded.getLayers() == [64, 8, 10]
    assert loaded.getOrDefault("maxEpochs") == 3 and loaded.getOrDefault("sync") == "gradient"


def test_fit_with_the_spark_engine_is_fit_spark(spark, digits):
    train, _ = digits
    data = frame(spark, train)
    runs = []
    for train_with_fit in (True, False):
        model, optimizer = mlp()
        if train_with_fit:
            dc.fit(model, nn.CrossEntropyLoss(), optimizer, data, epochs=2, batch_size=32, engine="spark")
        else:
            fit_spark(model, nn.CrossEntropyLoss(), optimizer, data, epochs=2, batch_size=32)
        runs.append(model.flat_buffer().data.copy())
    np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize("rows, words", [
    ([(None, 0), ([1.0, 2.0, 3.0], 1)], "1 null rows"),
    ([([1.0, float("nan"), 3.0], 0), ([1.0, 2.0, 3.0], 1)], "1 rows with NaN or infinite values"),
    ([([1.0, float("inf"), 3.0], 0)], "1 rows with NaN or infinite values"),
    ([([1.0, 2.0], 0), ([1.0, 2.0, 3.0], 1)], "rows of length [2, 3]; the model takes 3 features"),
    ([([1.0, 2.0, 3.0, 4.0], 0)], "rows of length [4]; the model takes 3 features"),
])
def test_predict_spark_refuses_bad_features_with_a_data_error_before_any_task_fails(spark, rows, words):
    from pyspark.sql import types

    schema = types.StructType([types.StructField("features", types.ArrayType(types.DoubleType())),
                               types.StructField("label", types.LongType())])
    with pytest.raises(DataError) as raised:
        predict_spark(nn.MLP([3, 4, 2], rng=0), spark.createDataFrame(rows, schema))
    assert words in str(raised.value) and "features column 'features'" in str(raised.value)


def test_a_non_finite_regression_target_is_refused_by_the_label_column_name(spark):
    rows = [([1.0, 2.0], 0.5), ([0.0, 1.0], float("inf")), ([2.0, 2.0], 1.0)]
    df = spark.createDataFrame(rows, ["features", "target"])
    model = nn.MLP([2, 3, 1], rng=0)
    with pytest.raises(DataError, match=r"label column 'target' holds NaN or infinite targets \(\[inf\]\)"):
        fit_spark(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), df, label="target")


@pytest.mark.parametrize("sync", ["gradient", "average"])
def test_the_metrics_asked_for_come_back_from_the_executors(spark, digits, sync):
    train, test = digits
    model, optimizer = mlp()
    history = fit_spark(model, nn.CrossEntropyLoss(), optimizer, frame(spark, train), epochs=2, batch_size=32,
                        sync=sync, sync_every=5, validation=frame(spark, test), metrics=["accuracy", "top3_accuracy"])
    record = history.epochs[-1]
    assert 0 < record["accuracy"] < record["top3_accuracy"] <= 1
    logits = dc.predict(model, test.x)
    top3 = np.argsort(-logits, axis=1)[:, :3]
    assert record["val_accuracy"] == pytest.approx(float((logits.argmax(axis=1) == test.y).mean()), abs=1e-12)
    assert record["val_top3_accuracy"] == pytest.approx(float((top3 == test.y[:, None]).any(axis=1).mean()), abs=1e-12)
