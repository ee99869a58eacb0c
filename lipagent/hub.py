"""The Hugging Face Hub edge: staging what is published, publishing it, and pulling it back.

Everything up to the Hub client's calls is plain file work (testable offline); `publish` is the one
function that talks to the Hub, through an `HfApi` that tests replace at that boundary.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import httpx as hub_http  # the Hub client's HTTP library, under whichever name it has

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")
NOT_PUBLISHED = ("README.md", "training_args.bin")
"""The card is written anew; training_args.bin is a pickle the Trainer leaves, unsafe to load and not needed."""


class HubError(ValueError):
    """A publishing problem a user can fix (token, repository, what is being pushed)."""


@dataclass(frozen=True)
class Login:
    """Who publishes, with the token resolved once (never printed)."""

    user: str
    token: str = field(repr=False)


@contextmanager
def talking_to(api: HfApi, what: str) -> Iterator[None]:
    """Hub failures as one sentence each: an unreachable endpoint, a token refused (401/403), anything else the
    Hub answers (a 404 from a wrong HF_ENDPOINT is not a bad token)."""
    endpoint = getattr(api, "endpoint", "the Hub")
    try:
        yield
    except HfHubHTTPError as error:
        status = getattr(error.response, "status_code", "?")
        if status in (401, 403):
            raise HubError(
                f"the Hugging Face token was rejected (HTTP {status}) when {what}; log in again "
                "(`hf auth login`) or check HF_TOKEN"
            ) from None
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise HubError(f"{endpoint} answered HTTP {status} when {what}: {first_line}") from None
    except hub_http.TransportError as error:
        raise HubError(
            f"the Hugging Face Hub could not be reached at {endpoint} when {what} "
            f"({type(error).__name__}); check the network, or HF_ENDPOINT"
        ) from None


def authenticate(api: HfApi, token: str | None) -> Login:
    """The user the token belongs to; a missing or rejected token is an error that never shows the token."""
    token = token or get_token()
    if not token:
        raise HubError("no Hugging Face token: run `hf auth login` or set HF_TOKEN (a token with write access)")
    with talking_to(api, "checking the token"):
        return Login(api.whoami(token=token)["name"], token)


def stage_dataset(folder: str | Path, stage: str | Path) -> Path:
    """Copy a prepared dataset folder, as it is, to `stage` (after checking it validates)."""
    folder, stage = Path(folder), Path(stage)
    from lipagent.data.validate import validate_folder  # datasets: imported when staging, not for --help

    report = validate_folder(folder)
    if not report.ok:
        raise HubError(f"{folder} does not validate, refusing to publish it:\n{report.text()}")
    _fresh(stage)
    for path in sorted(folder.iterdir()):
        if not path.name.startswith("."):
            (shutil.copytree if path.is_dir() else shutil.copy2)(path, stage / path.name)
    return stage


def _fresh(stage: Path) -> None:
    if stage.exists() and any(stage.iterdir()):
        raise HubError(f"stage folder {stage} is not empty; choose an empty or new folder")
    stage.mkdir(parents=True, exist_ok=True)


def stage_adapter(
    adapter: str | Path,
    stage: str | Path,
    repo_id: str,
    metrics_file: str | Path | None = None,
    dataset: str | None = None,
) -> Path:
    """Copy the adapter and processor files to `stage` and write its model card."""
    adapter, stage = Path(adapter), Path(stage)
    missing = [name for name in ADAPTER_FILES if not (adapter / name).is_file()]
    if missing:
        raise HubError(f"{adapter} is not a finished adapter folder: missing {', '.join(missing)}")
    metrics = json.loads(Path(metrics_file).read_text()) if metrics_file else None
    _fresh(stage)
    for path in sorted(adapter.iterdir()):
        if path.is_file() and not path.name.startswith(".") and path.name not in NOT_PUBLISHED:
            shutil.copy2(path, stage / path.name)
    from lipagent.model.card import adapter_card  # datasets: imported when staging, not for --help

    adapter_card(adapter, repo_id, metrics, dataset).save(stage / "README.md")
    return stage


def publish(stage: Path, repo_id: str, repo_type: str, private: bool, login: Login, api: HfApi) -> str:
    """Create the repository (private unless asked) if needed and upload the staged folder in one commit.

    Rerunning after an interruption is safe: the repository is reused, files the Hub already holds are
    not sent again (content-addressed), and an upload with nothing new makes no commit.
    """
    with talking_to(api, f"creating {repo_id}"):
        url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, token=login.token)
    with talking_to(api, f"uploading to {repo_id}"):
        api.upload_folder(
            folder_path=str(stage),
            repo_id=repo_id,
            repo_type=repo_type,
            token=login.token,
            commit_message=f"Upload {repo_type} with lipagent (as {login.user})",
        )
    return str(url)


def add_push_arguments(parser: Any) -> None:
    """`dataset FOLDER` / `adapter FOLDER` and their flags, for `lipagent push` and push_to_hub.py alike."""
    sub = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    dataset = sub.add_parser("dataset", help="a folder written by `lipagent prepare`")
    dataset.add_argument("folder", type=Path)
    adapter = sub.add_parser("adapter", help="a final-adapter folder written by train/sft.py")
    adapter.add_argument("folder", type=Path)
    adapter.add_argument("--eval", type=Path, help="metrics.json from `lipagent eval`, put in the model card")
    adapter.add_argument("--dataset", help="Hub id of the training dataset, named in the model card")
    for p in (dataset, adapter):
        p.add_argument("--repo", required=True, help="Hub repository id, e.g. team/grid-mosaics")
        p.add_argument("--public", action="store_true", help="create the repository public (default: private)")
        p.add_argument("--token", help="Hub token (default: the stored login or HF_TOKEN)")
        p.add_argument("--dry-run", action="store_true", help="stage the upload in --stage-dir and stop")
        p.add_argument("--stage-dir", type=Path, help="where to write the folder that would be uploaded")


def run_push(args: Any, api: HfApi | None = None) -> str:
    """Stage the dataset or adapter (card included), then publish it, or with --dry-run stop at the staged folder.
    Returns the repository URL (or the staged folder)."""
    import tempfile

    if args.dry_run and args.stage_dir is None:
        raise HubError("--dry-run needs --stage-dir to write the staged folder to")
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


def main(argv: list[str] | None = None, api: HfApi | None = None, description: str | None = None) -> int:
    """push_to_hub.py's work: parse, stage, publish; a mistake or an unreachable Hub is one line and status 2."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="push_to_hub.py", description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_push_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run_push(args, api)
    except (HubError, OSError, ValueError) as error:
        print(f"push_to_hub: error: {error}", file=sys.stderr)
        return 2
    return 0
