"""translate: English to French (or Spanish) with a sequence-to-sequence RNN with attention, against
copying the source and translating word by word (the seed's "translating each word").

Parts (the application protocol, :mod:`cnnrnn.registry`): ``data`` (catalog, rule, tutorial and TSV pairs;
tokens), ``model`` (the LightningModule), ``evaluate`` (sacreBLEU with intervals, baselines, attention
pictures), ``predict`` (``cnnrnn predict translate``, the MLflow model).
"""
