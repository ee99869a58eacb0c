"""The Hugging Face Hub edge: staging what is published, publishing it, and pulling it back.

Everything up to the Hub client's calls is plain file work (testable offline); `publish` is the one
function that talks to the Hub, through an `HfApi` that tests replace at that boundary.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData, get_token, snapshot_download
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import httpx as hub_http  # the Hub client's HTTP library, under whichever name it has

from lipagent.config import MosaicConfig
from lipagent.grammar import SLOT_NAMES
from lipagent.reading import adapter_mosaic_config, hub_id_shaped
from lipagent.validate import validate_folder

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")
NOT_PUBLISHED = ("README.md", "training_args.bin")
"""The card is written anew; training_args.bin is a pickle the Trainer leaves, unsafe to load and not needed."""


class HubError(ValueError):
    """A publishing problem a user can fix (token, repository, what is being pushed)."""


def resolve_dataset(name: str | Path) -> str:
    """A local folder for a dataset folder or Hub id: Hub datasets are fetched into (or, with
    HF_HUB_OFFLINE=1, found in) the Hub cache and then read exactly like a folder `lipagent prepare` wrote."""
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    if not hub_id_shaped(name):
        raise FileNotFoundError(f"{name}: no such dataset folder (write one with `lipagent prepare --out {name}`), "
                                "and not an owner/name Hub id")
    return snapshot_download(str(name), repo_type="dataset")


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
            raise HubError(f"the Hugging Face token was rejected (HTTP {status}) when {what}; log in again "
                           "(`hf auth login`) or check HF_TOKEN") from None
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise HubError(f"{endpoint} answered HTTP {status} when {what}: {first_line}") from None
    except hub_http.TransportError as error:
        raise HubError(f"the Hugging Face Hub could not be reached at {endpoint} when {what} "
                       f"({type(error).__name__}); check the network, or HF_ENDPOINT") from None


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


def training_recipe(adapter: Path) -> dict[str, Any]:
    """What the card says about training: LoRA settings and, when the run left it, the trainer's state."""
    config = json.loads((adapter / "adapter_config.json").read_text())
    recipe = {key: config.get(key) for key in ("r", "lora_alpha", "lora_dropout", "target_modules")}
    state_file = adapter.parent / "trainer_state.json"
    if state_file.is_file():
        state = json.loads(state_file.read_text())
        losses = [entry["loss"] for entry in state.get("log_history", []) if "loss" in entry]
        recipe.update(
            epochs=state.get("num_train_epochs"),
            steps=state.get("global_step"),
            per_device_batch_size=state.get("train_batch_size"),
            final_train_loss=losses[-1] if losses else None,
        )
    return recipe


def adapter_card(adapter: Path, repo_id: str, metrics: dict | None, dataset: str | None) -> ModelCard:
    """A model card with the base model, dataset, recipe, usage, and the metrics in its metadata."""
    config = json.loads((adapter / "adapter_config.json").read_text())
    base = config.get("base_model_name_or_path")
    recipe = training_recipe(adapter)
    dataset_id = dataset or (metrics or {}).get("dataset")
    results = []
    if metrics:
        named = {"wer": "WER", "cer": "CER", "sentence_accuracy": "Sentence accuracy",
                 "valid_sentence_rate": "Valid GRID sentences"}
        results = [
            EvalResult(task_type="image-to-text", task_name="Lip reading", dataset_type=str(dataset_id or "grid"),
                       dataset_name="GRID mouth mosaics", dataset_split=metrics.get("split"), metric_type=key,
                       metric_name=name, metric_value=float(metrics[key]))
            for key, name in named.items()
            if key in metrics
        ]
    data = ModelCardData(
        base_model=base if is_hub_id(base) else None,
        library_name="peft",
        pipeline_tag="image-text-to-text",
        license="gemma",
        datasets=[dataset_id] if is_hub_id(dataset_id) else None,
        tags=["lip-reading", "visual-speech-recognition", "gemma3n", "lora", "lipagent"],
        model_name=repo_id.split("/")[-1],
        eval_results=results or None,
    )
    mosaic = adapter_mosaic_config(adapter)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{_adapter_body(repo_id, base, recipe, metrics, dataset_id, mosaic)}")


def is_hub_id(name: str | None) -> bool:
    """An owner/name Hub id rather than a local path (a card links only the former)."""
    return bool(name) and hub_id_shaped(name) and not Path(str(name)).expanduser().exists()


def _link(name: str | None, kind: str = "") -> str:
    """Markdown for a model or dataset: a Hub link for a Hub id, the bare name for a local path."""
    if not name:
        return "GRID mouth mosaics"
    return f"[`{name}`](https://huggingface.co/{kind}{name})" if is_hub_id(name) else f"`{name}` (a local copy)"


def _cell(value: Any) -> str:
    """A Markdown table cell: `|` (as in a LoRA target regex) would end the cell."""
    return str(value).replace("|", "\\|")


def baseline_gap(metrics: dict) -> str:
    """How a model's WER relates to the baseline's in `metrics` (as run_eval.py --baseline writes it)."""
    gap = metrics["baseline"]["wer"] - metrics["wer"]
    return (f"beats it by {gap * 100:.1f} WER points" if gap > 0 else f"trails it by {-gap * 100:.1f} WER points"
            if gap < 0 else "only ties it")


def baseline_comparison(metrics: dict) -> str:
    """The card's line on the yardstick: the baseline lip reader's WER on the same clips, and what it means."""
    base = metrics["baseline"]["wer"]
    relation = baseline_gap(metrics)
    return (f"**Against the baseline:** LipAgent's baseline lip reader (a ~1 MB CNN + GRU trained from scratch on the "
            f"same mosaics, `lipagent baseline train`) reads these clips at WER {base:.2%}; this adapter {relation}. "
            "A fine-tuned Gemma should beat it clearly: if it does not, the gain is not coming from the large model.")


def _adapter_body(repo_id: str, base: str, recipe: dict, metrics: dict | None, dataset: str | None,
                  mosaic: MosaicConfig) -> str:
    recipe_rows = "\n".join(f"| {k} | {_cell(v)} |" for k, v in recipe.items() if v is not None)
    if metrics:
        slots = " | ".join(f"{metrics['slot_accuracy'][s]:.1%}" for s in SLOT_NAMES)
        scores = (
            f"On `{dataset}` [{metrics.get('split')}], {metrics.get('num_samples')} clips, "
            f"{metrics.get('decoding', 'constrained')} decoding: WER {metrics['wer']:.2%}, CER {metrics['cer']:.2%}, "
            f"sentence accuracy {metrics['sentence_accuracy']:.2%}, "
            f"valid sentences {metrics['valid_sentence_rate']:.1%}.\n\n"
            f"| {' | '.join(SLOT_NAMES)} |\n|{'---|' * len(SLOT_NAMES)}\n| {slots} |"
        )
        if "baseline" in metrics:
            scores += "\n\n" + baseline_comparison(metrics)
    else:
        scores = "Not evaluated yet."
    cell_size = f"{mosaic.cell_width}x{mosaic.cell_height}"
    return f"""
# {repo_id.split('/')[-1]}

A LoRA adapter for {_link(base)} that reads lips: given a mosaic of {mosaic.num_frames} mouth crops
from a GRID-style video, it writes the six-word sentence spoken. Trained with LipAgent on
{_link(dataset, "datasets/")}.

## Use

```bash
lipagent transcribe clip.mp4 --adapter {repo_id}            # add --load_in_4bit on a small CUDA GPU
```

```python
from lipagent.reader import LipReader

reader = LipReader.from_pretrained("{repo_id}")             # picks CUDA, MPS or CPU and a dtype that works there
print(reader.transcribe_video("clip.mp4"))                  # or transcribe_frames(frames), transcribe_mosaic(image)
```

Inputs go through exactly the preprocessing used for training, recorded in `lipagent.json` ({mosaic.describe()};
{mosaic.num_frames} frames over the spoken part of the clip, a {mosaic.rows}x{mosaic.cols} mosaic of {cell_size}
cells; the same prompt); decoding is constrained to valid GRID sentences by default.

## Evaluation
{scores}

## Training recipe
| setting | value |
|---|---|
{recipe_rows}

## License
The adapter follows the base model's license (Gemma). The GRID corpus it was trained on is CC BY 4.0
(M. Cooke, J. Barker, S. Cunningham, X. Shao, JASA 120(5):2421-2424, 2006).
"""


def stage_adapter(adapter: str | Path, stage: str | Path, repo_id: str, metrics_file: str | Path | None = None,
                  dataset: str | None = None) -> Path:
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
        api.upload_folder(folder_path=str(stage), repo_id=repo_id, repo_type=repo_type, token=login.token,
                          commit_message=f"Upload {repo_type} with lipagent (as {login.user})")
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

