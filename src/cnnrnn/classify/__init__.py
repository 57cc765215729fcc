"""Image classification: a CNN that names the class of a whole image (digits, clothes, objects).

Parts, the same in every application:
``data`` (prepare raw files into tensors; no Lightning), ``datamodule`` (LightningDataModule),
``network`` (the plain ``nn.Module``), ``model`` (the LightningModule), ``evaluate``
(metrics and pictures) and ``predict`` (command line and MLflow pyfunc).
"""
