"""Datasets and preprocessing.

``get_dataset(name)`` returns a :class:`Dataset` of raw-scale float32 images
``(N, C, H, W)`` and int64 labels; :func:`fit_preprocessing` fits the
standardisation (and optional ZCA) that the trainer applies.
"""

from lgn.data.dataset import Dataset, from_arrays
from lgn.data.preprocess import Preprocessing, fit_preprocessing, load_preprocessing, save_preprocessing
from lgn.data.registry import dataset_names, get_dataset, register_dataset, register_prefix

__all__ = ["Dataset", "from_arrays", "get_dataset", "dataset_names", "register_dataset", "register_prefix",
           "Preprocessing", "fit_preprocessing", "save_preprocessing", "load_preprocessing"]
