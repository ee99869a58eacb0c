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

import argparse
import sys

from huggingface_hub import HfApi

from lipagent.hub import HubError, add_push_arguments, run_push


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_push_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, api: HfApi | None = None) -> int:
    args = parse_args(argv)
    try:
        run_push(args, api)
    except (HubError, OSError, ValueError) as error:
        print(f"push_to_hub: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
