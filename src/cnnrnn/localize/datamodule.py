"""The localize ``LightningDataModule``: batches of (images, boxes, labels) from prepared tensors."""

from __future__ import annotations

from cnnrnn.tensor_datamodule import TensorSplitsDataModule


class LocalizationDataModule(TensorSplitsDataModule):
    """(uint8 image (C, S, S) -> floats in [0, 1], box [x, y, w, h] in input pixels, label)."""

    fields = ("images", "boxes", "labels")

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, boxes, labels = batch
        return images.float().div_(255), boxes, labels
