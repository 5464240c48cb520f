"""Data: the offline data pack, a user's CSV/TSV/JSONL files and Hugging Face ``datasets``.

Every source returns a :class:`TaskData`; the rest of the tool never knows where the data came from.
Importing this package registers the three sources in :data:`DATA_SOURCES`.
"""

from adaptermix.data import datapack, files, hub  # noqa: F401  (register the sources)
from adaptermix.data.config import DATA_ENV, ColumnMap, DataConfig, resolve_data_dir, resolve_data_root
from adaptermix.data.datapack import list_datapack
from adaptermix.data.hub import HUB_DATASETS
from adaptermix.data.sampling import stratified_sample, stratified_split
from adaptermix.data.schema import SPLITS, Example, TaskData, TaskInfo
from adaptermix.data.sources import DATA_SOURCES, load_task

__all__ = [
    "DATA_ENV",
    "DATA_SOURCES",
    "HUB_DATASETS",
    "SPLITS",
    "ColumnMap",
    "DataConfig",
    "Example",
    "TaskData",
    "TaskInfo",
    "list_datapack",
    "load_task",
    "resolve_data_dir",
    "resolve_data_root",
    "stratified_sample",
    "stratified_split",
]
