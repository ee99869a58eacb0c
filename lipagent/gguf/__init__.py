"""Laptop inference through llama.cpp: the grammar as GBNF, llama.cpp's runtime, converter and quantizer, the GGUF
export and its reader."""
