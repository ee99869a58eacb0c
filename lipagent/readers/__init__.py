"""The lip readers: one interface (base), one reader per model kind, and the factory that knows them all."""
