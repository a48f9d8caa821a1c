"""`model.keras`: the trained model, saved at the end of a run and loaded only with safe_mode=True."""

from __future__ import annotations

import json
import os
import zipfile

from monitor.errors import MonitorError

FILE = "model.keras"


def path(run_dir: str) -> str:
    return os.path.join(run_dir, FILE)


def saved_config(file_path: str) -> dict:
    """The architecture JSON inside a `.keras` file, read as plain JSON (nothing deserialized)."""
    with zipfile.ZipFile(file_path) as archive:
        return json.loads(archive.read("config.json"))


def load(file_path: str):
    """`keras.saving.load_model(file_path, safe_mode=True)`; a file holding code (a `Lambda`
    layer, say) is refused with a MonitorError saying so, never run."""
    import keras

    try:
        return keras.saving.load_model(file_path, safe_mode=True)
    except ValueError as err:
        if "safe_mode" in str(err) or "Lambda" in str(err) or "unsafe" in str(err).lower():
            raise MonitorError(
                f"{file_path} holds code (a Lambda layer or other custom Python), which is never loaded: "
                "safe_mode=True refused it. Use a model built from stock Keras layers"
            ) from None
        raise MonitorError(f"cannot load {file_path}: {str(err).splitlines()[0]}") from None
    except OSError as err:
        raise MonitorError(f"cannot load {file_path}: {err}") from None
