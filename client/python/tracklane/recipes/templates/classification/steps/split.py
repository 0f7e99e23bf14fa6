"""Post-split filtering of the 'split' step: which rows to keep."""

from pandas import DataFrame, Series


def create_dataset_filter(dataset: DataFrame) -> Series:
    """Keeps rows whose features are all present."""
    return ~dataset.isna().any(axis=1)
