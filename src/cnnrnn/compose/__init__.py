"""compose: polyphonic music from MIDI. An LSTM over piano-roll frames (one Bernoulli output per pitch, each
pitch given the ones below it in its frame by a NADE, or independently: ``compose.model.frame_output``),
against two baselines (each pitch at its training frequency; the previous frame again), and new pieces
sampled from it, written as MIDI and WAV.

Parts (the application protocol, :mod:`cnnrnn.registry`): ``data`` (MIDI from the music21 corpus, JSB JSON or
a folder -> piano rolls), ``model`` (the LightningModule), ``evaluate`` (NLL, frame accuracy, generated
pieces), ``predict`` (scoring a MIDI file, ``cnnrnn generate compose``, the MLflow model).
"""
