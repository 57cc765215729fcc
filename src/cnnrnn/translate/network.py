"""An encoder-decoder RNN with attention (Bahdanau et al. 2015 or Luong et al. 2015, by ``translate.model``).

- Encoder: embeddings, a bidirectional GRU or LSTM over the source tokens (packed: padding never
  enters a state); a bridge turns its last states into the decoder's first state.
- Decoder: one GRU or LSTM cell, one target token a step. Attention scores every source position
  against the decoder's state; the weighted sum of the encoder's outputs (the *context*) tells the
  decoder which source words it is translating now, whatever their order.
  - ``bahdanau`` (additive): ``v . tanh(W q + U k)``, from the state *before* the step; the context is
    an input of the cell.
  - ``luong`` (general): ``q . W k``, from the state *after* the step; the context and the state make the
    output (and feed the next step's input).
- Training uses teacher forcing (the true previous token is the next input); :func:`greedy_decode` and
  :func:`beam_search` decode new text. Torch only: no Lightning, no MLflow.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from cnnrnn.translate.tokens import BOS, EOS, PAD


class Attention(nn.Module):
    """Scores (B, S) of the keys against a query, softmax over the unmasked source positions."""

    def __init__(self, kind: str, query_size: int, key_size: int, size: int):
        super().__init__()
        if kind not in ("bahdanau", "luong"):
            from cnnrnn.errors import UserError

            raise UserError(f"translate.model.attention is {kind!r}; use bahdanau or luong")
        self.kind = kind
        if kind == "bahdanau":
            self.key_layer = nn.Linear(key_size, size, bias=False)
            self.query_layer = nn.Linear(query_size, size, bias=False)
            self.energy = nn.Linear(size, 1, bias=False)
        else:
            self.key_layer = nn.Linear(key_size, query_size, bias=False)

    def prepare_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """(B, S, K) encoder outputs -> projected keys, computed once per sentence."""
        return self.key_layer(keys)

    def forward(self, query: torch.Tensor, projected: torch.Tensor, values: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, Q), projected keys (B, S, *), values (B, S, K), mask (B, S) True at real tokens
        -> context (B, K), weights (B, S)."""
        if self.kind == "bahdanau":
            scores = self.energy(torch.tanh(projected + self.query_layer(query)[:, None])).squeeze(2)
        else:
            scores = torch.bmm(projected, query[:, :, None]).squeeze(2)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        return torch.bmm(weights[:, None], values).squeeze(1), weights


class Seq2Seq(nn.Module):
    """Source ids (B, S) -> target logits (B, T, V). ``cfg``: ``cell``, ``attention``, ``embedding_dim``,
    ``hidden``, ``encoder_layers``, ``dropout``, ``tie_embeddings``."""

    def __init__(self, cfg: dict[str, Any], vocabulary_size: int):
        super().__init__()
        cell, hidden, emb = cfg["cell"], cfg["hidden"], cfg["embedding_dim"]
        if cell not in ("gru", "lstm"):
            from cnnrnn.errors import UserError

            raise UserError(f"translate.model.cell is {cell!r}; use gru or lstm")
        self.cell_kind, self.attention_kind, self.hidden = cell, cfg["attention"], hidden
        self.source_embedding = nn.Embedding(vocabulary_size, emb, padding_idx=PAD)
        self.target_embedding = nn.Embedding(vocabulary_size, emb, padding_idx=PAD)
        layers = cfg["encoder_layers"]
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.encoder = rnn(emb, hidden, layers, batch_first=True, bidirectional=True,
                           dropout=cfg["dropout"] if layers > 1 else 0.0)
        self.bridge = nn.Linear(2 * hidden, hidden)
        self.attention = Attention(cfg["attention"], hidden, 2 * hidden, hidden)
        out_size = emb if cfg["tie_embeddings"] else hidden  # what the output layer reads
        # bahdanau: the cell reads [previous token, context]; luong: [previous token, previous attentional output]
        self.feed_size = 2 * hidden if self.attention_kind == "bahdanau" else out_size
        self.decoder = (nn.GRUCell if cell == "gru" else nn.LSTMCell)(emb + self.feed_size, hidden)
        combined = hidden + 2 * hidden + (emb if self.attention_kind == "bahdanau" else 0)
        self.combine = nn.Linear(combined, out_size)
        self.output = nn.Linear(out_size, vocabulary_size)
        if cfg["tie_embeddings"]:
            self.output.weight = self.target_embedding.weight
        self.dropout = nn.Dropout(cfg["dropout"])
        for embedding in (self.source_embedding, self.target_embedding):  # N(0, 1/E): tied logits start small
            nn.init.normal_(embedding.weight, std=emb ** -0.5)
            with torch.no_grad():
                embedding.weight[PAD].zero_()

    # ------------------------------------------------------------------ encoder
    def encode(self, source: torch.Tensor, lengths: torch.Tensor) -> dict[str, Any]:
        """source (B, S), lengths (B,) -> what every decoder step needs: outputs (B, S, 2H), projected keys,
        mask (B, S), first state, first feed."""
        embedded = self.dropout(self.source_embedding(source))  # (B, S, E)
        packed = pack_padded_sequence(embedded, lengths.cpu().clamp_min(1), batch_first=True, enforce_sorted=False)
        outputs, state = self.encoder(packed)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=source.size(1))  # (B, S, 2H)
        h = state[0] if self.cell_kind == "lstm" else state  # (2 * layers, B, H)
        first = torch.tanh(self.bridge(torch.cat([h[-2], h[-1]], dim=1)))  # (B, H)
        decoder_state = (first, torch.zeros_like(first)) if self.cell_kind == "lstm" else first
        return {"outputs": outputs, "keys": self.attention.prepare_keys(outputs),
                "mask": source != PAD, "state": decoder_state, "feed": outputs.new_zeros(len(source), self.feed_size)}

    # ------------------------------------------------------------------ decoder
    def step(self, previous: torch.Tensor, state, feed: torch.Tensor, memory: dict[str, Any]):
        """One target token. previous (B,) ids -> logits (B, V), new state, new feed, attention weights (B, S)."""
        embedded = self.dropout(self.target_embedding(previous))  # (B, E)
        h = state[0] if self.cell_kind == "lstm" else state
        if self.attention_kind == "bahdanau":
            context, weights = self.attention(h, memory["keys"], memory["outputs"], memory["mask"])
            state = self.decoder(torch.cat([embedded, context], dim=1), state)
            h = state[0] if self.cell_kind == "lstm" else state
            output = torch.tanh(self.combine(torch.cat([h, context, embedded], dim=1)))
            feed = context
        else:
            state = self.decoder(torch.cat([embedded, feed], dim=1), state)
            h = state[0] if self.cell_kind == "lstm" else state
            context, weights = self.attention(h, memory["keys"], memory["outputs"], memory["mask"])
            output = torch.tanh(self.combine(torch.cat([h, context], dim=1)))
            feed = output
        return self.output(self.dropout(output)), state, feed, weights

    def forward(self, source: torch.Tensor, lengths: torch.Tensor, target_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: target_in (B, T) starts with <s> -> logits (B, T, V)."""
        memory = self.encode(source, lengths)
        state, feed, logits = memory["state"], memory["feed"], []
        for t in range(target_in.size(1)):
            step_logits, state, feed, _ = self.step(target_in[:, t], state, feed, memory)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)


def _select(state, index: torch.Tensor):
    return tuple(s[index] for s in state) if isinstance(state, tuple) else state[index]


@torch.no_grad()
def greedy_decode(model: Seq2Seq, source: torch.Tensor, lengths: torch.Tensor,
                  max_length: int) -> tuple[list[list[int]], list[torch.Tensor]]:
    """The most likely next token at every step, for a batch. Out: ids per sentence (without <s> and </s>)
    and attention (T, S) per sentence."""
    memory = model.encode(source, lengths)
    state, feed = memory["state"], memory["feed"]
    previous = torch.full((len(source),), BOS, dtype=torch.long)
    tokens, weights, done = [], [], torch.zeros(len(source), dtype=torch.bool)
    for _ in range(max_length):
        logits, state, feed, w = model.step(previous, state, feed, memory)
        previous = logits.argmax(dim=1)
        tokens.append(previous)
        weights.append(w)
        done |= previous == EOS
        if bool(done.all()):
            break
    tokens_t, weights_t = torch.stack(tokens, dim=1), torch.stack(weights, dim=1)  # (B, T), (B, T, S)
    out_ids, out_weights = [], []
    for b in range(len(source)):
        ids = tokens_t[b].tolist()
        end = ids.index(EOS) if EOS in ids else len(ids)
        out_ids.append(ids[:end])
        out_weights.append(weights_t[b, :end, : int(lengths[b])])
    return out_ids, out_weights


@torch.no_grad()
def beam_search(model: Seq2Seq, source: torch.Tensor, width: int, max_length: int,
                length_penalty: float = 1.0) -> tuple[list[int], torch.Tensor]:
    """The best of ``width`` hypotheses for one sentence, source (S,) ids. A finished hypothesis is scored by its
    log-probability / length ** ``length_penalty``. Width 1 is greedy decoding.
    Out: ids (without <s> and </s>) and attention (T, S)."""
    memory = model.encode(source[None], torch.tensor([len(source)]))
    scores = torch.zeros(1)
    hypotheses: list[list[int]] = [[]]
    attention: list[list[torch.Tensor]] = [[]]
    previous = torch.tensor([BOS])
    state, feed = memory["state"], memory["feed"]
    finished: list[tuple[float, list[int], list[torch.Tensor]]] = []
    for _ in range(max_length):
        logits, state, feed, w = model.step(previous, state, feed, memory)
        total = scores[:, None] + F.log_softmax(logits, dim=1)  # (k, V)
        # 2 x width candidates: an ending among the best `width` finishes a hypothesis, and `width` others stay alive
        best, flat = total.view(-1).topk(min(2 * width, total.numel()))
        rows, tokens = flat // total.size(1), flat % total.size(1)
        keep_rows, keep_tokens, keep_scores = [], [], []
        for rank, (score, row, token) in enumerate(zip(best.tolist(), rows.tolist(), tokens.tolist())):
            if token == EOS:
                if rank < width:
                    length = len(hypotheses[row]) + 1  # the tokens scored, </s> included
                    finished.append((score / length ** length_penalty, hypotheses[row], attention[row]))
            elif len(keep_rows) < width:
                keep_rows.append(row)
                keep_tokens.append(token)
                keep_scores.append(score)
        if len(finished) >= width or not keep_rows:
            break
        index = torch.tensor(keep_rows)
        hypotheses = [hypotheses[r] + [t] for r, t in zip(keep_rows, keep_tokens)]
        attention = [attention[r] + [w[r]] for r in keep_rows]
        scores = torch.tensor(keep_scores)
        state, feed = _select(state, index), feed[index]
        memory = {**memory, **{k: memory[k][index] for k in ("outputs", "keys", "mask")}}
        previous = torch.tensor(keep_tokens)
    if not finished:  # nothing ended within max_length: the best unfinished hypothesis (its tokens scored: len(h))
        finished = [(float(s) / max(1, len(h)) ** length_penalty, h, a) for s, h, a in zip(scores.tolist(), hypotheses, attention)]
    score, ids, weights = max(finished, key=lambda f: f[0])
    return ids, torch.stack(weights) if weights else torch.zeros(0, len(source))
