from lipagent.grammar import SLOT_NAMES, SLOTS, VOCABULARY, is_valid_sentence, normalize, parse_sentence, sentence_count


def test_grammar_has_51_words_and_64000_sentences():
    assert len(VOCABULARY) == 51
    assert [len(SLOTS[s]) for s in SLOT_NAMES] == [4, 4, 4, 25, 10, 4]
    assert sentence_count() == 64_000
    assert "w" not in SLOTS["letter"]


def test_parse_sentence_slots_and_normalisation():
    sentence = parse_sentence("  Bin BLUE at  f two now ")
    assert sentence is not None
    assert sentence.letter == "f" and sentence.digit == "two"
    assert sentence.text == "bin blue at f two now"
    assert normalize("Bin  blue\tat") == "bin blue at"


def test_invalid_sentences():
    assert not is_valid_sentence("bin blue at f two")
    assert not is_valid_sentence("bin blue at f two now please")
    assert not is_valid_sentence("bin blue at w two now")
    assert not is_valid_sentence("blue bin at f two now")
    assert not is_valid_sentence("")
