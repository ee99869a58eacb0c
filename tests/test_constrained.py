"""Grammar-constrained decoding emits only valid GRID sentences, for two tokenizer styles and any weights."""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import pytest

from lipagent.torch_compat import ensure_torchvision_importable

ensure_torchvision_importable()  # before transformers' Gemma 3n imports timm and torchvision

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from PIL import Image  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402

import lipagent.testing.tiny_gemma3n as tiny  # noqa: E402
from lipagent.grammar import SLOT_NAMES, SLOTS, is_valid_sentence, sentence_count  # noqa: E402
from lipagent.model.constrained import (  # noqa: E402
    COMPLETE,
    DONE,
    GridTokenGrammar,
    all_sentences,
    build_grid_token_grammar,
    end_token_ids,
    grid_generation_kwargs,
    grid_token_grammar,
    make_grid_logits_processor,
    max_new_tokens_for,
    mismatched_sentences,
)
from lipagent.model.prompt import inference_messages, user_turn  # noqa: E402

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SEEDS = (0, 1, 2, 3)
DECODING = {
    "greedy": {"do_sample": False},
    "sampling": {"do_sample": True, "top_k": 0, "top_p": 1.0, "temperature": 1.5},
    "beam": {"do_sample": False, "num_beams": 3},
}


def byte_level_tokenizer() -> transformers.PreTrainedTokenizerFast:
    """A GPT-2-style byte-level BPE ("Ġblue"), trained offline on GRID-like text, with a ChatML template."""
    rng = random.Random(0)
    corpus = [" ".join(rng.choice(SLOTS[slot]) for slot in SLOT_NAMES) for _ in range(2000)]
    corpus += ["the quick brown fox jumps over the lazy dog", "user assistant system"]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    backend.train_from_iterator(corpus, trainer)
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|endoftext|>", chat_template=CHATML
    )


@pytest.fixture(scope="module", params=["gemma", "byte_level"])
def tokenizer(request: pytest.FixtureRequest):
    return tiny.build_tokenizer() if request.param == "gemma" else byte_level_tokenizer()


def random_answer(grammar: GridTokenGrammar, rng: random.Random) -> list[int]:
    """Any path through the automaton, up to and including its end token."""
    tokens: list[int] = []
    while grammar.walk(tokens) != DONE:
        tokens.append(rng.choice(grammar.allowed_token_ids(tokens)))
    return tokens


def paths_to_complete(grammar: GridTokenGrammar, state: int) -> int:
    """How many token sequences lead from `state` to a complete sentence."""
    if state == COMPLETE:
        return 1
    return sum(paths_to_complete(grammar, target) for target in grammar.transitions[state].values())


def test_pieces_spell_every_sentence_as_the_tokenizer_does(tokenizer):
    assert mismatched_sentences(tokenizer) == []


def test_sentences_are_encoded_as_the_tokenizer_encodes_each_one(tokenizer):
    """The batch encoder behind `mismatched_sentences` gives each text's own ids, through the Rust tokenizer or not."""
    from lipagent.model.constrained import _batch_encoder

    texts = ["bin blue at f two now", "<start_of_turn>model\nset white in z zero soon", " lay red by g nine again"]
    expected = [tokenizer.encode(text, add_special_tokens=False) for text in texts]
    assert _batch_encoder(tokenizer)(texts) == expected

    class PythonOnly:  # a tokenizer without a Rust backend
        def __call__(self, batch, add_special_tokens):
            return {"input_ids": [tokenizer.encode(t, add_special_tokens=add_special_tokens) for t in batch]}

    assert _batch_encoder(PythonOnly())(texts) == expected


def test_a_sentence_the_grammar_spells_otherwise_is_reported(tokenizer, monkeypatch):
    """`mismatched_sentences` finds exactly the given sentences whose grammar spelling differs from the tokenizer's."""
    import lipagent.model.constrained as constrained

    grammar = grid_token_grammar(tokenizer)
    pieces = [dict(words) for words in grammar.pieces]
    pieces[0]["bin"], pieces[0]["lay"] = pieces[0]["lay"], pieces[0]["bin"]  # a grammar that swaps two commands
    swapped = GridTokenGrammar(tuple(pieces), grammar.end_ids, grammar.transitions, grammar.allowed, 0)
    monkeypatch.setattr(constrained, "grid_token_grammar", lambda *args: swapped)
    sentences = ["bin blue at f two now", "set red by g nine soon", "lay white in z zero again"]
    assert mismatched_sentences(tokenizer, sentences) == ["bin blue at f two now", "lay white in z zero again"]
    assert mismatched_sentences(tokenizer, sentences[1:2]) == []


def test_first_word_follows_the_prompt_later_words_carry_their_space(tokenizer):
    grammar = grid_token_grammar(tokenizer)
    command, color = grammar.pieces[0]["bin"], grammar.pieces[1]["blue"]
    assert tokenizer.decode(list(command)) == "bin"
    assert tokenizer.decode(list(color)) == " blue"
    assert tokenizer.convert_ids_to_tokens(list(color))[0][0] in "▁Ġ"


def test_automaton_accepts_exactly_the_grid_sentences(tokenizer):
    grammar = grid_token_grammar(tokenizer)
    assert paths_to_complete(grammar, grammar.start) == sentence_count() == 64_000
    rng = random.Random(0)
    for _ in range(300):
        answer = random_answer(grammar, rng)
        assert answer[-1] in grammar.end_ids
        assert is_valid_sentence(tokenizer.decode(answer, skip_special_tokens=True))


def test_the_grammar_spells_only_whole_sentences(tokenizer):
    grammar = grid_token_grammar(tokenizer)
    with pytest.raises(ValueError):
        grammar.encode("bin blue at f two")
    with pytest.raises(ValueError):
        grammar.encode("bin blue at f two now please")


def test_after_the_sixth_word_only_end_tokens(tokenizer):
    grammar = grid_token_grammar(tokenizer)
    answer = grammar.encode("bin blue at f two now")
    assert grammar.allowed_token_ids(answer) == sorted(grammar.end_ids)
    before_adverb = answer[: -len(grammar.pieces[-1]["now"])]
    assert grammar.allowed_token_ids(before_adverb) == sorted({ids[0] for ids in grammar.pieces[-1].values()})
    off_grammar = [tokenizer.convert_tokens_to_ids("x")]
    assert grammar.allowed_token_ids(off_grammar) == sorted(grammar.end_ids)


def test_end_tokens_of_each_chat_format():
    gemma, chatml = tiny.build_tokenizer(), byte_level_tokenizer()
    assert end_token_ids(gemma) == (tiny.EOS_ID, tiny.END_OF_TURN_ID)
    assert end_token_ids(chatml) == tuple(chatml.convert_tokens_to_ids(["<|endoftext|>", "<|im_end|>"]))


def test_max_new_tokens_fits_the_longest_answer(tokenizer):
    grammar = grid_token_grammar(tokenizer)
    longest = max(len(grammar.encode(sentence)) for sentence in all_sentences())
    assert max_new_tokens_for(tokenizer) == longest + 1


def test_built_fast_and_once_per_tokenizer():
    tokenizer = tiny.build_tokenizer()
    start = time.perf_counter()
    grammar = grid_token_grammar(tokenizer)
    assert time.perf_counter() - start < 2.0
    assert grid_token_grammar(tokenizer) is grammar
    assert grid_token_grammar(tiny.build_tokenizer()) is not grammar
    assert build_grid_token_grammar(tokenizer).transitions == grammar.transitions


def test_processor_masks_each_left_padded_row_after_the_prompt():
    tokenizer = tiny.build_tokenizer()
    grammar = grid_token_grammar(tokenizer)
    processor = make_grid_logits_processor(tokenizer)
    prompts = torch.tensor([[tiny.PAD_ID, tiny.PAD_ID, 7, 8], [5, 6, 7, 8]])
    scores = torch.randn(2, len(tokenizer))
    first = processor(prompts, scores)
    allowed = sorted(set(grammar.allowed_token_ids([])))
    for row in first:
        assert torch.isfinite(row).nonzero().flatten().tolist() == allowed
    answers = [grammar.encode("set red in x nine soon")[:3], grammar.encode("bin blue at f two now")[:3]]
    later = processor(torch.cat([prompts, torch.tensor(answers)], dim=1), scores)
    for row, answer, raw in zip(later, answers, scores, strict=True):
        kept = torch.isfinite(row)
        assert kept.nonzero().flatten().tolist() == grammar.allowed_token_ids(answer)
        assert torch.equal(row[kept], raw[kept])
    with pytest.raises(
        ValueError, match="^input_ids shorter than the prompt: use a fresh processor for each generate call$"
    ):
        processor(prompts[:, :2], scores)


def test_a_given_prompt_length_says_where_the_answer_starts():
    """With the prompt's length given, tokens after it are the answer even in the first call (a resumed generation)."""
    tokenizer = tiny.build_tokenizer()
    grammar = grid_token_grammar(tokenizer)
    answer = grammar.encode("bin blue at f two now")[:2]
    scores = torch.zeros(1, len(tokenizer))
    given = make_grid_logits_processor(tokenizer, prompt_length=2)(torch.tensor([[5, 6, *answer]]), scores)
    assert torch.isfinite(given[0]).nonzero().flatten().tolist() == grammar.allowed_token_ids(answer)
    inferred = make_grid_logits_processor(tokenizer)(torch.tensor([[5, 6, *answer]]), scores)
    assert torch.isfinite(inferred[0]).nonzero().flatten().tolist() == grammar.allowed_token_ids([])


def test_a_processor_for_other_end_tokens_ends_the_answer_with_them():
    tokenizer = tiny.build_tokenizer()
    answer = grid_token_grammar(tokenizer).encode("bin blue at f two now")
    processor = make_grid_logits_processor(tokenizer, prompt_length=0, end_ids=[tiny.END_OF_TURN_ID])
    out = processor(torch.tensor([answer]), torch.zeros(1, len(tokenizer)))
    assert torch.isfinite(out[0]).nonzero().flatten().tolist() == [tiny.END_OF_TURN_ID]


def test_grammar_wins_when_earlier_processors_block_every_allowed_token():
    tokenizer = tiny.build_tokenizer()
    processor = make_grid_logits_processor(tokenizer, prompt_length=2)
    out = processor(torch.tensor([[5, 6]]), torch.full((1, len(tokenizer)), -math.inf))
    allowed = grid_token_grammar(tokenizer).allowed_token_ids([])
    assert torch.isfinite(out).nonzero()[:, 1].tolist() == allowed
    assert not torch.isnan(torch.softmax(out, dim=-1)).any()


def test_one_allowed_token_left_by_earlier_processors_is_the_one_kept():
    tokenizer = tiny.build_tokenizer()
    allowed = grid_token_grammar(tokenizer).allowed_token_ids([])
    scores = torch.full((1, len(tokenizer)), -math.inf)
    scores[0, allowed[1]] = 1.5
    out = make_grid_logits_processor(tokenizer, prompt_length=2)(torch.tensor([[5, 6]]), scores)
    assert torch.isfinite(out).nonzero()[:, 1].tolist() == [allowed[1]] and out[0, allowed[1]] == 1.5


def test_logits_narrower_than_the_grammar_s_tokens_are_refused():
    tokenizer = tiny.build_tokenizer()
    processor = make_grid_logits_processor(tokenizer, prompt_length=2)
    width = processor._max_id  # one short: the largest token id has no logit
    with pytest.raises(ValueError, match=f"^token id {width} is outside the model's {width} logits$"):
        processor(torch.tensor([[5, 6], [5, 6]]), torch.zeros(2, width))


def test_free_decoding_kwargs_differ_only_in_the_mask():
    tokenizer = tiny.build_tokenizer()
    constrained, free = grid_generation_kwargs(tokenizer), grid_generation_kwargs(tokenizer, constrained=False)
    assert "logits_processor" not in free
    assert constrained["eos_token_id"] == [tiny.EOS_ID, tiny.END_OF_TURN_ID], "eos and <end_of_turn> both stop"
    assert free == {key: value for key, value in constrained.items() if key != "logits_processor"}
    assert grid_generation_kwargs(tokenizer)["logits_processor"][0] is not constrained["logits_processor"][0]
    only_turn = grid_generation_kwargs(tokenizer, end_ids=[tiny.END_OF_TURN_ID])
    assert only_turn["eos_token_id"] == [tiny.END_OF_TURN_ID], "the end tokens asked for, not the default ones"


@pytest.fixture(scope="module")
def model(tiny_dir: Path) -> transformers.PreTrainedModel:
    return transformers.AutoModelForImageTextToText.from_pretrained(tiny_dir, local_files_only=True).eval()


@pytest.fixture(scope="module")
def inputs(processor: transformers.ProcessorMixin) -> transformers.BatchFeature:
    """Three different noise mosaics; one shorter prompt, so the batch is left-padded as in batched eval."""
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (240, 400, 3), dtype=np.uint8)) for _ in range(3)]
    chats = [inference_messages(), [user_turn("Read the lips.")], inference_messages()]
    texts = [processor.apply_chat_template(chat, add_generation_prompt=True) for chat in chats]
    batch = processor(text=texts, images=[[image] for image in images], return_tensors="pt", padding=True)
    assert processor.tokenizer.padding_side == "left" and not batch["attention_mask"][1, 0]
    return batch


def reseed(model: transformers.PreTrainedModel, seed: int) -> None:
    """Redraw the language model's matrices, three times the init scale: confident, arbitrary preferences."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.model.language_model.parameters():
            if parameter.dim() >= 2:
                drawn = torch.randn(parameter.shape, generator=generator) * 3 * parameter.shape[-1] ** -0.5
                parameter.copy_(drawn)


def answers(model, processor, inputs, seed: int, **kwargs) -> list[list[int]]:
    """Generated token ids per row, after the (left-padded) prompt."""
    reseed(model, seed)
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(**inputs, **kwargs)
    return out[:, inputs["input_ids"].shape[1] :].tolist()


@pytest.mark.parametrize("decoding", DECODING)
@pytest.mark.parametrize("seed", SEEDS)
def test_constrained_output_is_always_a_grid_sentence(model, processor, inputs, seed: int, decoding: str):
    kwargs = grid_generation_kwargs(processor)
    generated = answers(model, processor, inputs, seed, **DECODING[decoding], **kwargs)
    texts = processor.batch_decode(generated, skip_special_tokens=True)
    assert all(is_valid_sentence(text.strip()) for text in texts), texts
    assert all(text == text.strip() and text == text.lower() for text in texts)
    # Rows that end first are filled up to the batch's length: greedy search fills with pad, beam search with eos.
    end_ids, filler = set(end_token_ids(processor)), {processor.tokenizer.pad_token_id, tiny.EOS_ID}
    for row in generated:
        end = next(i for i, token in enumerate(row) if token in end_ids)
        assert set(row[end + 1 :]) <= filler, f"generation goes on after its end token: {row}"


@pytest.mark.parametrize("seed", SEEDS)
def test_free_decoding_of_the_same_weights_is_not_a_grid_sentence(model, processor, inputs, seed: int):
    """Without the mask the random model writes garbage: the constrained test above can fail."""
    kwargs = grid_generation_kwargs(processor, constrained=False)
    generated = answers(model, processor, inputs, seed, do_sample=False, **kwargs)
    texts = processor.batch_decode(generated, skip_special_tokens=True)
    assert not any(is_valid_sentence(text) for text in texts), texts
