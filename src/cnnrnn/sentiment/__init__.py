"""sentiment: is a sentence positive or negative, where word order matters ("good, not bad" vs "bad, not good").

Three models on the same data: a bag of words, a fixed window of the last words, and an
RNN over the whole sentence; a generated contrast set measures who can read word order.
"""
