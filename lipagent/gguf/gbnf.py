"""The GRID grammar as a GBNF grammar, for llama.cpp's grammar-constrained sampling.

llama.cpp constrains text, not token ids, so the grammar is the sentence itself: six slots from
`lipagent.grammar.SLOTS` (the one home of the words) separated by single spaces. Once the sixth word is
complete llama.cpp allows only end-of-generation tokens, as `lipagent.model.constrained` does for PyTorch.
"""

from __future__ import annotations

from lipagent.grammar import SLOT_NAMES, SLOTS

GBNF_FILE = "grid.gbnf"
"""Its name beside an exported GGUF."""


def _literal(word: str) -> str:
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def grid_gbnf() -> str:
    """root ::= command " " color " " ... adverb, one rule per slot."""
    lines = [
        "# GRID sentences (lipagent.grammar): command color preposition letter digit adverb",
        "root ::= " + ' " " '.join(SLOT_NAMES),
    ]
    lines += [f"{slot} ::= " + " | ".join(_literal(word) for word in SLOTS[slot]) for slot in SLOT_NAMES]
    return "\n".join(lines) + "\n"
