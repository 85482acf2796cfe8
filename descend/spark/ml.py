"""descend networks as pyspark.ml Estimators: they train with fit_spark and their models are Transformers.

`NeuralNetClassifier`, `NeuralNetRegressor` and `AutoencoderAnomalyDetector` take the usual Params
(featuresCol, labelCol, predictionCol, layers, maxEpochs, stepSize, momentum, batchSize, sync,
syncEvery, seed), work inside `Pipeline` and `CrossValidator`, and save and load with Spark ML
persistence: the Params as Spark's JSON metadata, the network as a descend model file (safetensors
weights, JSON architecture; no pickle) stored in a one-row Parquet table beside it, so the same
path works on a local disk and on HDFS or S3.

>>> NeuralNetClassifier(layers=[784, 256, 10], maxEpochs=5).getLayers()
[784, 256, 10]
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from pyspark import keyword_only
from pyspark.ml import Estimator, Model
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasFeaturesCol, HasLabelCol, HasPredictionCol, HasProbabilityCol, HasSeed
from pyspark.ml.util import DefaultParamsReader, DefaultParamsWriter, MLReadable, MLReader, MLWritable, MLWriter

from descend.checks import check_integer, check_real
from descend.errors import DescendValueError

_MODEL_TABLE = "descend-model"


class _NetworkParams(HasFeaturesCol, HasLabelCol, HasPredictionCol, HasSeed):
    """The Params every descend estimator shares."""

    layers = Param(Params._dummy(), "layers", "layer widths, input first: [784, 256, 10]",
                   typeConverter=TypeConverters.toListInt)
    maxEpochs = Param(Params._dummy(), "maxEpochs", "passes over the data", typeConverter=TypeConverters.toInt)
    stepSize = Param(Params._dummy(), "stepSize", "SGD learning rate", typeConverter=TypeConverters.toFloat)
    momentum = Param(Params._dummy(), "momentum", "SGD momentum in [0, 1)", typeConverter=TypeConverters.toFloat)
    batchSize = Param(Params._dummy(), "batchSize", "rows per SGD step", typeConverter=TypeConverters.toInt)
    sync = Param(Params._dummy(), "sync", "'average' (model averaging) or 'gradient' (synchronous steps)",
                 typeConverter=TypeConverters.toString)
    syncEvery = Param(Params._dummy(), "syncEvery", "local steps between averagings (sync='average')",
                      typeConverter=TypeConverters.toInt)

    def __init__(self, *args: Any):
        super().__init__(*args)
        self._setDefault(maxEpochs=5, stepSize=0.05, momentum=0.9, batchSize=128, sync="average", syncEvery=50,
                         seed=0)

    def getLayers(self) -> list[int]:
        """The layer widths, input first."""
        return self.getOrDefault(self.layers)

    def _check_layers(self) -> list[int]:
        if not self.isDefined(self.layers):
            raise DescendValueError(f"{type(self).__name__} needs layers=[n_features, ..., n_outputs]")
        layers = self.getLayers()
        if len(layers) < 2 or min(layers) < 1:
            raise DescendValueError(f"layers must be at least two positive widths, input first; got {layers}")
        return layers

    def _train(self, network: Any, loss_fn: Any, dataset: Any, label: str | None) -> Any:
        from descend import optim
        from descend.spark.engine import fit_spark

        # checked under the Params' own names: fit_spark and SGD would name their arguments instead
        for name in ("maxEpochs", "batchSize", "syncEvery"):
            check_integer(name, self.getOrDefault(getattr(self, name)), low=1)
        check_real("stepSize", self.getOrDefault(self.stepSize), low=0.0, low_open=True)
        optimizer = optim.SGD(network.parameters(), lr=self.getOrDefault(self.stepSize),
                              momentum=self.getOrDefault(self.momentum))
        return fit_spark(network, loss_fn, optimizer, dataset, features=self.getFeaturesCol(), label=label,
                         epochs=self.getOrDefault(self.maxEpochs), batch_size=self.getOrDefault(self.batchSize),
                         sync=self.getOrDefault(self.sync), sync_every=self.getOrDefault(self.syncEvery),
                         seed=self.getOrDefault(self.seed))


class _NetworkModel(Model, MLWritable, MLReadable):
    """A fitted network: transform adds its outputs as columns; saves and loads with Spark ML persistence."""

    def __init__(self, network: Any = None):
        super().__init__()
        self.network = network

    def write(self) -> MLWriter:
        return _NetworkWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return _NetworkReader(cls)


class _NetworkWriter(MLWriter):
    def __init__(self, instance: _NetworkModel):
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        from descend.io import save

        DefaultParamsWriter.saveMetadata(self.instance, path, self.sc)
        with tempfile.TemporaryDirectory() as folder:
            file = save(self.instance.network, os.path.join(folder, "model.dsc"))
            content = file.read_bytes()
        spark = self.sparkSession
        spark.createDataFrame([(content,)], "model binary").coalesce(1).write.parquet(os.path.join(path, _MODEL_TABLE))


class _NetworkReader(MLReader):
    def __init__(self, cls: type):
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> _NetworkModel:
        from descend.io import load

        metadata = DefaultParamsReader.loadMetadata(path, self.sc)
        content = self.sparkSession.read.parquet(os.path.join(path, _MODEL_TABLE)).head()["model"]
        with tempfile.TemporaryDirectory() as folder:
            file = os.path.join(folder, "model.dsc")
            with open(file, "wb") as stream:
                stream.write(bytes(content))
            instance = self.cls(load(file))
        DefaultParamsReader.getAndSetParams(instance, metadata)
        return instance


class _SavedAsParams(MLWritable, MLReadable):
    """An estimator saved as its Params alone (Spark's JSON metadata): it has nothing learned yet."""

    def write(self) -> MLWriter:
        return DefaultParamsWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return DefaultParamsReader(cls)


class NeuralNetClassifier(Estimator, _NetworkParams, HasProbabilityCol, _SavedAsParams):
    """A ReLU MLP classifier (softmax cross-entropy) trained with fit_spark; labels are class indices 0..k−1.

    Its model adds predictionCol (the class index, double) and probabilityCol (array<double>).
    """

    @keyword_only
    def __init__(self, *, featuresCol: str = "features", labelCol: str = "label", predictionCol: str = "prediction",
                 probabilityCol: str = "probability", layers: list[int] | None = None, maxEpochs: int = 5,
                 stepSize: float = 0.05, momentum: float = 0.9, batchSize: int = 128, sync: str = "average",
                 syncEvery: int = 50, seed: int = 0):
        super().__init__()
        self._set(**self._input_kwargs)

    def _fit(self, dataset: Any) -> NeuralNetClassificationModel:
        from descend import nn

        network = nn.MLP(self._check_layers(), activation="relu", rng=self.getOrDefault(self.seed))
        self._train(network, nn.CrossEntropyLoss(), dataset, self.getLabelCol())
        return self._copyValues(NeuralNetClassificationModel(network))


class NeuralNetClassificationModel(_NetworkModel, _NetworkParams, HasProbabilityCol):
    """The fitted classifier: adds predictionCol and probabilityCol."""

    def _transform(self, dataset: Any) -> Any:
        from descend.spark.predict import predict_spark

        return predict_spark(self.network, dataset, self.getFeaturesCol(), self.getPredictionCol(),
                             probability=self.getProbabilityCol() or None)


class NeuralNetRegressor(Estimator, _NetworkParams, _SavedAsParams):
    """A ReLU MLP regressor (mean squared error) trained with fit_spark; layers end in 1 for one target."""

    @keyword_only
    def __init__(self, *, featuresCol: str = "features", labelCol: str = "label", predictionCol: str = "prediction",
                 layers: list[int] | None = None, maxEpochs: int = 5, stepSize: float = 0.01, momentum: float = 0.9,
                 batchSize: int = 128, sync: str = "average", syncEvery: int = 50, seed: int = 0):
        super().__init__()
        self._setDefault(stepSize=0.01)
        self._set(**self._input_kwargs)

    def _fit(self, dataset: Any) -> NeuralNetRegressionModel:
        from descend import nn

        layers = self._check_layers()
        if layers[-1] != 1:
            raise DescendValueError(f"NeuralNetRegressor predicts one target: layers must end in 1; got {layers}")
        network = nn.MLP(layers, activation="relu", rng=self.getOrDefault(self.seed))
        self._train(network, nn.MSELoss(), dataset, self.getLabelCol())
        return self._copyValues(NeuralNetRegressionModel(network))


class NeuralNetRegressionModel(_NetworkModel, _NetworkParams):
    """The fitted regressor: adds predictionCol (double)."""

    def _transform(self, dataset: Any) -> Any:
        from descend.spark.predict import predict_spark

        return predict_spark(self.network, dataset, self.getFeaturesCol(), self.getPredictionCol())


class _AnomalyParams(_NetworkParams):
    scoreCol = Param(Params._dummy(), "scoreCol", "column for the reconstruction error (higher: more anomalous)",
                     typeConverter=TypeConverters.toString)
    contamination = Param(Params._dummy(), "contamination",
                          "fraction of the training rows expected anomalous: sets the threshold",
                          typeConverter=TypeConverters.toFloat)
    threshold = Param(Params._dummy(), "threshold", "reconstruction error above which a row is anomalous (learned)",
                      typeConverter=TypeConverters.toFloat)

    def __init__(self, *args: Any):
        super().__init__(*args)
        self._setDefault(scoreCol="anomalyScore", contamination=0.01, stepSize=1e-3)


class AutoencoderAnomalyDetector(Estimator, _AnomalyParams, _SavedAsParams):
    """An autoencoder (layers: the encoder's widths, input first) trained to rebuild normal rows; no label needed.

    Its model adds scoreCol (the reconstruction error) and predictionCol (1.0 where the score is above
    the threshold: the (1 − contamination) quantile of the training rows' scores, else 0.0).
    """

    @keyword_only
    def __init__(self, *, featuresCol: str = "features", predictionCol: str = "prediction",
                 scoreCol: str = "anomalyScore", layers: list[int] | None = None, maxEpochs: int = 5,
                 stepSize: float = 1e-3, momentum: float = 0.9, batchSize: int = 128, sync: str = "average",
                 syncEvery: int = 50, contamination: float = 0.01, seed: int = 0):
        super().__init__()
        self._set(**self._input_kwargs)

    def _fit(self, dataset: Any) -> AutoencoderAnomalyModel:
        from descend import nn
        from descend.spark.predict import predict_spark

        contamination = self.getOrDefault(self.contamination)
        if not 0 < contamination < 0.5:
            raise DescendValueError(f"contamination must be in (0, 0.5); got {contamination}")
        network = nn.Autoencoder(self._check_layers(), activation="relu", output="linear",
                                 rng=self.getOrDefault(self.seed))
        self._train(network, nn.MSELoss(), dataset, None)
        scored = predict_spark(network, dataset.select(self.getFeaturesCol()), self.getFeaturesCol(),
                               "__reconstruction", score="__score")
        threshold = scored.approxQuantile("__score", [1.0 - contamination], 1e-4)[0]
        model = self._copyValues(AutoencoderAnomalyModel(network))
        return model._set(threshold=float(threshold))


class AutoencoderAnomalyModel(_NetworkModel, _AnomalyParams):
    """The fitted detector: adds scoreCol and predictionCol (1.0 anomalous, 0.0 normal)."""

    def _transform(self, dataset: Any) -> Any:
        from pyspark.sql import functions

        from descend.spark.predict import predict_spark

        scored = predict_spark(self.network, dataset, self.getFeaturesCol(), "__reconstruction",
                               score=self.getOrDefault(self.scoreCol)).drop("__reconstruction")
        above = functions.col(self.getOrDefault(self.scoreCol)) > float(self.getOrDefault(self.threshold))
        return scored.withColumn(self.getPredictionCol(), above.cast("double"))
