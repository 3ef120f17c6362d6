"""The run folder: what ``lgn train`` writes into it, who may write it, and how to read a run back.

A run folder holds ``config.json`` (the resolved settings), ``metrics.jsonl``
(one JSON object per epoch), ``run.json`` (what is not a setting: the run it
started from, its extensions, its best epoch), ``model.safetensors`` +
``model.json`` (the latest model, :func:`lgn.models.load_model`),
``model-best.safetensors`` (the best epoch's weights), ``preprocess.safetensors`` (the input
scaling fitted on the training data), two checkpoint slots
(:mod:`lgn.train.checkpoint`) and, with TensorBoard, ``tensorboard/``; ``lgn
analyze`` adds ``analysis/``, and ``lgn reproduce`` adds ``machines.jsonl`` and,
when the run is finished, ``reproduce.json``.

- :mod:`lgn.runs.layout`: the file names, the folder checks and the writer's lock;
- :mod:`lgn.runs.records`: the JSON records (settings, metrics, machines, reproduce record);
- :mod:`lgn.runs.load`: the trained model and a split of its data, read back.

Every other package reads and writes run folders through this one. It sits
above models and data, whose files it names, and below the trainer and the
analysis, which both use it without importing each other.
"""

from lgn.runs.layout import (
    ANALYSIS_DIR,
    BEST_WEIGHTS_FILE,
    CONFIG_FILE,
    LOCK_FILE,
    MACHINES_FILE,
    METRICS_FILE,
    MODEL_CONFIG_FILE,
    PREPROCESS_FILE,
    RECORD_FILE,
    RUN_FILES,
    RUN_RECORD_FILE,
    TENSORBOARD_DIR,
    WEIGHTS_FILE,
    RunFolderBusy,
    check_run_dir,
    clear_run_files,
    lock_run_dir,
)
from lgn.runs.load import LoadedRun, RunModel, load_run, load_run_split
from lgn.runs.records import (
    MachineNote,
    append_metrics,
    cpu_model,
    read_config,
    read_metrics,
    read_record,
    read_run_record,
    trained_on,
    write_config,
    write_metrics,
    write_record,
    write_run_record,
)

__all__ = [
    "CONFIG_FILE", "METRICS_FILE", "MODEL_CONFIG_FILE", "WEIGHTS_FILE", "BEST_WEIGHTS_FILE", "PREPROCESS_FILE",
    "RUN_RECORD_FILE", "TENSORBOARD_DIR", "MACHINES_FILE", "RECORD_FILE", "ANALYSIS_DIR", "LOCK_FILE", "RUN_FILES",
    "RunFolderBusy", "check_run_dir", "lock_run_dir", "clear_run_files",
    "read_config", "write_config", "read_metrics", "write_metrics", "append_metrics", "read_run_record",
    "write_run_record",
    "MachineNote", "trained_on", "cpu_model", "read_record", "write_record",
    "RunModel", "load_run", "LoadedRun", "load_run_split",
]
