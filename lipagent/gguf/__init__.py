"""Laptop inference through llama.cpp: the grammar as GBNF, llama.cpp's runtime, converter and quantizer, and the GGUF
export (lipagent.readers.gguf reads it)."""
