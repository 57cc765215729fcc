"""Object detection: every digit (or COCO object) in an image, with its class and box.

A CenterNet-style single-stage detector trained from scratch; decoding and NMS in plain
PyTorch; evaluation with pycocotools' COCOeval. Same parts as every application: ``data``,
``datamodule``, ``network``, ``model``, ``evaluate``, ``predict``; and its own ``centernet``
(targets, loss, decoding) and ``boxes`` (IoU, NMS).
"""
