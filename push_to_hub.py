"""Publish a prepared dataset or a trained adapter to private Hugging Face Hub repositories.

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
import tempfile
from pathlib import Path

from huggingface_hub import HfApi

from lipagent.hub import HubError, authenticate, publish, stage_adapter, stage_dataset


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    dataset = sub.add_parser("dataset", help="a folder written by `lipagent prepare`")
    dataset.add_argument("folder", type=Path)
    adapter = sub.add_parser("adapter", help="a final-adapter folder written by train/sft.py")
    adapter.add_argument("folder", type=Path)
    adapter.add_argument("--eval", type=Path, help="metrics.json from eval/run_eval.py, put in the model card")
    adapter.add_argument("--dataset", help="Hub id of the training dataset, named in the model card")
    for p in (dataset, adapter):
        p.add_argument("--repo", required=True, help="Hub repository id, e.g. team/grid-mosaics")
        p.add_argument("--public", action="store_true", help="create the repository public (default: private)")
        p.add_argument("--token", help="Hub token (default: the stored login or HF_TOKEN)")
        p.add_argument("--dry-run", action="store_true", help="stage the upload in --stage-dir and stop")
        p.add_argument("--stage-dir", type=Path, help="where to write the folder that would be uploaded")
    args = parser.parse_args(argv)
    if args.dry_run and args.stage_dir is None:
        parser.error("--dry-run needs --stage-dir to write the staged folder to")
    return args


def run(args: argparse.Namespace, api: HfApi | None = None) -> str:
    api = api or HfApi()
    login = None if args.dry_run else authenticate(api, args.token)
    with tempfile.TemporaryDirectory(prefix="lipagent-stage-") as tmp:
        stage = args.stage_dir or Path(tmp) / "stage"
        if args.kind == "dataset":
            stage_dataset(args.folder, stage)
        else:
            stage_adapter(args.folder, stage, args.repo, args.eval, args.dataset)
        files = sorted(str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file())
        print(f"staged {len(files)} files in {stage}: {', '.join(files[:8])}{' ...' if len(files) > 8 else ''}")
        if args.dry_run:
            return str(stage)
        repo_type = "dataset" if args.kind == "dataset" else "model"
        url = publish(stage, args.repo, repo_type, private=not args.public, login=login, api=api)
        print(f"published {'public' if args.public else 'private'} {repo_type} {url}")
        return url


def main(argv: list[str] | None = None, api: HfApi | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args, api)
    except (HubError, OSError, ValueError) as error:
        print(f"push_to_hub: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
