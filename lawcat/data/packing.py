"""Turn task samples and texts into causal-LM training batches, in a resumable order.

Pipeline::

    encoded = encode_all(tokenizer, samples_or_texts, loss="completion")   # ids + labels
    rows    = pack_rows(encoded, seq_len=2048)                              # optional: fixed rows
    it      = BatchIterator(rows or encoded, batch_size=8, pad_id=pad_token_id(tokenizer), seed=0)
    for batch in it: ...            # {"input_ids", "attention_mask", "labels"} LongTensors [B, T]
    state = it.state_dict()         # save with the checkpoint; it.load_state_dict(state) resumes

Encoding: the prompt is tokenized exactly as at evaluation (``tokenizer(prompt)``, special tokens
included) and the completion (a TaskSample's ``target``, a TextExample's ``completion``) is
tokenized on its own and appended, so the model is trained on the very token sequence it will see
at test time.  ``labels`` follow the Hugging Face convention (aligned with ``input_ids``, the
model shifts them) with ``-100`` outside the loss span: the completion by default, or every
non-special token with ``loss="all"``.

Chats (:class:`~lawcat.data.text.ChatExample`) are rendered with the tokenizer's chat template and
tokenized as one text, as ``apply_chat_template`` would; with ``loss="completion"`` the labels cover
each assistant turn as the template writes it (its content and end-of-turn marker), found by
rendering the conversation up to that turn.  The template ends every turn itself, so no EOS is added.

Order: :class:`ResumableSampler` draws each epoch's batch order from ``(seed, epoch)`` only, so
"batches consumed so far" is the whole resume state and a resumed run sees exactly the batches an
uninterrupted run would have seen.  With ``bucket=True`` examples of similar length share a batch
(less padding): shuffle, sort by length inside windows of ``bucket_window`` batches, cut, then
shuffle the batches.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import DataError
from .sample import TaskSample
from .text import ChatExample, TextExample

if TYPE_CHECKING:  # torch is imported lazily: the generators do not need it
    import torch

IGNORE_INDEX = -100
LOSS_SPANS = ("completion", "all")


@dataclass
class Encoded:
    """One token sequence with its labels (``IGNORE_INDEX`` where no loss is taken)."""

    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


def pad_token_id(tokenizer) -> int:
    """The tokenizer's pad id, else its EOS id, else 0 (padding is masked out anyway)."""
    for attr in ("pad_token_id", "eos_token_id"):
        v = getattr(tokenizer, attr, None)
        if isinstance(v, int):
            return v
    return 0


def _special_frame(tokenizer) -> tuple[list[int], list[int]]:
    """(ids the tokenizer puts before a text, ids it puts after), e.g. ([BOS], [])."""
    probe = "a"
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(plain) + 1):
        if full[i:i + len(plain)] == plain:
            return list(full[:i]), list(full[i + len(plain):])
    return [], []


def _parts(item) -> tuple[str, str]:
    if isinstance(item, TaskSample):
        return item.prompt, item.target
    if isinstance(item, TextExample):
        return item.prompt, item.completion
    if isinstance(item, str):
        return "", item
    if isinstance(item, tuple) and len(item) == 2 and all(isinstance(x, str) for x in item):
        return item
    raise DataError(f"cannot encode a {type(item).__name__}; give TaskSample, TextExample, str or "
                    f"(prompt, completion) tuples")


def _render(tokenizer, messages, where: str, generation_prompt: bool = False) -> str:
    try:
        return tokenizer.apply_chat_template([{"role": r, "content": c} for r, c in messages], tokenize=False,
                                             add_generation_prompt=generation_prompt)
    except Exception as e:  # jinja's TemplateError and the template's own raise_exception (role order, ...)
        raise DataError(f"chat {where}: the teacher's chat template refused it ({type(e).__name__}: {e})") from e


def chat_text(tokenizer, chat: ChatExample) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns.

    A turn's span is what rendering through that turn adds to rendering the conversation before it with the
    generation prompt; a template that renders earlier turns differently once later ones follow (some strip
    reasoning from past turns) has no such spans and is refused."""
    where = chat.source or "example"
    if getattr(tokenizer, "chat_template", None) is None:
        raise DataError(f"chat {where}: the teacher's tokenizer has no chat template, so chat-format data cannot "
                        'be rendered; use {"prompt", "completion"} lines or a teacher with a template')
    text = _render(tokenizer, chat.messages, where)
    spans = []
    for i, (role, content) in enumerate(chat.messages):
        if role != "assistant":
            continue
        through = _render(tokenizer, chat.messages[:i + 1], where)
        if i:
            before = _render(tokenizer, chat.messages[:i], where, generation_prompt=True)
            start = len(before) if through.startswith(before) else -1
        else:  # an opening turn has no generation prompt to render before it: from its content on
            start = through.rfind(content)
        if start < 0 or not text.startswith(through):
            raise DataError(f"chat {where}: the chat template renders turn {i} differently once later turns follow, "
                            "so the assistant's tokens cannot be located; train on "
                            '{"prompt", "completion"} lines instead')
        spans.append((start, len(through)))
    return text, spans


class _Encoder:
    def __init__(self, tokenizer, loss: str, add_eos: bool, max_length: int | None):
        if loss not in LOSS_SPANS:
            raise DataError(f"loss must be 'completion' or 'all', got {loss!r}")
        self.tok = tokenizer
        self.loss = loss
        self.max_length = max_length
        self.prefix, self.suffix = _special_frame(tokenizer)
        eos = getattr(tokenizer, "eos_token_id", None)
        if add_eos and not isinstance(eos, int):
            raise DataError("add_eos=True but the tokenizer has no eos_token_id; set one or use "
                            "add_eos=False")
        self.eos = [eos] if add_eos else []

    def __call__(self, item, where: str = "") -> Encoded:
        if isinstance(item, ChatExample):
            return self._check_length(self._chat(item), where)
        prompt, completion = _parts(item)
        p = self.tok(prompt, add_special_tokens=False)["input_ids"] if prompt else []
        c = self.tok(completion, add_special_tokens=False)["input_ids"] if completion else []
        # Suffix specials some tokenizers append (an EOS template) are not used: a sequence ends
        # with add_eos instead, so no EOS is wedged between prompt and completion.
        ids = self.prefix + p + c + self.eos
        n_pre = len(self.prefix)
        if self.loss == "completion" and prompt:
            start = n_pre + len(p)
        else:
            start = n_pre
        labels = [IGNORE_INDEX] * start + ids[start:]
        return self._check_length(Encoded(ids, labels), where)

    def _check_length(self, encoded: Encoded, where: str) -> Encoded:
        if self.max_length is not None and len(encoded) > self.max_length:
            raise DataError(
                f"example {where} has {len(encoded)} tokens, more than max_length="
                f"{self.max_length}; generate shorter samples or raise max_length"
            )
        return encoded

    def _chat(self, chat: ChatExample) -> Encoded:
        """The rendered chat as one tokenization; labels on the tokens that start inside an assistant span."""
        text, spans = chat_text(self.tok, chat)
        try:
            enc = self.tok(text, add_special_tokens=False, return_offsets_mapping=True)
        except NotImplementedError as e:  # slow (Python) tokenizers have no offsets
            raise DataError("chat data needs a fast tokenizer (character offsets locate the assistant's "
                            "tokens); this teacher's tokenizer is a slow one") from e
        ids = list(enc["input_ids"])
        if self.loss == "all":
            return Encoded(ids, list(ids))
        labels = [i if any(a <= start < b for a, b in spans) else IGNORE_INDEX
                  for i, (start, _) in zip(ids, enc["offset_mapping"])]
        return Encoded(ids, labels)


def encode(tokenizer, item, *, loss: str = "completion", add_eos: bool = False,
           max_length: int | None = None) -> Encoded:
    """Encode one TaskSample / TextExample / ChatExample / str / (prompt, completion) tuple."""
    return _Encoder(tokenizer, loss, add_eos, max_length)(item)


def encode_all(tokenizer, items: Sequence, *, loss: str = "completion", add_eos: bool = False,
               max_length: int | None = None) -> list[Encoded]:
    """Encode many items (see :func:`encode`); ``loss="all"`` trains on the whole sequence."""
    enc = _Encoder(tokenizer, loss, add_eos, max_length)
    return [enc(it, where=f"#{i}") for i, it in enumerate(items)]


def pack_rows(encoded: Sequence[Encoded], seq_len: int, *, drop_last: bool = False) -> list[Encoded]:
    """Concatenate sequences (in order) and cut the stream into rows of ``seq_len`` tokens.

    For pretraining-style text (end documents with ``add_eos=True`` when encoding).  The last,
    shorter row is kept (and padded later) unless ``drop_last``.
    """
    if not isinstance(seq_len, int) or seq_len < 2:
        raise DataError(f"seq_len must be an integer >= 2, got {seq_len!r}")
    ids: list[int] = []
    labels: list[int] = []
    for e in encoded:
        ids.extend(e.input_ids)
        labels.extend(e.labels)
    rows = [Encoded(ids[i:i + seq_len], labels[i:i + seq_len]) for i in range(0, len(ids), seq_len)]
    if rows and drop_last and len(rows[-1]) < seq_len:
        rows.pop()
    return rows


def collate(batch: Sequence[Encoded], pad_id: int, *, padding_side: str = "right",
            pad_to_multiple_of: int | None = None) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest sequence: input_ids, attention_mask, labels (LongTensors)."""
    import torch

    if not batch:
        raise DataError("cannot collate an empty batch")
    if padding_side not in ("right", "left"):
        raise DataError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
    t = max(len(e) for e in batch)
    if pad_to_multiple_of:
        t = -(-t // pad_to_multiple_of) * pad_to_multiple_of
    ids = torch.full((len(batch), t), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), t), dtype=torch.long)
    labels = torch.full((len(batch), t), IGNORE_INDEX, dtype=torch.long)
    for r, e in enumerate(batch):
        n = len(e)
        sl = slice(0, n) if padding_side == "right" else slice(t - n, t)
        ids[r, sl] = torch.tensor(e.input_ids, dtype=torch.long)
        labels[r, sl] = torch.tensor(e.labels, dtype=torch.long)
        mask[r, sl] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class ResumableSampler:
    """Deterministic batches of example indices, epoch after epoch, resumable at any batch.

    ``lengths``: the length of every example (used when ``bucket=True``).  Iterating yields index
    lists; :meth:`state_dict` is ``{"epoch", "batch", "seed"}`` *after* the last yielded batch.
    ``epochs=None`` iterates forever.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, *, seed: int = 0,
                 shuffle: bool = True, bucket: bool = False, bucket_window: int = 50,
                 drop_last: bool = False, epochs: int | None = None):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")
        if len(lengths) == 0:
            raise DataError("no training examples to sample from; check the data source")
        if drop_last and len(lengths) < batch_size:
            raise DataError(f"{len(lengths)} examples cannot fill one batch of {batch_size} with "
                            f"drop_last=True; lower batch_size or add data")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.bucket = bucket
        self.bucket_window = max(1, bucket_window)
        self.drop_last = drop_last
        self.epochs = epochs
        self.epoch = 0
        self.batch = 0  # batches already consumed in the current epoch

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """All batches of ``epoch`` in order; depends only on (seed, epoch, settings, lengths)."""
        rng = random.Random(f"lawcat-sampler:{self.seed}:{epoch}")
        idx = list(range(len(self.lengths)))
        if self.shuffle:
            rng.shuffle(idx)
        bs = self.batch_size
        if self.bucket:
            w = bs * self.bucket_window
            batches = []
            for s in range(0, len(idx), w):
                win = sorted(idx[s:s + w], key=lambda i: -self.lengths[i])
                batches += [win[j:j + bs] for j in range(0, len(win), bs)]
            if self.shuffle:
                rng.shuffle(batches)
        else:
            batches = [idx[j:j + bs] for j in range(0, len(idx), bs)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == bs]
        return batches

    def __len__(self) -> int:
        return len(self.epoch_batches(0))

    def __iter__(self) -> Iterator[list[int]]:
        while self.epochs is None or self.epoch < self.epochs:
            batches = self.epoch_batches(self.epoch)
            while self.batch < len(batches):
                b = batches[self.batch]
                self.batch += 1
                yield b
            self.epoch += 1
            self.batch = 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        if state.get("seed", self.seed) != self.seed:
            raise DataError(f"the saved data order used seed {state['seed']} but this run uses "
                            f"{self.seed}; resume with the same seed")
        self.epoch = int(state["epoch"])
        self.batch = int(state["batch"])


class BatchIterator:
    """Padded tensor batches over encoded examples, in a :class:`ResumableSampler` order."""

    def __init__(self, examples: Sequence[Encoded], batch_size: int, pad_id: int, *, seed: int = 0,
                 shuffle: bool = True, bucket: bool = True, bucket_window: int = 50,
                 drop_last: bool = False, epochs: int | None = None, padding_side: str = "right",
                 pad_to_multiple_of: int | None = None):
        self.examples = list(examples)
        self.pad_id = pad_id
        self.padding_side = padding_side
        self.pad_to_multiple_of = pad_to_multiple_of
        self.sampler = ResumableSampler([len(e) for e in self.examples], batch_size, seed=seed,
                                        shuffle=shuffle, bucket=bucket, bucket_window=bucket_window,
                                        drop_last=drop_last, epochs=epochs)

    def __len__(self) -> int:
        """Batches per epoch."""
        return len(self.sampler)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for idx in self.sampler:
            yield collate([self.examples[i] for i in idx], self.pad_id,
                          padding_side=self.padding_side, pad_to_multiple_of=self.pad_to_multiple_of)

    def state_dict(self) -> dict:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.sampler.load_state_dict(state)


__all__ = [
    "IGNORE_INDEX",
    "Encoded",
    "pad_token_id",
    "encode",
    "encode_all",
    "pack_rows",
    "collate",
    "ResumableSampler",
    "BatchIterator",
]
