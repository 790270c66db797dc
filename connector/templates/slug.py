"""Codes from human names: Russian transliterated to Latin, lower snake case (used by adopt)."""

from __future__ import annotations

import re
import unicodedata

# Russian (and Ukrainian/Belarusian letters seen in CRM names) → Latin, close to GOST 7.79-2000 B
# without diacritics, the way Russian developers spell codes: «Заказ-наряд» → "zakaz_naryad".
_TRANSLIT: dict[str, str] = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch",
    "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya", "і": "i", "ї": "yi", "є": "ye",
    "ґ": "g", "ў": "u",
}  # fmt: skip


def transliterate(text: str) -> str:
    """Latin letters for Cyrillic ones; other accented letters lose their accents."""
    out = "".join(_TRANSLIT.get(ch, ch) for ch in unicodedata.normalize("NFKC", text).lower())
    return unicodedata.normalize("NFKD", out).encode("ascii", "ignore").decode("ascii")


def slug(text: str, max_len: int = 40) -> str:
    """A lower snake code `^[a-z][a-z0-9_]*$` from a name, or "" when nothing usable is left.

    >>> slug("Кадровый резерв")
    'kadrovyy_rezerv'
    """
    words = re.sub(r"[^a-z0-9]+", "_", transliterate(text)).strip("_")
    words = re.sub(r"^[0-9_]+", "", words)
    return words[:max_len].rstrip("_")


def unique_code(base: str, taken: set[str], fallback: str, max_len: int = 40) -> str:
    """`base` (or `fallback` when empty), suffixed `_2`, `_3`, ... until not in `taken`; added to it."""
    code = base or fallback
    candidate, n = code[:max_len], 2
    while candidate in taken:
        suffix = f"_{n}"
        candidate = code[: max_len - len(suffix)] + suffix
        n += 1
    taken.add(candidate)
    return candidate
