"""Personal data in a table: which columns hold names, e-mail addresses, phone numbers, street addresses, card
numbers or national ids (by their values' form, or by the column's name where values cannot tell, as for names),
and their replacement by Faker's values before training, one fake per real value, so that no real value can be
learnt or generated while a person's rows still share one (fake) name.

Detection is written here: Microsoft Presidio does it for free text with spaCy models, which need a download this
package cannot rely on; a column of a table needs only its values' form and its name."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import pandas as pd

from ..errors import GenloomError

SHARE = 0.8  # a column is of a kind when this share of its present values has the kind's form
NAME_WORDS = r"(first|last|full|given|family|middle|maiden|sur|customer|patient|person|contact|user)?[ _-]?name"


@dataclass(frozen=True)
class PersonalKind:
    """One kind of personal data: the form of its values, the column names that mark it, and the Faker provider
    that makes a stand-in."""

    name: str
    value_form: Callable[[str], bool]
    column_name: str
    faker: str


def _luhn(digits: str) -> bool:
    """The check digit of card numbers (ISO/IEC 7812)."""
    total = 0
    for position, digit in enumerate(int(d) for d in reversed(digits)):
        total += digit if position % 2 == 0 else (2 * digit if digit < 5 else 2 * digit - 9)
    return total % 10 == 0


def _card(value: str) -> bool:
    digits = re.sub(r"[ -]", "", value)
    return digits.isdigit() and 13 <= len(digits) <= 19 and _luhn(digits)


def _phone(value: str) -> bool:
    return bool(re.fullmatch(r"\+?[\d\s().-]{7,24}(\s*(x|ext\.?)\s*\d+)?", value)) and \
        sum(c.isdigit() for c in value) >= 9 and bool(re.search(r"[\s().+-]", value))


@lru_cache(maxsize=1)
def _name_lists() -> tuple[frozenset[str], frozenset[str], re.Pattern]:
    """Faker's English first names, last names and street suffixes (a street suffix pattern)."""
    from faker.providers.address.en_US import Provider as Addresses
    from faker.providers.person.en_US import Provider as People

    first = frozenset(People.first_names) | frozenset(People.first_names_male) | frozenset(People.first_names_female)
    suffixes = sorted({s.lower() for s in Addresses.street_suffixes} | {"st", "ave", "rd", "ln", "dr", "blvd", "ct"})
    street = re.compile(r"\d+[a-z]?\s+([\w.'-]+\s+)+(" + "|".join(map(re.escape, suffixes)) + r")\.?(\W.*)?",
                        re.IGNORECASE)
    return first, frozenset(People.last_names), street


def _person_name(value: str) -> bool:
    """Two to four words, the first a known first name or the last a known last name."""
    words = value.replace(",", " ").split()
    first, last, _ = _name_lists()
    return 2 <= len(words) <= 4 and all(w[:1].isupper() for w in words) and \
        (words[0] in first or words[-1] in last)


def _street_address(value: str) -> bool:
    return bool(_name_lists()[2].fullmatch(value))


KINDS = (
    PersonalKind("email", lambda v: bool(re.fullmatch(r"[\w.+-]+@[\w-]+(\.[\w-]+)+", v)), r"e[ _-]?mail", "email"),
    PersonalKind("card_number", _card, r"(credit[ _-]?)?card([ _-]?(number|no))?|cc[ _-]?num(ber)?|pan",
                 "credit_card_number"),
    PersonalKind("national_id", lambda v: bool(re.fullmatch(r"\d{3}-\d{2}-\d{4}", v)),
                 r"ssn|social[ _-]?security([ _-]?number)?|national[ _-]?id|passport([ _-]?number)?", "ssn"),
    PersonalKind("phone", _phone, r"(tele)?phone([ _-]?number)?|mobile|cell", "phone_number"),
    PersonalKind("street_address", _street_address, r"(street[ _-]?|home[ _-]?)?address|street", "street_address"),
    PersonalKind("name", _person_name, NAME_WORDS, "name"),
)


@dataclass(frozen=True)
class PersonalColumn:
    """A column found to hold personal data: its kind, and why (the share of its values of that form, or its
    name)."""

    kind: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kind} ({self.reason})"


def find_personal_columns(frame: pd.DataFrame) -> dict[str, PersonalColumn]:
    """The columns of text that hold personal data: by their values' form first, else by their name."""
    found = {}
    for column in frame.columns:
        values = frame[column]
        if values.dtype.kind not in "OSUiu" and not isinstance(values.dtype, pd.StringDtype):
            continue  # fractions, dates and booleans are not names or addresses (whole numbers may be cards)
        present = values.dropna().astype(str).str.strip()
        present = present[present != ""]
        if present.empty:
            continue
        sample = present.sample(min(len(present), 1000), random_state=0)
        for kind in KINDS:
            share = sample.map(kind.value_form).mean()
            if share >= SHARE:
                found[str(column)] = PersonalColumn(kind.name, f"{share:.0%} of its values")
                break
            if re.fullmatch(kind.column_name, str(column).strip().lower()):
                found[str(column)] = PersonalColumn(kind.name, "by the column's name")
                break
    return found


def anonymise_table(frame: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, dict[str, PersonalColumn]]:
    """The table with each personal column's values replaced by Faker's (the same real value, the same fake,
    for a given seed and table; never a real value of the column, nor one fake for two values) and the columns
    replaced."""
    from faker import Faker

    found = find_personal_columns(frame)
    fake, result = Faker(), frame.copy()
    provider = {kind.name: kind.faker for kind in KINDS}
    for column, personal in found.items():
        make = getattr(fake, provider[personal.kind])
        originals = frame[column]
        present = originals.notna()
        taken = set(map(str, pd.unique(originals[present])))  # real values, then the fakes given out

        def stand_in(value: str, column: str = column, taken: set[str] = taken) -> str:
            """A fake seeded by the value: the same value, the same fake; drawn again while it is a real value or
            another value's fake, so that no two people merge into one."""
            for attempt in range(1000):
                digest = hashlib.sha256(f"{seed}\x00{column}\x00{value}\x00{attempt}".encode()).digest()
                fake.seed_instance(int.from_bytes(digest[:8], "big"))
                made = str(make())
                if made not in taken:
                    taken.add(made)
                    return made
            raise GenloomError(f"could not draw a fake for {column!r} unlike its real values and other fakes")

        mapping = {value: stand_in(str(value)) for value in pd.unique(originals[present])}
        result[column] = originals.map(mapping).where(present, originals)
    return result, found
