"""Characters <-> ids.

Id 0 is the mask. It is not a character, so every character of the training text,
`_` included, can be written. `_` is only the *display* glyph for a mask.
"""
from __future__ import annotations

MASK_GLYPH = "_"

# Typographic characters mapped to the ASCII the models were trained on.
_NORMALISE = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-", "\u2010": "-", "\u2011": "-",
    "\u2026": "...", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\r": None,
})


def normalise(text: str) -> str:
    """Curly quotes, dashes, ellipses and odd spaces to their ASCII forms."""
    return text.translate(_NORMALISE)


class UnknownCharactersError(ValueError):
    """A text holds characters the vocabulary does not have."""

    def __init__(self, chars: list[str]):
        self.chars = chars
        shown = ", ".join(repr(c) for c in chars[:20])
        super().__init__(f"unknown character(s) not in the model's vocabulary: {shown}")


class CharTokenizer:
    mask_id = 0

    def __init__(self, chars: list[str] | str):
        chars = list(chars)
        if len(set(chars)) != len(chars):
            raise ValueError("vocabulary has duplicate characters")
        if any(len(c) != 1 for c in chars):
            raise ValueError("vocabulary entries must be single characters")
        self.chars = chars
        self._stoi = {c: i + 1 for i, c in enumerate(chars)}
        self._itos = [MASK_GLYPH, *chars]          # id -> what `decode` writes (the mask: its glyph)

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        return cls(sorted(set(normalise(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 1

    def unknown_chars(self, text: str) -> list[str]:
        """Characters of `text` (after normalisation) that the vocabulary lacks, in order of appearance."""
        seen = dict.fromkeys(c for c in normalise(text) if c not in self._stoi)
        return list(seen)

    def clean(self, text: str) -> str:
        """Normalise and drop every character the vocabulary lacks."""
        return "".join(c for c in normalise(text) if c in self._stoi)

    def encode(self, text: str) -> list[int]:
        text = normalise(text)
        unknown = self.unknown_chars(text)
        if unknown:
            raise UnknownCharactersError(unknown)
        return [self._stoi[c] for c in text]

    def encode_template(self, template: str, glyph: str = MASK_GLYPH) -> list[int]:
        """Like `encode`, but every `glyph` becomes the mask id (for infilling)."""
        parts = normalise(template).split(glyph)
        ids: list[int] = []
        for i, part in enumerate(parts):
            if i:
                ids.append(self.mask_id)
            ids.extend(self.encode(part))
        return ids

    def decode(self, ids, glyph: str = MASK_GLYPH) -> str:
        itos = self._itos if glyph == MASK_GLYPH else [glyph, *self.chars]
        return "".join(map(itos.__getitem__, ids))

    def __len__(self) -> int:
        return self.vocab_size

    def __eq__(self, other) -> bool:
        return isinstance(other, CharTokenizer) and other.chars == self.chars
