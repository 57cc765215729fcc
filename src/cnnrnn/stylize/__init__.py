"""Neural style transfer: the style of one image over the content of another.

Two methods on one loss: ``optimize`` (Gatys et al.: optimize the image itself) and ``feedforward``
(Johnson et al.: a style network per style, trained with Lightning on many content crops, then one
pass per image). Same parts as every application: ``data``, ``datamodule``, ``network``, ``model``,
``evaluate``, ``predict``; plus ``features`` (loss and evaluation networks, Gram matrices),
``loss_network`` (building or fitting the loss network), ``optimize`` and ``measures`` (the grades).
"""
