"""lmmrec: LLM-driven motivation-aware recommendation.

Importing the package does no work: heavy libraries (torch, llama.cpp,
sentence-transformers) load lazily inside the functions that need them.
"""

__version__ = "0.1.0"
