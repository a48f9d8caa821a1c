"""The reference monitoring approach of docs/recipes.md ("simple"), as a LambdaCallback.

At every epoch end it re-predicts the whole validation set, builds the confusion
matrix with scikit-learn, normalises its rows (2 decimals) into a pandas
DataFrame, draws a seaborn heatmap through pyplot, encodes it to PNG in memory,
decodes it again with TensorFlow and writes it with `tf.summary.image` to
`<logdir>/cm`. All of this runs on the training thread. (The benchmark workers
set MPLBACKEND=Agg, so pyplot never needs a display.)
"""

from __future__ import annotations

import io

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import tensorflow as tf
from sklearn.metrics import confusion_matrix


def plot_to_image(figure) -> tf.Tensor:
    """The pyplot figure as a (1, H, W, 4) uint8 tensor; closes the figure."""
    buf = io.BytesIO()
    plt.savefig(buf, format="png")
    plt.close(figure)
    buf.seek(0)
    image = tf.image.decode_png(buf.getvalue(), channels=4)
    return tf.expand_dims(image, 0)


def reference_callback(model: keras.Model, x_val: np.ndarray, y_val: np.ndarray,
                       class_names, logdir: str) -> keras.callbacks.LambdaCallback:
    """LambdaCallback writing the validation confusion heatmap of `model` every epoch.

    `y_val` holds integer labels. `model.predict` runs with `verbose=0` (the
    reference prints a progress bar; leaving it out only makes the reference faster).
    """
    file_writer = tf.summary.create_file_writer(logdir + "/cm")
    y_true = np.asarray(y_val).reshape(-1)
    names = [str(c) for c in class_names]

    def log_confusion_matrix(epoch, logs):
        y_pred = np.argmax(model.predict(x_val, verbose=0), axis=1)
        cm = confusion_matrix(y_true, y_pred)
        cm = np.around(cm.astype("float") / cm.sum(axis=1)[:, np.newaxis], decimals=2)
        frame = pd.DataFrame(cm, index=names, columns=names)
        figure = plt.figure(figsize=(8, 8))
        sns.heatmap(frame, annot=True, cmap=plt.cm.Blues)
        plt.tight_layout()
        plt.ylabel("True label")
        plt.xlabel("Predicted label")
        image = plot_to_image(figure)
        with file_writer.as_default():
            tf.summary.image("Confusion Matrix", image, step=epoch)

    return keras.callbacks.LambdaCallback(on_epoch_end=log_confusion_matrix)
