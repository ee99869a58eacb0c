"""The scores: the GRID metrics (WER, CER, slots), the evaluation of a reader on a dataset split, the report figure."""
