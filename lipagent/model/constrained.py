"""Grammar-constrained decoding: `generate` can only emit a valid GRID sentence, one slot at a time.

A fine-tuned model still free-decodes the odd word outside the corpus ("bin blew at ..."), and a
half-trained one emits anything; either way a slot is lost that the closed grammar could have saved. Here
the tokenizer's own spelling of every slot word, as it appears in the assistant's answer, becomes a token
automaton (one trie per slot, each word's last token leading to the next slot's trie, the sixth slot to
the end tokens). A `LogitsProcessor` walks it over the tokens generated so far and sets every token that
cannot continue a valid sentence to -inf, so greedy, sampling and beam search all stay inside the 64,000
sentences whatever the weights. Free decoding stays available for comparison (`constrained=False`).
"""

from __future__ import annotations

import itertools
import math
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from lipagent.grammar import SLOT_NAMES, SLOTS

__all__ = [
    "END_OF_TURN_TOKENS",
    "GridGrammarLogitsProcessor",
    "GridTokenGrammar",
    "all_sentences",
    "answer_context",
    "build_grid_token_grammar",
    "end_token_ids",
    "grammar_from_pieces",
    "grid_generation_kwargs",
    "grid_token_grammar",
    "make_grid_logits_processor",
    "max_new_tokens_for",
    "mismatched_sentences",
    "slot_word_pieces",
]

END_OF_TURN_TOKENS: tuple[str, ...] = ("<end_of_turn>", "<|im_end|>", "<|eot_id|>")
"""Turn-closing tokens of known chat formats; each one the tokenizer knows may end an answer, like eos."""

DEAD, DONE, COMPLETE = 0, 1, 2
"""Fixed automaton states: off the grammar (a beam kept at -inf), after an end token, after the sixth word."""

WordPieces = dict[str, tuple[int, ...]]


def _tokenizer_of(tokenizer_or_processor: Any) -> Any:
    """Accept a multimodal processor where a tokenizer is meant: callers usually hold the processor."""
    return getattr(tokenizer_or_processor, "tokenizer", tokenizer_or_processor)


def answer_context(tokenizer: Any) -> str:
    """The text just before the answer: the chat's generation prompt (Gemma: '...<start_of_turn>model\\n').

    Slot words are tokenized after it, because a tokenizer may spell a word differently at the start of a
    string than after a newline or a space. Without a chat template the answer stands alone.
    """
    if not getattr(tokenizer, "chat_template", None):
        return ""
    messages = [{"role": "user", "content": "x"}]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def _encode(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _continuation(context_ids: Sequence[int], full_ids: Sequence[int], text: str) -> tuple[int, ...]:
    """The ids `text` adds after its context; an error when appending it re-tokenizes the context."""
    if list(full_ids[: len(context_ids)]) != list(context_ids):
        raise ValueError(f"appending {text!r} changes how the text before it is tokenized")
    added = tuple(full_ids[len(context_ids) :])
    if not added:
        raise ValueError(f"{text!r} adds no tokens")
    return added


def _anchor_sentence() -> list[str]:
    """One sentence whose words serve as the left context of each slot's words."""
    return [SLOTS[slot][0] for slot in SLOT_NAMES]


def slot_word_pieces(tokenizer: Any) -> tuple[WordPieces, ...]:
    """For each slot, every word's token ids as they follow the previous words of an answer.

    The first word follows the answer context directly; later words carry their leading space inside the
    context ("bin" then " blue"), which is right for SentencePiece ("▁blue") and byte-level BPE ("Ġblue")
    alike. Whether the pieces concatenate to the tokenizer's own encoding of whole answers is checked by
    `mismatched_sentences`.
    """
    tokenizer = _tokenizer_of(tokenizer)
    context = answer_context(tokenizer)
    anchor = _anchor_sentence()
    pieces: list[WordPieces] = []
    for index, slot in enumerate(SLOT_NAMES):
        left = context + " ".join(anchor[:index])
        space = " " if index else ""
        encoded = tokenizer([left + space + word for word in SLOTS[slot]], add_special_tokens=False)["input_ids"]
        left_ids = _encode(tokenizer, left)
        pieces.append(
            {word: _continuation(left_ids, ids, word) for word, ids in zip(SLOTS[slot], encoded, strict=True)}
        )
    return tuple(pieces)


def end_token_ids(tokenizer: Any) -> tuple[int, ...]:
    """Tokens that may close an answer: eos, and the chat format's end-of-turn token where it has one."""
    tokenizer = _tokenizer_of(tokenizer)
    ids = [] if tokenizer.eos_token_id is None else [tokenizer.eos_token_id]
    for token in END_OF_TURN_TOKENS:
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is not None and token_id != tokenizer.unk_token_id and token_id not in ids:
            ids.append(token_id)
    if not ids:
        raise ValueError("the tokenizer has neither an eos token nor a known end-of-turn token")
    return tuple(ids)


def _build_transitions(pieces: Sequence[WordPieces], end_ids: Sequence[int]) -> list[dict[int, int]]:
    """State -> {token: next state}: slot tries chained root to root, ending in COMPLETE -> DONE.

    A word whose tokens were a prefix of another word's in the same slot would make the end of a word
    ambiguous; GRID has none, and a tokenizer that produced one is refused rather than mis-decoded.
    """
    transitions: list[dict[int, int]] = [{}, {}, {token: DONE for token in end_ids}]
    roots = [len(transitions) + i for i in range(len(pieces))]
    transitions += [{} for _ in pieces]
    for index, words in enumerate(pieces):
        after = roots[index + 1] if index + 1 < len(roots) else COMPLETE
        for word, ids in words.items():
            node = roots[index]
            for token in ids[:-1]:
                if token not in transitions[node]:
                    transitions[node][token] = len(transitions)
                    transitions.append({})
                node = transitions[node][token]
                if node == after:
                    raise ValueError(f"another {SLOT_NAMES[index]} is a token prefix of {word!r}")
            if transitions[node].setdefault(ids[-1], after) != after:
                raise ValueError(f"{word!r} is a token prefix of another {SLOT_NAMES[index]}")
    return transitions


@dataclass(frozen=True, eq=False)
class GridTokenGrammar:
    """The token automaton of one tokenizer: which token ids may follow any generated prefix."""

    pieces: tuple[WordPieces, ...]
    end_ids: tuple[int, ...]
    transitions: tuple[Mapping[int, int], ...]
    allowed: tuple[torch.Tensor, ...]
    max_answer_tokens: int

    @property
    def start(self) -> int:
        return COMPLETE + 1

    def step(self, state: int, token: int) -> int:
        if state == DONE:
            return DONE
        return self.transitions[state].get(token, DEAD)

    def walk(self, tokens: Iterable[int]) -> int:
        state = self.start
        for token in tokens:
            state = self.step(state, token)
        return state

    def allowed_token_ids(self, tokens: Iterable[int]) -> list[int]:
        """What may come next after the answer tokens `tokens`: the allowed-tokens function of the grammar."""
        return self.allowed[self.walk(tokens)].tolist()

    def encode(self, sentence: str) -> list[int]:
        """A valid sentence as the grammar spells it (the concatenated slot pieces)."""
        words = sentence.split()
        return [token for words_of, word in zip(self.pieces, words, strict=True) for token in words_of[word]]


def _allowed_tensors(
    transitions: Sequence[Mapping[int, int]], end_ids: Sequence[int], pad_id: int | None
) -> tuple[torch.Tensor, ...]:
    """Allowed ids per state; DONE and DEAD allow the end tokens so no row is ever all -inf."""
    closing = sorted({*end_ids, *([] if pad_id is None else [pad_id])})
    allowed = [torch.tensor(sorted(edges), dtype=torch.long) for edges in transitions]
    allowed[DEAD] = torch.tensor(sorted(end_ids), dtype=torch.long)
    allowed[DONE] = torch.tensor(closing, dtype=torch.long)
    return tuple(allowed)


def grammar_from_pieces(pieces: Sequence[WordPieces], end_ids: Sequence[int], pad_id: int | None) -> GridTokenGrammar:
    """The automaton of given word pieces and end tokens (a GGUF export stores them: llama.cpp reads without the
    transformers tokenizer)."""
    pieces = tuple({word: tuple(ids) for word, ids in words.items()} for words in pieces)
    transitions = _build_transitions(pieces, end_ids)
    longest = sum(max(len(ids) for ids in words.values()) for words in pieces) + 1
    return GridTokenGrammar(
        pieces=pieces,
        end_ids=tuple(end_ids),
        transitions=tuple(transitions),
        allowed=_allowed_tensors(transitions, end_ids, pad_id),
        max_answer_tokens=longest,
    )


def build_grid_token_grammar(tokenizer: Any, end_ids: Sequence[int] | None = None) -> GridTokenGrammar:
    """Build the automaton from scratch (use `grid_token_grammar` for the cached one)."""
    tokenizer = _tokenizer_of(tokenizer)
    end_ids = tuple(end_ids) if end_ids is not None else end_token_ids(tokenizer)
    return grammar_from_pieces(slot_word_pieces(tokenizer), end_ids, tokenizer.pad_token_id)


_CACHE: weakref.WeakKeyDictionary[Any, dict[tuple, GridTokenGrammar]] = weakref.WeakKeyDictionary()


def _cache_key(tokenizer: Any, end_ids: Sequence[int] | None) -> tuple:
    """What the automaton depends on besides the tokenizer object, so a mutated tokenizer rebuilds."""
    template = str(getattr(tokenizer, "chat_template", None))
    return (len(tokenizer), template, None if end_ids is None else tuple(end_ids))


def grid_token_grammar(tokenizer: Any, end_ids: Sequence[int] | None = None) -> GridTokenGrammar:
    """The automaton for `tokenizer` (or a processor holding one), built once per tokenizer object."""
    tokenizer = _tokenizer_of(tokenizer)
    per_tokenizer = _CACHE.setdefault(tokenizer, {})
    key = _cache_key(tokenizer, end_ids)
    if key not in per_tokenizer:
        per_tokenizer[key] = build_grid_token_grammar(tokenizer, end_ids)
    return per_tokenizer[key]


def all_sentences() -> Iterable[str]:
    """The 64,000 GRID sentences in slot order, lazily."""
    return (" ".join(words) for words in itertools.product(*(SLOTS[slot] for slot in SLOT_NAMES)))


def _batch_encoder(tokenizer: Any) -> Callable[[list[str]], list[list[int]]]:
    """Many texts to ids; straight through the Rust tokenizer where there is one (2-3x faster for 64,000)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return lambda texts: tokenizer(texts, add_special_tokens=False)["input_ids"]
    encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
    return lambda texts: [encoding.ids for encoding in encode(texts, add_special_tokens=False)]


def mismatched_sentences(tokenizer: Any, sentences: Iterable[str] | None = None, batch: int = 8192) -> list[str]:
    """Sentences whose grammar spelling differs from the tokenizer's encoding of the whole answer in context.

    Empty means the model is constrained to exactly the token sequences it was trained on (all 64,000
    sentences by default).
    """
    tokenizer = _tokenizer_of(tokenizer)
    grammar = grid_token_grammar(tokenizer)
    context = answer_context(tokenizer)
    context_ids = _encode(tokenizer, context)
    encode = _batch_encoder(tokenizer)
    remaining = iter(all_sentences() if sentences is None else sentences)
    mismatched = []
    while chunk := list(itertools.islice(remaining, batch)):
        encoded = encode([context + sentence for sentence in chunk])
        for sentence, ids in zip(chunk, encoded, strict=True):
            if list(ids[: len(context_ids)]) != context_ids or ids[len(context_ids) :] != grammar.encode(sentence):
                mismatched.append(sentence)
    return mismatched


def max_new_tokens_for(tokenizer: Any) -> int:
    """Tokens of the longest valid answer plus its end token: the `max_new_tokens` every answer fits in."""
    return grid_token_grammar(tokenizer).max_answer_tokens


class GridGrammarLogitsProcessor(LogitsProcessor):
    """Masks every token that cannot continue a valid GRID answer; one instance per `generate` call.

    The answer starts where the prompt ends: `prompt_length` columns of `input_ids`, recorded at the first
    call unless given. Batched prompts are left-padded, so that column is the same for every row, and beam
    search hands over one row per beam, so each row's state is recomputed from its own tokens (memoised by
    prefix, one automaton step per row per call).
    """

    def __init__(self, grammar: GridTokenGrammar, prompt_length: int | None = None) -> None:
        self.grammar = grammar
        self.prompt_length = prompt_length
        self._states: dict[tuple[int, ...], int] = {(): grammar.start}
        self._max_id = max(int(ids.max()) for ids in grammar.allowed if ids.numel())

    def _state(self, tokens: tuple[int, ...]) -> int:
        state = self._states.get(tokens)
        if state is None:
            state = self.grammar.step(self._state(tokens[:-1]), tokens[-1])
            self._states[tokens] = state
        return state

    def _allowed_index(self, input_ids: torch.LongTensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(row, token) pairs of every allowed continuation, built from per-state id lists."""
        if self.prompt_length is None:
            self.prompt_length = input_ids.shape[1]
        if input_ids.shape[1] < self.prompt_length:
            raise ValueError("input_ids shorter than the prompt: use a fresh processor for each generate call")
        rows = input_ids[:, self.prompt_length :].tolist()
        allowed = [self.grammar.allowed[self._state(tuple(row))] for row in rows]
        counts = torch.tensor([len(ids) for ids in allowed])
        row_index = torch.repeat_interleave(torch.arange(len(allowed)), counts)
        return row_index.to(device), torch.cat(allowed).to(device)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._max_id >= scores.shape[-1]:
            raise ValueError(f"token id {self._max_id} is outside the model's {scores.shape[-1]} logits")
        rows, cols = self._allowed_index(input_ids, scores.device)
        kept = scores[rows, cols]
        # An earlier processor may have ruled out every allowed token (min_new_tokens on the end token,
        # n-gram bans): the grammar wins, with the allowed tokens equally likely, rather than a NaN sample.
        alive = torch.zeros(scores.shape[0], device=scores.device).index_add_(0, rows, (~kept.isneginf()).float())
        kept = torch.where(alive[rows] > 0, kept, torch.zeros_like(kept))
        masked = torch.full_like(scores, -math.inf)
        masked[rows, cols] = kept
        return masked


def make_grid_logits_processor(
    tokenizer: Any, prompt_length: int | None = None, end_ids: Sequence[int] | None = None
) -> GridGrammarLogitsProcessor:
    """A fresh processor over the cached automaton of `tokenizer` (or a processor holding one)."""
    return GridGrammarLogitsProcessor(grid_token_grammar(tokenizer, end_ids), prompt_length)


def grid_generation_kwargs(
    tokenizer: Any, *, constrained: bool = True, end_ids: Sequence[int] | None = None
) -> dict[str, Any]:
    """Keyword arguments for one `model.generate` call; `constrained=False` is free decoding to compare with.

    Both modes get the same token budget and stop on the same end tokens, so they differ only in the mask.
    """
    grammar = grid_token_grammar(tokenizer, end_ids)
    kwargs: dict[str, Any] = {"max_new_tokens": grammar.max_answer_tokens, "eos_token_id": list(grammar.end_ids)}
    if constrained:
        kwargs["logits_processor"] = LogitsProcessorList([GridGrammarLogitsProcessor(grammar)])
    return kwargs
