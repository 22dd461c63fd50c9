"""Training text: local files, Hugging Face datasets (streamed), and the token tensors made from them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .atomic import atomic_write
from .tokenizer import CharTokenizer, normalise

DEFAULT_DATASET = "roneneldan/TinyStories"
# Where the TinyStories text lives by convention, relative to the current directory (the repository
# root when run from it; data/ is git-ignored, the corpus is never committed).
CORPUS_TRAIN = "data/tinystories_train.txt"
CORPUS_VALID = "data/tinystories_valid.txt"
LOCAL_BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv", ".txt": "text"}


def read_text_files(paths) -> str:
    """Read and join UTF-8 text files (blank line between files)."""
    texts = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        texts.append(path.read_text(encoding="utf-8").strip("\n"))
    return "\n\n".join(texts) + "\n"


def clean_story(text: str) -> str:
    """Repair mojibake (ftfy), map typographic characters to ASCII and tidy whitespace around line breaks."""
    import ftfy

    text = normalise(ftfy.fix_text(text))
    lines = [" ".join(line.split()) for line in text.strip().split("\n")]
    return "\n".join(line for line in lines if line)


def stream_stories(dataset: str = DEFAULT_DATASET, config: str | None = None, split: str = "train",
                   text_column: str = "text", num_stories: int = 100, seed: int = 1337,
                   shuffle_buffer: int = 10_000, clean: bool = True) -> list[str]:
    """Sample `num_stories` non-empty stories through `datasets` streaming with a shuffle buffer.

    `dataset` is a Hub id or a local .json/.jsonl/.parquet/.csv file or directory of them.
    """
    from datasets import load_dataset

    if num_stories < 1:
        raise ValueError("--num-stories must be >= 1")
    local = Path(dataset)
    if local.exists():
        files = sorted(p for p in local.iterdir() if p.suffix in LOCAL_BUILDERS) if local.is_dir() else [local]
        if not files or files[0].suffix not in LOCAL_BUILDERS:
            raise ValueError(f"{dataset}: expected {', '.join(LOCAL_BUILDERS)} file(s)")
        ds = load_dataset(LOCAL_BUILDERS[files[0].suffix], data_files=[str(f) for f in files],
                          split=split, streaming=True)
    else:
        ds = load_dataset(dataset, name=config, split=split, streaming=True)
    ds = ds.shuffle(seed=seed, buffer_size=max(1, shuffle_buffer))
    stories: list[str] = []
    for row in ds:
        if text_column not in row:
            raise KeyError(f"{dataset}: no column {text_column!r} (columns: {', '.join(row)})")
        text = row[text_column]
        if not isinstance(text, str):
            continue
        story = clean_story(text) if clean else text.strip()
        if story:
            stories.append(story)
        if len(stories) >= num_stories:
            break
    if len(stories) < num_stories:
        raise RuntimeError(f"only {len(stories)} stories in {dataset}/{split}; asked for {num_stories}")
    return stories


def write_stories(stories: list[str], output, separator: str = "\n\n") -> Path:
    """Write the stories as one UTF-8 text file, atomically: an interrupted run leaves no half corpus."""
    return atomic_write(output, separator.join(stories) + "\n")


@dataclass
class TokenData:
    """Train/validation id tensors and the tokenizer that made them."""
    tokenizer: CharTokenizer
    train: torch.Tensor
    val: torch.Tensor
    dropped_val_chars: int = 0


def build_token_data(train_text: str, val_text: str | None = None, block_size: int = 256,
                     tokenizer: CharTokenizer | None = None, val_fraction: float = 0.1) -> TokenData:
    """Tokenise the training text (vocabulary from it unless given); validation from a file or the last 10%."""
    train_text = normalise(train_text)
    tokenizer = tokenizer or CharTokenizer.from_text(train_text)
    if val_text is None:
        n = int(len(train_text) * (1 - val_fraction))
        train_text, val_text = train_text[:n], train_text[n:]
        dropped = 0
    else:
        val_norm = normalise(val_text)
        val_text = tokenizer.clean(val_norm)
        dropped = len(val_norm) - len(val_text)
    train_text = tokenizer.clean(train_text)
    for name, text in (("training", train_text), ("validation", val_text)):
        if len(text) <= block_size:
            raise ValueError(f"{name} text has {len(text)} characters; it must be longer than one block "
                             f"({block_size} characters)")
    dtype = torch.int16 if tokenizer.vocab_size < 2**15 else torch.int32

    def to_ids(s: str) -> torch.Tensor:
        return torch.tensor(tokenizer.encode(s), dtype=dtype)

    return TokenData(tokenizer, to_ids(train_text), to_ids(val_text), dropped)


def sample_windows(data: torch.Tensor, batch: int, block_size: int, generator: torch.Generator) -> torch.Tensor:
    """`batch` random windows of `block_size` ids (vectorised gather), as int64."""
    starts = torch.randint(len(data) - block_size, (batch,), generator=generator)
    idx = starts[:, None] + torch.arange(block_size)
    return data[idx].long()


def fixed_windows(data: torch.Tensor, n: int, block_size: int, seed: int = 0) -> torch.Tensor:
    """`n` windows at seeded positions: the same evaluation set every run."""
    g = torch.Generator().manual_seed(seed)
    return sample_windows(data, n, block_size, g)


def validation_windows(path, tokenizer: CharTokenizer, n: int, block_size: int, seed: int = 0) -> tuple[torch.Tensor, int]:
    """`n` seeded windows from a text file, characters the vocabulary lacks dropped.
    Returns (windows, number of dropped characters)."""
    text = normalise(read_text_files([path]))
    kept = tokenizer.clean(text)
    if len(kept) <= block_size:
        raise ValueError(f"{path}: {len(kept)} usable characters; need more than one block ({block_size})")
    return fixed_windows(torch.tensor(tokenizer.encode(kept)), n, block_size, seed=seed), len(text) - len(kept)
