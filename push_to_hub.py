"""Publish a prepared dataset or a trained adapter to private Hugging Face Hub repositories (the same as
`lipagent push`; the logic lives in lipagent/hub.py).

    python push_to_hub.py dataset grid-mosaics --repo team/grid-mosaics
    python push_to_hub.py adapter out/gemma3n-lipreader/final-adapter --repo team/gemma3n-lipreader-lora \\
        --eval out/eval/metrics.json
    python push_to_hub.py dataset grid-mosaics --repo team/grid-mosaics --dry-run --stage-dir staged/

Repositories are private unless --public. The token comes from `hf auth login` or HF_TOKEN and is never
printed. --dry-run writes exactly what would be uploaded to --stage-dir and stops before contacting the Hub.
"""

from __future__ import annotations

import sys
from typing import Any

from lipagent.interrupt import run_program, say_when_interrupted


def main(argv: list[str] | None = None, api: Any = None) -> int:
    """`lipagent.hub.main` with this docstring as `--help` (`api`: a stand-in for `HfApi`, for tests)."""
    from lipagent.hub import main as push

    say_when_interrupted(
        "push_to_hub.py: interrupted; nothing was published unless the upload's commit had gone through; the same "
        "command publishes it"
    )
    return push(argv, api=api, description=__doc__)


if __name__ == "__main__":
    sys.exit(run_program("push_to_hub.py", main))
