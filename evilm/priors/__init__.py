"""Prior stages: what the paper's models start from, analogues trained on the generated world.

``evilm.priors.image.run`` (the ImageNet analogue) and ``evilm.priors.clip.run`` (the CLIP
analogue) each save a per-frame backbone (``evilm.models.weights``) that a later stage loads:
E-ViLM's video encoder, the semantic tokenizer's encoder, the perceptual tokenizer's features.
Settings: ``evilm.priors.config``.
"""
