"""Is a phrase grounded in its review? A plain lexical rule, shared by extraction (prompt
review_v2 drops what fails it), the reasons a recommendation shows, and the quality benchmark.

The rule, in words:

- *content words* are the lowercase alphanumeric tokens of a text that are not in a short
  English stop-word list (function words and empty answers such as "none", "n/a");
- two words *match* when they are equal after light suffix stripping ("batteries" ~
  "battery", "priced" ~ "price"), or share a prefix of at least 5 letters ("comfortable" ~
  "comfort"), or one is a prefix of at least 4 letters of the other ("tone" ~ "toned");
- a phrase is *grounded* in a text when at least one of its content words matches a content
  word of the text; a phrase with no content word ("none", "not at all") is never grounded;
- a phrase is *copied from the prompt* when it is not grounded in the review and every one of
  its content words matches a content word of the prompt's instructions (what the model read
  besides the review): the example leak of prompt review_v1 ("formal cut", "lightweight
  fabric" in a review of a guitar cable).

Paraphrase that shares no word ("affordable" for "cheap") fails the rule: the rule is meant
to be strict, so a phrase shown to a person can be traced to the review's own words.

A phrase is a *verdict* when it has content words and every one of them is a generic word of
judgement ("great", "works well", "love it", "not great", "great product"): the review's
polarity, not a motivation or an attribute. Verdicts pass the grounding rule (they are the
review's own words) but say nothing about *why*; the small model writes many of them ("great"
is the most frequent positive motivation of the v2 amazon-mi-2014 release). Profiles built
for reasons drop them (counted), and `align.drop_verdicts` drops them from the text side.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

# Function words, plus the empty answers a model gives for "nothing here".
STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for from
further had has have having he her here hers herself him himself his how i if in into is it
its itself just me more most my myself no nor not of off on once only or other our ours
ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yourself yourselves
none nothing n a na nil null etc really much many one ones thing things lot lots get got
im ive dont doesnt didnt isnt wasnt cant wont its it's i'm i've don't doesn't didn't isn't
wasn't can't won't
""".split())

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _stem(word: str) -> str:
    """Light suffix stripping: enough to match plurals and simple verb forms."""
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", ""),
                         ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            word = word[: len(word) - len(suffix)] + repl
            break
    return word.removesuffix("e")  # "tune" ~ "tuning", "price" ~ "priced"


@lru_cache(maxsize=1 << 16)
def content_words(text: str) -> tuple[str, ...]:
    """The content words of ``text``, lowercase, in order, without duplicates."""
    seen: dict[str, None] = {}
    for tok in _TOKEN.findall(str(text).lower()):
        tok = tok.removesuffix("'s").replace("'", "")
        if tok and tok not in STOPWORDS and (len(tok) > 1 or tok.isdigit()):
            seen.setdefault(tok, None)
    return tuple(seen)


def words_match(a: str, b: str) -> bool:
    if a == b:
        return True
    sa, sb = _stem(a), _stem(b)
    if sa == sb:
        return True
    p = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        p += 1
    return p >= 5 or (p >= 4 and p == min(len(a), len(b)))


class Grounding:
    """The content words of one text, to test many phrases against it cheaply."""

    def __init__(self, text: str) -> None:
        self.words = frozenset(content_words(text))

    def has(self, word: str) -> bool:
        if word in self.words:
            return True
        return any(words_match(word, w) for w in self.words)

    def grounded(self, phrase: str) -> bool:
        return any(self.has(w) for w in content_words(phrase))

    def covers(self, phrase: str) -> bool:
        """Every content word of ``phrase`` is in the text (and it has at least one)."""
        words = content_words(phrase)
        return bool(words) and all(self.has(w) for w in words)


def is_grounded(phrase: str, text: str) -> bool:
    return Grounding(text).grounded(phrase)


def is_copied(phrase: str, review: Grounding | str, prompt: Grounding | str) -> bool:
    """Not grounded in the review, and made only of the prompt's own content words."""
    review = review if isinstance(review, Grounding) else Grounding(review)
    prompt = prompt if isinstance(prompt, Grounding) else Grounding(prompt)
    return not review.grounded(phrase) and prompt.covers(phrase)


# Verdicts with no content of their own: the polarity of the review, not a motivation.
_STRONG_NEGATIVE = frozenset("""
bad poor worst terrible awful horrible broke broken defective useless flimsy dislike
disliked disappointing disappointed disappointment junk waste cheaply faulty
""".split())


def contradicts_positive(phrase: str) -> bool:
    """A "positive" phrase built on a strongly negative word ("bad quality", "broke fast")."""
    return any(w in _STRONG_NEGATIVE for w in _TOKEN.findall(phrase.lower()))


# Words of judgement with no subject of their own. Kept short and generic on purpose: a word
# that can name a motivation ("cheap", "solid", "fun", "quality", "value", "deal") is not here.
VERDICTS = frozenset("""
great good nice perfect perfectly excellent awesome amazing fantastic wonderful superb
outstanding terrific lovely love loved loves like liked best better fine ok okay decent
works work worked working well happy satisfied pleased glad recommend recommended highly
product products item items buy bought purchase purchased stars star five exactly needed
wanted expected described advertised must bad poor terrible awful horrible worst hate
disappointed disappointing disappointment crap garbage junk useless
""".split())
_VERDICT_STEMS = frozenset(_stem(w) for w in VERDICTS)


def is_verdict(phrase: str) -> bool:
    """Every content word of ``phrase`` is a generic word of judgement (and it has one)."""
    words = content_words(phrase)
    return bool(words) and all(w in VERDICTS or _stem(w) in _VERDICT_STEMS for w in words)


def ground_fields(fields: dict[str, list[str]], text: str, prompt: str,
                  positive: Iterable[str] = ("pos",), negative: str = "neg"
                  ) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Keep the grounded phrases of each field; a positive phrase with a strongly negative
    word moves to ``negative``. Returns the kept fields and what was dropped or moved:
    ``{"ungrounded": n, "copied": n, "moved": n}`` (copied phrases are not also counted as
    ungrounded)."""
    review, instructions = Grounding(text), Grounding(prompt)
    kept: dict[str, list[str]] = {k: [] for k in fields}
    counts = {"ungrounded": 0, "copied": 0, "moved": 0}
    for name, phrases in fields.items():
        for p in phrases:
            if not review.grounded(p):
                counts["copied" if instructions.covers(p) else "ungrounded"] += 1
                continue
            if name in positive and negative in kept and contradicts_positive(p):
                counts["moved"] += 1
                name_to = negative
            else:
                name_to = name
            if p not in kept[name_to]:
                kept[name_to].append(p)
    return kept, counts
