"""evilm: E-ViLM reproduction and ablation library (models, tokenizers, data, training, evaluation, profiling)."""

__version__ = "0.1.0"
