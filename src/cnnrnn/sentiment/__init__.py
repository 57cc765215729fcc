"""sentiment: is a sentence positive or negative, where word order matters ("good, not bad" vs "bad, not good").

Four models on the same data: a bag of words, a fixed window of the last words, a CNN over
the whole sentence and an RNN; generated contrast sets measure who can read word order, on
constructions seen in training and on constructions never seen.
"""
