"""Training and inference on Apache Spark: the same model, loss and optimizer as `fit`, over a DataFrame.

`fit_spark` trains data-parallel on the executors (sync="gradient" or "average", descend.spark.engine);
`predict_spark` adds the model's outputs as DataFrame columns. Local mode (`master("local[2]")`) is
the embedded default; the same code runs on a cluster under spark-submit.
"""

from descend.spark.engine import SYNCS, TaskInfo, fit_spark
from descend.spark.predict import predict_spark
from descend.spark.session import spark_session, to_dataframe

__all__ = ["SYNCS", "TaskInfo", "fit_spark", "predict_spark", "spark_session", "to_dataframe"]
