"""A search's worker process: `python -m descend.tune.worker OBJECTIVE.pickle`, started by descend.tune.local.

It loads the objective its parent pickled for it, then runs one trial per JSON line read from stdin
({"trial_id", "number", "params", "seed"}) and answers each with one JSON line, the TrialResult, until
stdin closes. The study is opened once, over the same storage as the parent's, to report each epoch and
ask the pruner. Whatever the build function prints goes to stderr: stdout carries only the answers.
The parent sets the thread variables (descend.tune.local.THREAD_VARIABLES) before NumPy loads here.
"""

from __future__ import annotations

import json
import os
import pickle
import sys


def main(payload: str) -> None:
    """Serve trials of the objective in the file `payload` until stdin closes."""
    import optuna

    from descend.tune.objective import TrialTask, open_storage, run_trial
    from descend.tune.pruning import make_pruner

    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr
    with open(payload, "rb") as stream:
        objective = pickle.load(stream)  # written by this worker's parent for it alone, never a user's file
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=objective.study_name, storage=open_storage(objective.storage_url),
                              pruner=make_pruner(objective.pruner, objective.epochs))
    for line in sys.stdin:
        task = TrialTask(**json.loads(line))
        result = run_trial(objective, task, study)
        answers.write(json.dumps(result.record()) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
