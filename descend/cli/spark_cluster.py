"""`descend spark-cluster up|down`: a Spark standalone cluster on this machine, to train on as on a real one."""

from __future__ import annotations

import click

#: where `up` keeps the cluster's logs, work directories and cluster.json by default
DEFAULT_FOLDER = "runs/spark-cluster"


@click.group("spark-cluster")
def spark_cluster() -> None:
    """Start or stop a Spark standalone cluster on 127.0.0.1 (a Master and Workers, from pyspark's own Spark).

    Example: descend spark-cluster up --workers 2 --cores 1, then descend train --engine spark --master URL
    """


@spark_cluster.command("up")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True, help="Worker daemons.")
@click.option("--cores", type=click.IntRange(min=1), default=1, show_default=True, help="Cores of each Worker.")
@click.option("--memory", default="1g", show_default=True, help="Memory of each Worker, e.g. 512m or 2g.")
@click.option("--folder", type=click.Path(file_okay=False), default=DEFAULT_FOLDER, show_default=True,
              help="Logs, the Workers' work directories and cluster.json (what `down` reads).")
def up(workers: int, cores: int, memory: str, folder: str) -> None:
    """Start the Master and the Workers, wait until all are registered, print the master URL; they keep running.

    Example: descend spark-cluster up --workers 2 --cores 1 --folder runs/spark-cluster
    """
    from descend.spark.cluster import StandaloneCluster

    cluster = StandaloneCluster(folder, workers=workers, cores=cores, memory=memory)
    click.echo(cluster.start())
    click.echo(f"web UI {cluster.web_url}; stop it with: descend spark-cluster down {folder}", err=True)


@spark_cluster.command("down")
@click.argument("folder", type=click.Path(file_okay=False), default=DEFAULT_FOLDER)
def down(folder: str) -> None:
    """Stop the cluster `up` started in FOLDER: every daemon and executor, SIGTERM then SIGKILL.

    Example: descend spark-cluster down runs/spark-cluster
    """
    from descend.spark.cluster import stop_recorded

    stopped = stop_recorded(folder)
    click.echo(f"stopped {len(stopped)} Spark daemons of the cluster in {folder}")
