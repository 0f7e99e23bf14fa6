"""Custom loading for the 'ingest' steps (used when recipe.yaml names a loader_method)."""

import pandas as pd


def load_file_as_dataframe(file_path: str, file_format: str) -> pd.DataFrame:
    """Reads one file of a format the recipe does not read natively."""
    if file_format == "json":
        return pd.read_json(file_path, lines=True)
    raise NotImplementedError(f"no loader for {file_format}")
