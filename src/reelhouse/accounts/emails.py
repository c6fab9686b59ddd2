"""One account per mailbox: the canonical form of an email address.

Two spellings of one mailbox must not make two accounts, and one address must not pass for
another. :func:`normalize_email` therefore

- refuses invisible characters (zero-width spaces and joiners, bidirectional controls, soft
  hyphens, variation selectors, fillers: every default-ignorable code point) and controls;
- applies NFKC (fullwidth ``\uff41\uff44\uff41`` is ``ada``, a decomposed accent is the composed one) and lower case;
- writes the domain in its ASCII form (IDNA 2008 with UTS 46 mapping, so ``bücher.example`` is
  ``xn--bcher-kva.example``) without the trailing root dot (``d.test.`` is ``d.test``);
- refuses a local part that mixes writing systems (a Cyrillic ``\u0435`` among Latin letters) or keeps
  a combining mark on a Latin letter that has no composed form (``\u0130`` lower-cased is ``i`` plus a
  dot, which displays as ``i``): such an address exists to imitate another.

The result is what the ``users.email`` column stores, and it is unique there.
"""

from __future__ import annotations

import unicodedata

import idna

from reelhouse.platform.errors import InvalidInput

MAX_LOCAL_PART = 64
MAX_ADDRESS = 320

# Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt): drawn as nothing.
_INVISIBLE_RANGES = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
#: Scripts written together in one language count as one (Japanese mixes all three).
_SCRIPT_FAMILIES = {"HIRAGANA": "JAPANESE", "KATAKANA": "JAPANESE", "CJK": "JAPANESE"}


class InvalidEmail(InvalidInput):
    """A 422 ``validation_error`` naming the ``email`` field."""

    def __init__(self, message: str) -> None:
        super().__init__(
            "The request has invalid fields.",
            extra={"errors": [{"field": "email", "source": "body", "message": message}]},
        )


def _invisible(char: str) -> bool:
    code = ord(char)
    if unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"}:
        return True
    return any(low <= code <= high for low, high in _INVISIBLE_RANGES)


def _script(char: str) -> str | None:
    """The writing system of a letter (the first word of its Unicode name), None for others."""
    if not unicodedata.category(char).startswith("L"):
        return None
    name = unicodedata.name(char, "")
    first = name.split(" ", 1)[0] if name else "UNKNOWN"
    return _SCRIPT_FAMILIES.get(first, first)


def _check_local_part(local: str) -> None:
    if not local or len(local) > MAX_LOCAL_PART:
        raise InvalidEmail(f"The part before @ must be 1 to {MAX_LOCAL_PART} characters.")
    if any(char.isspace() or char == "@" for char in local):
        raise InvalidEmail("The part before @ cannot hold spaces or another @.")
    scripts = {script for char in local if (script := _script(char)) is not None}
    if len(scripts) > 1:
        raise InvalidEmail("The part before @ mixes writing systems (" + ", ".join(sorted(scripts)).lower() + ").")
    if scripts == {"LATIN"} and any(unicodedata.category(char).startswith("M") for char in local):
        raise InvalidEmail("The part before @ has an accent that does not belong to its letter.")


def _ascii_domain(domain: str) -> str:
    if domain.endswith("."):
        domain = domain[:-1]  # the DNS root: d.test. and d.test are one domain
    if "." not in domain:
        raise InvalidEmail("The domain must have a dot, like example.com.")
    try:
        ascii_domain: str = idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise InvalidEmail(f"The domain is not a valid host name ({exc}).") from None
    return ascii_domain.lower()


def normalize_email(address: str) -> str:
    """The canonical form of ``address``; raises :class:`InvalidEmail` (422) when it has none."""
    text = address.strip()
    if any(_invisible(char) for char in text):
        raise InvalidEmail("The address holds invisible or control characters.")
    text = unicodedata.normalize("NFKC", text)
    local, at, domain = text.rpartition("@")
    if not at:
        raise InvalidEmail("The address needs an @.")
    # Lower-casing can leave decomposed letters (İ gives i and a combining dot): compose again.
    local = unicodedata.normalize("NFC", local.lower())
    _check_local_part(local)
    normalized = f"{local}@{_ascii_domain(domain)}"
    if len(normalized) > MAX_ADDRESS:
        raise InvalidEmail(f"The address is longer than {MAX_ADDRESS} characters.")
    return normalized
