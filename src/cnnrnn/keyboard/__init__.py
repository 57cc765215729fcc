"""keyboard: next-word suggestions (a word LSTM against an n-gram) and character-level text generation."""
