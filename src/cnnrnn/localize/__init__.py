"""Single-object localization: the class of the one object in an image and its box.

The seed's R-CNN idea reduced to one object: the classify CNN with four more outputs,
the box (centre x, centre y, width, height as fractions of the image). Same parts as every
application: ``data``, ``datamodule``, ``network``, ``model``, ``evaluate``, ``predict``.
"""
