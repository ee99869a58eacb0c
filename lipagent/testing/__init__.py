"""Stand-ins for what this machine cannot have: a tiny random Gemma 3n and a synthetic GRID-like corpus.

Imported by the tests, the demo and the benchmarks; nothing in the library below the command line imports them."""
