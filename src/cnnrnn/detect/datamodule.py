"""The detect ``LightningDataModule``: prepared tensors in memory; batches of (images, boxes, labels)."""

from __future__ import annotations

from pathlib import Path

import torch

from cnnrnn.tensor_datamodule import TensorSplitsDataModule


class DetectionDataModule(TensorSplitsDataModule):
    """(uint8 image (C, S, S) -> floats in [0, 1], boxes (M, 4) COCO input pixels, labels (M,), -1 = padding)."""

    fields = ("images", "boxes", "labels")

    def __init__(self, prepared: Path, batch_size: int, num_workers: int, horizontal_flip: bool):
        super().__init__(prepared, batch_size, num_workers)
        self.horizontal_flip = horizontal_flip

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, boxes, labels = batch
        images = images.float().div_(255)
        if self.horizontal_flip and self.trainer is not None and self.trainer.training:
            # Mirror half the batch, boxes with it (digits are not mirror-symmetric: off by default).
            flip = torch.rand(images.shape[0], device=images.device) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
            mirrored = boxes.clone()
            mirrored[..., 0] = images.shape[-1] - boxes[..., 0] - boxes[..., 2]
            boxes = torch.where(flip[:, None, None], mirrored, boxes)
        return images, boxes, labels
